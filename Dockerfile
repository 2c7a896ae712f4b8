# syntax=docker/dockerfile:1
# The cacherate image: `docker run ghcr.io/OWNER/cacherate gate …`, and the
# image the Kubernetes Indexed Job of a sharded gate runs. Built and pushed
# by .github/workflows/release.yml; linted by hadolint in .ci/run.
#
#   docker build --build-arg CACHERATE_COMMIT="$(git rev-parse --short HEAD)" -t cacherate .

# Build: the release binary, from the locked dependencies.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# .git is not in the build context (.dockerignore): the commit
# `cacherate --version` names comes from here.
ARG CACHERATE_COMMIT=unknown
ENV CACHERATE_COMMIT=${CACHERATE_COMMIT}
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
RUN cargo build --release --locked \
    && install -m 0755 target/release/cacherate /usr/local/bin/cacherate

# Run: the binary, CA certificates (HTTPS endpoints and GitHub's API), and
# a user that is not root.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311* \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 cacherate \
    && useradd --system --uid 10001 --gid cacherate --home-dir /work --create-home cacherate
COPY --from=build /usr/local/bin/cacherate /usr/local/bin/cacherate
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["cacherate"]
CMD ["--help"]
