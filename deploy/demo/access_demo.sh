#!/usr/bin/env bash
# Firebreak end to end, told in plain words: Ada's laptop fetches a web page from an office server it
# has no route to, through the real daemons: `firebreak client` (a TUN interface with routes to her
# resources) and `firebreak gateway` (forwarding into the office network, enforcing her grants). Then
# the goodbye: her access revoked, and the gateway stopped for an upgrade; each time the laptop knows
# at once, instead of after a timeout.
#
#   [laptop ns] 10.71.1.2 ── 10.71.1.1 [hub ns: portal, coturn] 10.71.2.1 ── 10.71.2.2 [gateway ns]
#                                                                  10.72.0.1 ── 10.72.0.2 [office ns: web server]
#
#   usage: deploy/demo/access_demo.sh [BUILD_DIR]     (default build)
# Needs root (network namespaces, TUN devices). Everything it creates is removed when it ends, even on Ctrl-C.
set -euo pipefail

BUILD=${1:-build}
say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nSorry, the demo cannot go on: %s\n' "$*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "it needs root, to make network namespaces"
FIREBREAK=$(realpath "$BUILD/apps/firebreak" 2>/dev/null) || die "build the project first (make build)"
for tool in ip turnserver python3 curl; do command -v "$tool" >/dev/null || die "$tool is missing (run deploy/install-deps.sh)"; done
PYTHON=$(command -v python3)

WORK=$(mktemp -d /tmp/firebreak-access-demo.XXXXXX)
chmod 700 "$WORK"
source "$(dirname "$0")/../lib/processes.sh"
source "$(dirname "$0")/../lib/office.sh"
cleanup() {
  set +e
  say "Cleaning up: stopping what the demo started and deleting its namespaces..."
  stop_all
  delete_namespaces
  [[ ${DEMO_KEEP:-0} == 1 ]] && echo "    kept $WORK" || rm -rf "$WORK"
  echo "    Done. Nothing is left behind."
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

say "Building a small network: a hub, Ada's laptop, the office gateway, and an office web server"
office_network "fbacc$$"
echo "    The office network 10.72.0.0/24 is reachable only from the gateway."

say "Starting the office web server (10.72.0.2:8080) with a 20 MB file"
head -c 20000000 /dev/urandom >"$WORK/report.bin"
(cd "$WORK" && exec ip netns exec "$OFFICE" "$PYTHON" -m http.server 8080 --bind 10.72.0.2 >"$WORK/web.log" 2>&1) &
PIDS+=("$!")

say "Starting coturn (the TURN relay) and the portal in the hub"
start_relay "$WORK"
start_portal "$FIREBREAK" "$WORK" --relay turn-1=10.71.1.1:3478 --relay-secret-file "$WORK/relay-secret" \
  || die "the portal did not start"

say "An administrator says who may reach what (firebreak admin)"
enroll_ada "$WORK"
WEB=$(admin --json resources create --site "$SITE" --name intranet-web --address 10.72.0.2/32 --filter tcp:8080 | json_field id)
POLICY=$(admin --json policies create --group "$GROUP" --resource "$WEB" | json_field id)
admin resources list
echo "    Ada's group may reach the web server, on TCP port 8080 only."

say "The office gateway starts (firebreak gateway): it joins the portal and sets up forwarding"
cat >"$WORK/gateway.toml" <<TOML
portal_url = "wss://10.71.2.1:8443"
portal_ca_file = "$WORK/portal/tls/ca-cert.pem"
token_file = "$WORK/gateway.token"
key_file = "$WORK/gateway.key"
status_socket = "$WORK/gateway.sock"
local_addresses = ["10.71.2.2"]
trace = true
trace_file = "$WORK/gateway.trace.jsonl"
TOML
(exec ip netns exec "$GATEWAY" "$FIREBREAK" gateway --config "$WORK/gateway.toml" >"$WORK/gateway.log" 2>&1) &
PIDS+=("$!")
for _ in $(seq 100); do grep -q "joined the portal" "$WORK/gateway.log" && break; sleep 0.1; done
grep -q "joined the portal" "$WORK/gateway.log" || die "the gateway did not join: $(tail -5 "$WORK/gateway.log")"
echo "    Joined. Its settings came from a TOML file; environment variables and flags would override them."

say "Ada's laptop starts (firebreak client)"
(exec ip netns exec "$LAPTOP" env FIREBREAK_PORTAL_URL=wss://10.71.1.1:8443 \
   FIREBREAK_PORTAL_CA_FILE="$WORK/portal/tls/ca-cert.pem" FIREBREAK_TOKEN_FILE="$WORK/client.token" \
   FIREBREAK_KEY_FILE="$WORK/client.key" FIREBREAK_STATUS_SOCKET="$WORK/client.sock" \
   FIREBREAK_LOCAL_ADDRESSES=10.71.1.2 FIREBREAK_TRACE=true FIREBREAK_TRACE_FILE="$WORK/client.trace.jsonl" \
   "$FIREBREAK" client >"$WORK/client.log" 2>&1) &
PIDS+=("$!")
for _ in $(seq 100); do in_ns "$LAPTOP" ip route show | grep -q 10.72.0.2 && break; sleep 0.1; done
echo "    Its routing table now sends the web server's address into the tunnel:"
in_ns "$LAPTOP" ip route show | grep fb-client | sed 's/^/      /'

say "Ada downloads the 20 MB report with curl: the first packet asks the portal for access"
start=$(date +%s.%N)
in_ns "$LAPTOP" curl -sS --max-time 60 -o "$WORK/downloaded.bin" http://10.72.0.2:8080/report.bin \
  || die "the download failed: $(tail -5 "$WORK/client.log")"
took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
if cmp -s "$WORK/report.bin" "$WORK/downloaded.bin"; then
  echo "    Downloaded in $took s, including setting up the connection; the checksum matches."
else
  die "the downloaded file differs"
fi

say "Ada tries something her grant does not cover: ping the web server (only TCP 8080 is allowed)"
in_ns "$LAPTOP" ping -c 1 -W 2 10.72.0.2 | sed -n '2p' | sed 's/^/    /' || true
echo "    The gateway refused the packet and said so (ICMP administratively prohibited), instead of silence."

say "What the laptop's status command shows (firebreak client status)"
in_ns "$LAPTOP" "$FIREBREAK" client status --status-socket "$WORK/client.sock" | sed 's/^/    /'
say "And the gateway's (firebreak gateway status)"
in_ns "$GATEWAY" "$FIREBREAK" gateway status --status-socket "$WORK/gateway.sock" | sed 's/^/    /'

# Milliseconds since $1 (a `date +%s%N` reading).
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
# Waits (up to 20 s) until the laptop holds no live connection; prints how long after $1 (a
# `date +%s%N` reading) the laptop's log says its connection closed, in ms.
wait_laptop_disconnected() {
  local from=$1
  for _ in $(seq 2000); do
    if in_ns "$LAPTOP" "$FIREBREAK" client status --status-socket "$WORK/client.sock" --json \
      | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(any(c["state"] in ("connected","idle") for c in s["connections"]))'; then
      python3 - "$from" "$WORK/client.log" <<'PY'
import datetime, sys
closed = [l for l in open(sys.argv[2]) if "connection closed" in l][-1]
at = datetime.datetime.strptime(closed.split()[0], "%Y-%m-%dT%H:%M:%S.%f").timestamp()
print(round(at * 1000 - int(sys.argv[1]) / 1e6))
PY
      return 0
    fi
    sleep 0.01
  done
  return 1
}

say "The goodbye (1): the administrator revokes Ada's access to the web server"
from=$(date +%s%N)
admin policies delete "$POLICY" >/dev/null
took=$(wait_laptop_disconnected "$from") || die "the laptop kept its connection: $(tail -5 "$WORK/client.log")"
echo "    The gateway said goodbye through the tunnel, and the laptop dropped the connection $took ms after"
echo "    the revoke. Without the goodbye it would have learnt nothing until its packets went unanswered"
echo "    for about 10 s. From the two logs:"
grep -h "goodbye" "$WORK/gateway.log" | tail -2 | sed 's/^/      gateway: /'
grep -h "said goodbye\|remote_goodbye\|removed" "$WORK/client.log" | tail -2 | sed 's/^/      laptop:  /'
sleep 0.5  # the traces' writers flush every 200 ms
echo "    And what the actors said to each other, from both daemons' actor traces (firebreak trace):"
"$FIREBREAK" trace "$WORK/gateway.trace.jsonl" "$WORK/client.trace.jsonl" --from "$(( from / 1000000 ))" 2>/dev/null \
  | grep -E "reject_access|resource_deleted|client_unauthorized|close_connection|goodbye|connection_event" \
  | head -14 | cut -c1-150 | sed 's/^/      /'

say "Access is granted again, and Ada downloads the report once more"
POLICY=$(admin --json policies create --group "$GROUP" --resource "$WEB" | json_field id)
for _ in $(seq 100); do in_ns "$LAPTOP" ip route show | grep -q 10.72.0.2 && break; sleep 0.1; done
in_ns "$LAPTOP" curl -sS --max-time 60 -o "$WORK/downloaded.bin" http://10.72.0.2:8080/report.bin \
  || die "the download failed: $(tail -5 "$WORK/client.log")"
echo "    Done: a new connection, set up on her first packet."

say "The goodbye (2): the gateway is stopped for an upgrade (SIGTERM, as Nomad or systemd would send)"
GATEWAY_PID=${PIDS[-1]}
for pid in "${PIDS[@]}"; do ps -o args= -p "$pid" 2>/dev/null | grep -q "firebreak gateway" && GATEWAY_PID=$pid; done
from=$(date +%s%N)
kill -TERM "$GATEWAY_PID"
took=$(wait_laptop_disconnected "$from") || die "the laptop kept its connection: $(tail -5 "$WORK/client.log")"
echo "    The gateway left the portal, said goodbye to every client and exited; the laptop dropped the"
echo "    connection $took ms after the SIGTERM."
if in_ns "$LAPTOP" curl -sS --max-time 10 -o /dev/null http://10.72.0.2:8080/report.bin 2>"$WORK/curl.err"; then
  echo "    (a fetch still went through?)"
else
  echo "    With no gateway of the office online, Ada's next fetch fails at once instead of hanging:"
  sed 's/^/      /' "$WORK/curl.err"
fi

say "The upgraded gateway starts again, and Ada's next fetch goes through"
for _ in $(seq 50); do kill -0 "$GATEWAY_PID" 2>/dev/null || break; sleep 0.1; done
(exec ip netns exec "$GATEWAY" "$FIREBREAK" gateway --config "$WORK/gateway.toml" >"$WORK/gateway2.log" 2>&1) &
PIDS+=("$!")
for _ in $(seq 100); do grep -q "joined the portal" "$WORK/gateway2.log" && break; sleep 0.1; done
grep -q "joined the portal" "$WORK/gateway2.log" || die "the gateway did not join: $(tail -5 "$WORK/gateway2.log")"
from=$(date +%s%N)
in_ns "$LAPTOP" curl -sS --max-time 60 -o /dev/null http://10.72.0.2:8080/report.bin \
  || die "the fetch failed: $(tail -5 "$WORK/client.log")"
echo "    20 MB fetched $(ms_since "$from") ms after asking, over a fresh connection to the new gateway."
say "The goodbyes each side counted (firebreak client status)"
in_ns "$LAPTOP" "$FIREBREAK" client status --status-socket "$WORK/client.sock" | grep goodbyes | sed 's/^/    /'

PAGE=${DEMO_TRACE_PAGE:-/tmp/firebreak-demo-trace.html}
"$FIREBREAK" trace "$WORK/gateway.trace.jsonl" "$WORK/client.trace.jsonl" \
  --format html -o "$PAGE" 2>/dev/null || true
say "The whole story as a sequence diagram: $PAGE (open it in a browser; it needs no network)"
