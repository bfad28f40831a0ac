# Shared by tools/demo and the integration tests' scripts: build, and start
# the real peers (nats-server, vsphere-sim) plus Ferry's daemons in a work dir.
# Source it; functions print nothing unless something fails.

FERRY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FERRY_BUILD=${FERRY_BUILD:-$FERRY_ROOT/build}

# ferry_build [--target T ...] [cmake -D options...]: install-deps, configure, build.
ferry_build() {
  local targets=() defs=()
  while [ $# -gt 0 ]; do
    case $1 in
      --target) targets+=(--target "$2"); shift 2 ;;
      *) defs+=("$1"); shift ;;
    esac
  done
  "$FERRY_ROOT/tools/install-deps"
  cmake -S "$FERRY_ROOT" -B "$FERRY_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${defs[@]}" >"$FERRY_BUILD.cmake.log" 2>&1 ||
    { cat "$FERRY_BUILD.cmake.log" >&2; return 1; }
  cmake --build "$FERRY_BUILD" -j"$(nproc)" "${targets[@]}" >"$FERRY_BUILD.build.log" 2>&1 ||
    { grep -E "error|Error" "$FERRY_BUILD.build.log" | head -40 >&2; return 1; }
}

# Waits until a file exists (up to $2 seconds).
ferry_wait_file() {
  local i
  for i in $(seq 1 $(( ${2:-30} * 10 ))); do
    [ -s "$1" ] && return 0
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2
  return 1
}

# ferry_start_nats DIR -> sets FERRY_NATS_URL
ferry_start_nats() {
  mkdir -p "$1/nats"
  nats-server -a 127.0.0.1 -p -1 -js -sd "$1/nats" --ports_file_dir "$1" >"$1/nats.log" 2>&1 &
  echo $! > "$1/nats.pid"
  ferry_wait_file "$1/nats-server_$(cat "$1/nats.pid").ports" 20
  FERRY_NATS_URL=$(jq -r '.nats[0]' "$1/nats-server_$(cat "$1/nats.pid").ports")
  export FERRY_NATS_URL
}

# ferry_start_sim DIR CONFIG.json -> state in DIR/sim-state.json
ferry_start_sim() {
  "$FERRY_BUILD/sim/vsphere-sim" --listen 127.0.0.1:0 --state-file "$1/sim-state.json" \
    --config "$2" --dir "$1" >"$1/sim.log" 2>&1 &
  echo $! > "$1/sim.pid"
  ferry_wait_file "$1/sim-state.json" 60
}

ferry_stop_all() {
  local f pid i
  for f in "$1"/*.pid; do
    [ -f "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
  done
  # Give each daemon up to 10 s to finish (agents checkpoint), then SIGKILL.
  for f in "$1"/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}
