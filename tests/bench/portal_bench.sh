#!/usr/bin/env bash
# The portal's speed (issue 3): 1,000 client sockets (the official phoenix JavaScript client under Node)
# and one gateway on one portal, then
#   create_flow -> flow_created latency p50/p99 at 200 flows/s for 10 s      (bar: p99 < 20 ms)
#   revoke (DELETE /v1/policies/{id}) -> reject_access at the gateway, p99   (bar: < 100 ms)
#   the portal's peak RSS (VmHWM)
# The Node side is tests/interop/phoenix_js/portal_bench.mjs; it sets everything up over the admin API.
#
#   usage: tests/bench/portal_bench.sh [FIREBREAK_BINARY]     (default build/apps/firebreak)
#   env:   BENCH_CLIENTS (1000), BENCH_RATE (200), BENCH_SECONDS (10), BENCH_REVOKES (50), BENCH_RESOURCES (10)
#          BENCH_STRICT=1 to exit 1 when a bar is missed; BENCH_KEEP=1 keeps the scratch folder (the portal's log);
#          BENCH_DEBUG=1 adds the latencies second by second
#
# Needs node and npm (Debian: nodejs npm); runs `npm ci` in tests/interop/phoenix_js when its node_modules
# is missing. No root needed: everything listens on 127.0.0.1, on ports the system picks. The portal and
# Node are stopped by PID and the scratch folder removed on exit, however the script exits. Node and the
# portal share this machine's CPUs: the latencies include the Node side's own time.
set -euo pipefail

FIREBREAK=${1:-build/apps/firebreak}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PACKAGE="$HERE/../interop/phoenix_js"

die() { echo "portal_bench: $*" >&2; exit 1; }

[[ -x $FIREBREAK ]] || die "no firebreak binary at $FIREBREAK (build it or pass its path)"
FIREBREAK=$(realpath "$FIREBREAK")
for tool in node npm; do
  command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install nodejs npm)"
done

# A socket per client on each side, the gateway's, TLS and SQLite: far past the usual 1024.
want=$(( ${BENCH_CLIENTS:-1000} * 2 + 1024 ))
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(( $(ulimit -n) >= want )) || die "the open-files limit is $(ulimit -n) (hard $(ulimit -Hn)); $want are needed"

if [[ ! -f $PACKAGE/node_modules/phoenix/package.json || ! -f $PACKAGE/node_modules/ws/package.json ]]; then
  echo "portal_bench: npm ci in $PACKAGE" >&2
  npm ci --prefix "$PACKAGE" --no-audit --no-fund >&2 || die "npm ci failed in $PACKAGE"
fi

WORK=$(mktemp -d /tmp/fb-portal-bench.XXXXXX)
chmod 700 "$WORK"
PIDS=()

# Ends what we started, by PID: SIGTERM, up to 3 s, then SIGKILL.
cleanup() {
  set +e
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "portal_bench: kept $WORK (the portal's log and data)" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

DATA="$WORK/portal"
PORTAL_PID=
for attempt in 1 2 3; do
  PORT=$(free_port)
  ADMIN_PORT=$(free_port)
  "$FIREBREAK" portal --data-dir "$DATA" --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    >"$WORK/portal.log" 2>&1 &
  PORTAL_PID=$!
  PIDS+=("$PORTAL_PID")
  for _ in $(seq 200); do
    kill -0 "$PORTAL_PID" 2>/dev/null || break
    [[ -f $DATA/admin-token && -f $DATA/tls/ca-cert.pem ]] && accepting "$PORT" && accepting "$ADMIN_PORT" && break
    sleep 0.1
  done
  kill -0 "$PORTAL_PID" 2>/dev/null && accepting "$PORT" && accepting "$ADMIN_PORT" && break
  # Exited (a port taken between choosing and binding?) or never ready.
  kill -0 "$PORTAL_PID" 2>/dev/null && die "the portal did not come up in 20 s: $(cat "$WORK/portal.log")"
  ((attempt < 3)) || die "the portal did not start: $(cat "$WORK/portal.log")"
  echo "portal_bench: the portal did not start; retrying: $(tail -n 3 "$WORK/portal.log")" >&2
done

# In the background and waited for, so that Ctrl-C or SIGTERM stops it at once.
PORTAL_URL="wss://127.0.0.1:$PORT/socket/websocket" PORTAL_CA_FILE="$DATA/tls/ca-cert.pem" \
  ADMIN_URL="https://127.0.0.1:$ADMIN_PORT" ADMIN_TOKEN_FILE="$DATA/admin-token" \
  node "$PACKAGE/portal_bench.mjs" >"$WORK/figures.txt" &
PIDS+=("$!")
status=0
wait "$!" || status=$?
cat "$WORK/figures.txt"
kill -0 "$PORTAL_PID" 2>/dev/null || die "the portal died during the run: $(tail -n 20 "$WORK/portal.log")"
((status == 0)) || die "the run failed (exit $status); the portal's log ends: $(tail -n 20 "$WORK/portal.log")"

hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PORTAL_PID/status")
[[ -n $hwm_kib ]] || die "no VmHWM in /proc/$PORTAL_PID/status"
printf 'portal peak RSS %s MiB\n' "$(awk -v k="$hwm_kib" 'BEGIN { printf "%.1f", k / 1024 }')"

if [[ ${BENCH_STRICT:-0} == 1 ]]; then
  awk '/^create_flow/ { v = $6 + 0; if (v >= 20) bad = 1 }
       /^revoke/ { v = $3 + 0; if (v >= 100) bad = 1 }
       END { exit bad }' "$WORK/figures.txt" || die "a bar was missed (BENCH_STRICT=1)"
fi
