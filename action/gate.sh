#!/usr/bin/env bash
# action/gate.sh - the composite action's gate step (action.yml): runs
# `cacherate gate` and records what it said, without failing the step, so
# that the steps after it (the artifact, the JUnit check, the comment) run
# whatever the verdict; action/finish.sh fails the job at the end with the
# gate's exit code.
#
# Environment (action.yml maps its inputs to these):
#   CACHERATE              the binary (default: cacherate on PATH)
#   INPUT_BASELINE         baselines/NAME.json (required)
#   INPUT_PROFILE          --profile, when not empty
#   INPUT_API_ENDPOINT     --api-endpoint, when not empty (else the
#                          embedded simulator, or --serve)
#   INPUT_SERVE            --serve "CMD", when not empty: cacherate starts
#                          the server, waits for it and stops it
#   INPUT_OUTPUT_DIR       the run directory (default cacherate-run)
#   INPUT_ARGS             more arguments, split as a shell would split
#                          them (quotes, no expansion: xargs)
#   INPUT_ARTIFACT_NAME    the artifact's name (default
#                          cacherate-GITHUB_JOB-GITHUB_RUN_ATTEMPT)
# Writes to GITHUB_OUTPUT: exit-code, verdict (overall.verdict of
# compare/verdict.json: pass, improved, inconclusive, insufficient,
# regressed, error; `none` when the gate wrote no verdict), run-dir,
# artifact-name, junit-path and comment-path (empty when the gate wrote
# none). Exits 0 once cacherate ran; 2 on a missing input.
set -euo pipefail

error() { echo "::error title=cacherate gate::$*" >&2; }

CACHERATE="${CACHERATE:-cacherate}"
BASELINE="${INPUT_BASELINE:-}"
OUTPUT_DIR="${INPUT_OUTPUT_DIR:-}"
[[ -n "$OUTPUT_DIR" ]] || OUTPUT_DIR="cacherate-run"
ARTIFACT="${INPUT_ARTIFACT_NAME:-}"
[[ -n "$ARTIFACT" ]] || ARTIFACT="cacherate-${GITHUB_JOB:-gate}-${GITHUB_RUN_ATTEMPT:-1}"

output() {
    if [[ -n "${GITHUB_OUTPUT:-}" ]]; then echo "$1=$2" >> "$GITHUB_OUTPUT"; fi
}

if [[ -z "$BASELINE" ]]; then
    error "the input 'baseline' is required: the baseline file, e.g. baselines/NAME.json"
    output exit-code 2
    output verdict none
    exit 2
fi

args=(gate --baseline "$BASELINE" --output-dir "$OUTPUT_DIR")
if [[ -n "${INPUT_PROFILE:-}" ]]; then args+=(--profile "$INPUT_PROFILE"); fi
if [[ -n "${INPUT_API_ENDPOINT:-}" ]]; then args+=(--api-endpoint "$INPUT_API_ENDPOINT"); fi
if [[ -n "${INPUT_SERVE:-}" ]]; then args+=(--serve "$INPUT_SERVE"); fi
if [[ -n "${INPUT_ARGS//[[:space:]]/}" ]]; then
    # xargs splits as a shell does (quotes and backslashes) but expands
    # nothing: no variables, no globs, no command substitution.
    words="$(mktemp)"
    trap 'rm -f "$words"' EXIT
    if ! printf '%s\n' "$INPUT_ARGS" | xargs printf '%s\0' > "$words"; then
        error "cannot split the input 'args' (an unmatched quote?): $INPUT_ARGS"
        output exit-code 2
        output verdict none
        exit 2
    fi
    while IFS= read -r -d '' word; do args+=("$word"); done < "$words"
fi

echo "cacherate gate: $CACHERATE ${args[*]}" >&2
code=0
"$CACHERATE" "${args[@]}" || code=$?

verdict_file="$OUTPUT_DIR/compare/verdict.json"
verdict=none
if [[ -f "$verdict_file" ]]; then
    if command -v jq >/dev/null; then
        verdict="$(jq -r '.overall.verdict // "none"' "$verdict_file" 2>/dev/null || echo none)"
    elif command -v python3 >/dev/null; then
        verdict="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["overall"]["verdict"])' \
            "$verdict_file" 2>/dev/null || echo none)"
    else
        verdict="$(tr -d '\n' < "$verdict_file" \
            | sed -n 's/.*"overall"[[:space:]]*:[[:space:]]*{[[:space:]]*"verdict"[[:space:]]*:[[:space:]]*"\([a-z]*\)".*/\1/p')"
        [[ -n "$verdict" ]] || verdict=none
    fi
fi
junit=""
if [[ -f "$OUTPUT_DIR/compare/junit.xml" ]]; then junit="$OUTPUT_DIR/compare/junit.xml"; fi
comment=""
if [[ -f "$OUTPUT_DIR/compare/comment.md" ]]; then comment="$OUTPUT_DIR/compare/comment.md"; fi

output exit-code "$code"
output verdict "$verdict"
output run-dir "$OUTPUT_DIR"
output artifact-name "$ARTIFACT"
output junit-path "$junit"
output comment-path "$comment"
echo "cacherate gate: exit code $code, verdict $verdict" >&2
exit 0
