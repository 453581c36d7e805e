#!/usr/bin/env bash
# Peer-connection setup (issue 4), each figure beside its anchor from the same run:
#   1. through a real portal: flow_created -> first decrypted packet, p50/p95 over BENCH_CONNECTIONS
#      connections, direct and relayed (the client relay-only through coturn); a gateway stays up and a
#      fresh client process asks for a flow each time (connection_peer, loopback)
#   2. build/tests/bench_connection: libnice alone (the anchor) and our connection actors in one
#      process, direct and relayed, and memory per idle connection over BENCH_IDLE pairs
# Bars: p50 under 100 ms direct and under 200 ms relayed.
#
#   usage: tests/bench/connection_bench.sh [BUILD_DIR]     (default build)
#   env:   BENCH_CONNECTIONS (50), BENCH_IDLE (200)
# No root needed: everything listens on 127.0.0.1. What it starts (portal, coturn, peers) is stopped by
# PID and the scratch folder removed on exit, however the script exits.
set -euo pipefail

BUILD=${1:-build}
N=${BENCH_CONNECTIONS:-50}
IDLE=${BENCH_IDLE:-200}
FIREBREAK=$(realpath "$BUILD/apps/firebreak")
PEER=$(realpath "$BUILD/tests/connection_peer")
BENCH=$(realpath "$BUILD/tests/bench_connection")

die() { echo "connection_bench: $*" >&2; exit 1; }
for tool in turnserver wg openssl python3; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
for f in "$FIREBREAK" "$PEER" "$BENCH"; do [[ -x $f ]] || die "$f is not built"; done

WORK=$(mktemp -d /tmp/fb-conn-bench.XXXXXX)
chmod 700 "$WORK"
source "$(dirname "$0")/../../deploy/lib/processes.sh"
cleanup() {
  set +e
  stop_all
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.'"$1"'); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# coturn with a secret the portal shares.
SECRET=$(openssl rand -hex 24)
printf '%s' "$SECRET" >"$WORK/relay-secret"
TURN_PORT=$(free_port SOCK_DGRAM)
turnserver -n --listening-ip=127.0.0.1 --listening-port="$TURN_PORT" --relay-ip=127.0.0.1 --use-auth-secret \
  --static-auth-secret="$SECRET" --realm=firebreak.bench --no-tls --no-dtls --no-cli --allow-loopback-peers \
  --userdb="$WORK/turndb" --pidfile="$WORK/turn.pid" --log-file=stdout --simple-log >"$WORK/turn.log" 2>&1 &
PIDS+=("$!")

PORT=$(free_port SOCK_STREAM)
ADMIN_PORT=$(free_port SOCK_STREAM)
"$FIREBREAK" portal --data-dir "$WORK/portal" --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  --relay "turn-1=127.0.0.1:$TURN_PORT" --relay-secret-file "$WORK/relay-secret" --log-level warn \
  >"$WORK/portal.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 200); do accepting "$PORT" && accepting "$ADMIN_PORT" && break; sleep 0.1; done
accepting "$ADMIN_PORT" || die "the portal did not come up: $(cat "$WORK/portal.log")"

admin() { "$FIREBREAK" admin --portal "127.0.0.1:$ADMIN_PORT" --token-file "$WORK/portal/admin-token" --json "$@"; }
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
SITE=$(admin sites create bench-site | field id)
USER_ID=$(admin users create ada --email ada@example.com | field id)
GROUP=$(admin groups create bench | field id)
admin groups add-member "$GROUP" "$USER_ID" >/dev/null
admin clients create --user "$USER_ID" --name laptop | field token >"$WORK/client.token"
admin gateways create --site "$SITE" --name gw | field token >"$WORK/gateway.token"
RESOURCE=$(admin resources create --site "$SITE" --name web --address 10.0.0.0/24 | field id)
admin policies create --group "$GROUP" --resource "$RESOURCE" >/dev/null
(umask 077; wg genkey >"$WORK/client.key"; wg genkey >"$WORK/gateway.key")

"$PEER" --portal "127.0.0.1:$PORT" --ca "$WORK/portal/tls/ca-cert.pem" --token-file "$WORK/gateway.token" \
  --key-file "$WORK/gateway.key" --role gateway --local-address 127.0.0.1 --duration 3600 \
  >"$WORK/gateway.out" 2>"$WORK/gateway.err" &
PIDS+=("$!")
for _ in $(seq 100); do grep -q '"joined"' "$WORK/gateway.out" 2>/dev/null && break; sleep 0.1; done

through_portal() {  # $1: direct|relayed
  local extra=() i
  [[ $1 == relayed ]] && extra=(--relay-only)
  : >"$WORK/setup-$1.txt"
  for i in $(seq "$N"); do
    timeout 20 "$PEER" --portal "127.0.0.1:$PORT" --ca "$WORK/portal/tls/ca-cert.pem" \
      --token-file "$WORK/client.token" --key-file "$WORK/client.key" --role client --resource "$RESOURCE" \
      --local-address 127.0.0.1 --packets 1 --until-echoed --duration 15 "${extra[@]}" 2>/dev/null |
      python3 -c 'import json,sys
for line in sys.stdin:
    d = json.loads(line)
    if d.get("event") == "first_packet": print(d["setup_ms"])' >>"$WORK/setup-$1.txt" || true
  done
  python3 - "$WORK/setup-$1.txt" "$1" "$N" <<'PY'
import sys
v = sorted(float(x) for x in open(sys.argv[1]) if x.strip())
pct = lambda p: v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] if v else float("nan")
bar = 100 if sys.argv[2] == "direct" else 200
print(f"through the portal, {sys.argv[2]:8s} flow_created->first packet p50 {pct(0.5):6.1f} ms  p95 {pct(0.95):6.1f} ms"
      f"  ({len(v)} of {sys.argv[3]} connected; bar p50 < {bar} ms)")
PY
}
through_portal direct
through_portal relayed

# The anchors and the memory figure, in the same run.
USER_NAME="$(( $(date +%s) + 3600 )):bench"
printf '%s' "$USER_NAME" | openssl dgst -sha1 -hmac "$SECRET" -binary | base64 >"$WORK/turn-password"
"$BENCH" --pairs "$N" --idle "$IDLE" --turn "127.0.0.1:$TURN_PORT" --turn-user "$USER_NAME" \
  --turn-password-file "$WORK/turn-password"
