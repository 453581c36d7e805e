#!/usr/bin/env bash
# The portal under an idle-socket flood (issue 16): 10,000 TCP connections from one address that
# never send a byte, at about 1,000 per second, beside legitimate TLS WebSocket upgrades from another
# address. Printed side by side from the same run:
#   legitimate upgrades with no flood (the anchor) and during the flood: answered, p50, p99
#   how many idle connections the portal still held at the end of the flood (its per-address cap)
#   the portal's RSS idle, at its peak (VmHWM), and 10 s after the flood ended (memory given back)
#
#   usage: tests/bench/flood_bench.sh [FIREBREAK_BINARY]     (default build/apps/firebreak)
#   env:   FLOOD_COUNT (10000), FLOOD_RATE (1000 per second)
# No root needed: everything is on 127.0.0.1 and 127.0.0.2. The portal is stopped by PID and the
# scratch folder removed on exit.
set -euo pipefail

FIREBREAK=${1:-build/apps/firebreak}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "flood_bench: $*" >&2; exit 1; }
[[ -x $FIREBREAK ]] || die "no firebreak binary at $FIREBREAK (build it or pass its path)"
COUNT=${FLOOD_COUNT:-10000}
ulimit -n $((COUNT + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d /tmp/fb-flood-bench.XXXXXX)
chmod 700 "$WORK"
PORTAL_PID=
cleanup() {
  set +e
  if [[ -n $PORTAL_PID ]]; then
    kill -TERM "$PORTAL_PID" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$PORTAL_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PORTAL_PID" 2>/dev/null
    wait "$PORTAL_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
rss_mib() { awk -v f="$1" '$1 == f":" { printf "%.1f", $2 / 1024 }' "/proc/$PORTAL_PID/status"; }

PORT=$(free_port)
ADMIN_PORT=$(free_port)
"$FIREBREAK" portal --data-dir "$WORK/portal" --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  >"$WORK/portal.log" 2>&1 &
PORTAL_PID=$!
for _ in $(seq 200); do
  kill -0 "$PORTAL_PID" 2>/dev/null || die "the portal exited: $(cat "$WORK/portal.log")"
  [[ -f $WORK/portal/tls/ca-cert.pem ]] && accepting "$PORT" && break
  sleep 0.1
done
accepting "$PORT" || die "the portal did not come up: $(cat "$WORK/portal.log")"

idle=$(rss_mib VmRSS)
python3 "$HERE/idle_flood.py" "$PORT" "$WORK/portal/tls/ca-cert.pem" "$COUNT" "${FLOOD_RATE:-1000}"
peak=$(rss_mib VmHWM)
# The portal closes what is left at its handshake deadline (5 s), then gives memory back.
for _ in $(seq 100); do sleep 0.1; done
after=$(rss_mib VmRSS)
kill -0 "$PORTAL_PID" 2>/dev/null || die "the portal died during the flood: $(tail -n 20 "$WORK/portal.log")"
echo "portal RSS: idle $idle MiB, peak $peak MiB, 10 s after the flood $after MiB"
echo "portal log lines during the flood: $(wc -l < "$WORK/portal.log") (refusals are logged once a second with a count)"
