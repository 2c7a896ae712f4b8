#!/usr/bin/env bash
# action/finish.sh - the composite action's last step (action.yml), run
# whatever the verdict once the gate ran: upserts the pull request comment
# (`cacherate comment`: the one an earlier run made is updated, never
# duplicated), then exits with the gate's exit code, so a regression
# (1), an inconclusive verdict under --fail-on-inconclusive (4), a usage
# error (2) or an unreachable server (3) fail the step after the artifact
# and the JUnit check are out.
#
# Environment:
#   CACHERATE          the binary (default: cacherate on PATH)
#   GATE_EXIT_CODE     the gate's exit code (gate.sh's exit-code output)
#   COMMENT_PATH       compare/comment.md of the run (empty: none written)
#   INPUT_COMMENT      true: post it on the pull request
#   GITHUB_TOKEN       for the comment (pull-requests: write)
#   GITHUB_EVENT_NAME  the comment is posted for events about a pull
#                      request; skipped, with a notice, for the others
# A comment that cannot be posted is a warning, not a failure: the verdict
# is in the step summary and the artifact, and the gate's exit code decides.
set -euo pipefail

CACHERATE="${CACHERATE:-cacherate}"
CODE="${GATE_EXIT_CODE:-}"
if ! [[ "$CODE" =~ ^[0-9]+$ ]]; then
    echo "::error title=cacherate::the gate step recorded no exit code ('$CODE')" >&2
    exit 70
fi

if [[ "${INPUT_COMMENT:-false}" == "true" ]]; then
    case "${GITHUB_EVENT_NAME:-pull_request}" in
        pull_request | pull_request_target | issue_comment | workflow_run)
            if [[ -z "${COMMENT_PATH:-}" || ! -f "$COMMENT_PATH" ]]; then
                echo "::notice title=cacherate comment::the gate wrote no comment.md (exit code $CODE): nothing to post" >&2
            elif ! "$CACHERATE" comment --file "$COMMENT_PATH"; then
                echo "::warning title=cacherate comment::the verdict comment could not be posted (see the log above); the verdict is in the step summary and the artifact" >&2
            fi
            ;;
        *)
            echo "::notice title=cacherate comment::a ${GITHUB_EVENT_NAME} event is not about a pull request: no comment" >&2
            ;;
    esac
fi

case "$CODE" in
    0) echo "cacherate: the gate passed" >&2 ;;
    1) echo "::error title=cacherate::the gate failed: a regression, a point over a health limit, or a verdict the samples cannot support (exit 1)" >&2 ;;
    2) echo "::error title=cacherate::usage or configuration error (exit 2): see the gate step's log" >&2 ;;
    3) echo "::error title=cacherate::the server was unreachable or unhealthy (exit 3)" >&2 ;;
    4) echo "::error title=cacherate::inconclusive, with --fail-on-inconclusive (exit 4)" >&2 ;;
    *) echo "::error title=cacherate::cacherate gate exited with $CODE" >&2 ;;
esac
exit "$CODE"
