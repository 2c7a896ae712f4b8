#!/usr/bin/env bash
# action/install.sh - the composite action's install step (action.yml):
# puts cacherate VERSION on the job's PATH.
#
# A release binary for the runner's OS and architecture
# (cacherate-VERSION-TARGET.tar.gz of release vVERSION), its SHA-256
# checked against the release's SHA256SUMS before it is unpacked; a
# checksum that does not match is refused (exit 1), never worked around.
# When no binary fits (an OS or architecture the release does not build,
# or a release without the file) it builds the same version with
# `cargo install --locked cacherate --version VERSION`, then from git at
# the tag vVERSION. An install of that version already in the directory
# (a self-hosted runner's tool cache) is reused.
#
# Environment (action.yml maps its inputs to these):
#   CACHERATE_VERSION      the version, e.g. 0.1.0 (a leading v is allowed)
#   CACHERATE_RELEASE_URL  the releases' base URL; files are fetched from
#                          BASE/vVERSION/NAME (default: GitHub's release
#                          downloads of CACHERATE_REPOSITORY)
#   CACHERATE_REPOSITORY   OWNER/NAME of cacherate's repository
#   CACHERATE_GIT_URL      git URL for the last fallback (default: from
#                          GITHUB_SERVER_URL and CACHERATE_REPOSITORY)
#   CACHERATE_TARGET       the target triple to fetch (default: this
#                          machine's, from uname)
#   CACHERATE_INSTALL_DIR  where bin/cacherate goes (default:
#                          RUNNER_TOOL_CACHE/cacherate/VERSION/TARGET)
# Writes `path`, `version` and `source` (release, cached, cargo) to
# GITHUB_OUTPUT and the bin directory to GITHUB_PATH when they are set.
# Downloads use curl.
set -euo pipefail

die() { echo "::error title=cacherate install::$*" >&2; exit 1; }
note() { echo "cacherate install: $*" >&2; }

VERSION="${CACHERATE_VERSION:-}"
VERSION="${VERSION#v}"
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] \
    || die "version '${CACHERATE_VERSION:-}' is not a release version such as 0.1.0"
REPOSITORY="${CACHERATE_REPOSITORY:-}"
[[ -n "$REPOSITORY" ]] || REPOSITORY="${GITHUB_REPOSITORY:-}"
SERVER="${GITHUB_SERVER_URL:-https://github.com}"
RELEASE_URL="${CACHERATE_RELEASE_URL:-}"
if [[ -z "$RELEASE_URL" && -n "$REPOSITORY" ]]; then
    RELEASE_URL="$SERVER/$REPOSITORY/releases/download"
fi
GIT_URL="${CACHERATE_GIT_URL:-}"
if [[ -z "$GIT_URL" && -n "$REPOSITORY" ]]; then
    GIT_URL="$SERVER/$REPOSITORY"
fi

# The release's target triple for this machine; empty when it builds none.
detect_target() {
    case "$(uname -s)/$(uname -m)" in
        Linux/x86_64 | Linux/amd64) echo x86_64-unknown-linux-gnu ;;
        Linux/aarch64 | Linux/arm64) echo aarch64-unknown-linux-gnu ;;
        Darwin/arm64 | Darwin/aarch64) echo aarch64-apple-darwin ;;
        *) echo "" ;;
    esac
}
TARGET="${CACHERATE_TARGET:-$(detect_target)}"
[[ -z "$TARGET" || "$TARGET" =~ ^[A-Za-z0-9_.-]+$ ]] || die "target '$TARGET' is not a target triple"

INSTALL_DIR="${CACHERATE_INSTALL_DIR:-}"
if [[ -z "$INSTALL_DIR" ]]; then
    INSTALL_DIR="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}}/cacherate/$VERSION/${TARGET:-source}"
fi
BIN="$INSTALL_DIR/bin/cacherate"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

sha256() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        die "neither sha256sum nor shasum is installed: cannot check the download"
    fi
}

# Whether BIN is cacherate VERSION.
installed() {
    [[ -x "$BIN" ]] || return 1
    local said
    said="$("$BIN" --version 2>/dev/null)" || return 1
    [[ "$said" == "cacherate $VERSION" || "$said" == "cacherate $VERSION "* ]]
}

finish() {
    local source="$1"
    installed || die "$BIN does not say it is cacherate $VERSION: $("$BIN" --version 2>&1 || true)"
    note "$("$BIN" --version) at $BIN ($source)"
    if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
        {
            echo "path=$BIN"
            echo "version=$VERSION"
            echo "source=$source"
        } >> "$GITHUB_OUTPUT"
    fi
    if [[ -n "${GITHUB_PATH:-}" ]]; then
        echo "$INSTALL_DIR/bin" >> "$GITHUB_PATH"
    fi
    exit 0
}

# Downloads, checks and unpacks the release binary. Returns 1 (for the
# cargo fallback) when the release has no binary for TARGET; exits on a
# checksum that does not match.
from_release() {
    [[ -n "$TARGET" ]] || { note "no release binary for $(uname -s)/$(uname -m)"; return 1; }
    [[ -n "$RELEASE_URL" ]] || { note "no release URL (set CACHERATE_REPOSITORY)"; return 1; }
    local name="cacherate-$VERSION-$TARGET.tar.gz"
    local base="${RELEASE_URL%/}/v$VERSION"
    local work="$WORK"
    if ! curl -fsSL --retry 3 --proto '=https,http,file' -o "$work/SHA256SUMS" "$base/SHA256SUMS"; then
        note "cannot download $base/SHA256SUMS"
        return 1
    fi
    local want
    want="$(awk -v f="$name" '$2 == f || $2 == "*" f { print $1; exit }' "$work/SHA256SUMS")"
    if [[ -z "$want" ]]; then
        note "release v$VERSION has no $name"
        return 1
    fi
    if ! curl -fsSL --retry 3 --proto '=https,http,file' -o "$work/$name" "$base/$name"; then
        note "cannot download $base/$name"
        return 1
    fi
    local got
    got="$(sha256 "$work/$name")"
    if [[ "$got" != "$want" ]]; then
        die "checksum mismatch for $name: SHA256SUMS says $want, the download is $got; refusing to install it"
    fi
    note "$name: SHA-256 $got matches SHA256SUMS"
    mkdir -p "$work/unpacked"
    tar -xzf "$work/$name" -C "$work/unpacked"
    local found
    found="$(find "$work/unpacked" -type f -name cacherate -perm -u+x | head -n 1)"
    [[ -n "$found" ]] || die "$name holds no executable cacherate"
    mkdir -p "$INSTALL_DIR/bin"
    cp "$found" "$BIN.partial"
    chmod 755 "$BIN.partial"
    mv -f "$BIN.partial" "$BIN"
    if ! installed; then
        # Linux binaries are built on Ubuntu 22.04: an older glibc cannot
        # run them.
        note "the release binary does not run here: $("$BIN" --version 2>&1 | head -n 1 || true)"
        rm -f "$BIN"
        return 1
    fi
    # Completions and the man page, when the archive has them.
    local top
    top="$(dirname "$found")"
    for extra in share completions man; do
        if [[ -d "$top/$extra" ]]; then cp -R "$top/$extra" "$INSTALL_DIR/"; fi
    done
    return 0
}

from_source() {
    command -v cargo >/dev/null \
        || die "no release binary fits this runner ($(uname -s)/$(uname -m)) and cargo is not installed: add a Rust toolchain (dtolnay/rust-toolchain) before this step"
    note "building cacherate $VERSION with cargo (no release binary fits)"
    if cargo install --locked cacherate --version "=$VERSION" --root "$INSTALL_DIR"; then
        return 0
    fi
    [[ -n "$GIT_URL" ]] || die "cargo install cacherate $VERSION failed"
    note "crates.io has no cacherate $VERSION; building the tag v$VERSION of $GIT_URL"
    cargo install --locked --git "$GIT_URL" --tag "v$VERSION" cacherate --root "$INSTALL_DIR" \
        || die "cargo install --git $GIT_URL --tag v$VERSION failed"
}

if installed; then
    finish cached
fi
if from_release; then
    finish release
fi
from_source
finish cargo
