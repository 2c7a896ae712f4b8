#!/bin/sh
# Reproduces the cacherate run started 2026-12-02T01:28:24Z.
# Extra arguments are passed on, and later ones win: e.g.
#   ./run_command_20261202T012824Z.sh --force-restart     or     ./run_command_20261202T012824Z.sh --output-dir other
# A server key is read from OPENAI_API_KEY, a password in an
# endpoint's URL from CACHERATE_ENDPOINT_PASSWORD.
exec '/work/wt-tests16/target/debug/cacherate' 'run' '--sim-time-scale' '0.25' '--model' 'cacherate-sim' '--context-sizes' '2048' '--working-set-size' '65536' '--output-tokens' '64' '--max-ttft' '1' '--ttft-metric' 'p95' '--test-duration' '15' '--ramp-duration' '0.75' '--num-retries' '3' '--start-concurrency' '4' '--concurrency-increment' '4' '--max-concurrency' '1000' '--init-concurrency' '16' '--cache-hit-rates' '0' '50' '100' '--chunk-size' '256' '--reinit-strategy' 'per_cache_rate' '--output-dir' 'q3' '--seed' '816623998' '--kv-cache-quantization' '2' '--tokens-per-req-metric' 'avg' '--request-timeout' '600' '--max-error-rate' '0.01' '--circuit-breaker-failures' '20' '--circuit-breaker-window' '30' '--prompt-mode' 'tokens' '--flush-cache' 'none' '--warmup-fraction' '0.2' '--sample-duration' '0.75' '--mode' 'fixed' '--chunk-times' 'all' '--concurrency-from' '/work/wt-tests16/baselines/sim-quick.json' '--no-random-working-set-selection' '--no-strict-time-window' '--skip-graphs' "$@"
