#!/usr/bin/env bash
# Firebreak end to end, told in plain words: Ada's laptop fetches a web page from an office server it
# has no route to, through the real daemons: `firebreak client` (a TUN interface with routes to her
# resources) and `firebreak gateway` (forwarding into the office network, enforcing her grants). Then
# the goodbye: her access revoked, and the office's gateways upgraded one at a time as Nomad rolls a
# job (start the new one, wait until its /healthz says ready, SIGTERM the old one, SIGKILL after the
# kill_timeout); each time the laptop knows at once, instead of after a timeout, and Ada's browsing
# carries on through the other gateway. Every daemon serves /healthz and Prometheus /metrics, and the
# actors' trace of the whole story ends up as one HTML page.
#
#   [laptop ns] 10.71.1.2 ── 10.71.1.1 [hub ns: portal, coturn] 10.71.2.1 ── 10.71.2.2 [gateway ns]
#                                                                  10.72.0.1 ── 10.72.0.2 [office ns: web server]
#                                      [hub] 10.71.N+1.1 ── 10.71.N+1.2 [gateway N ns] ── [office]  (N = 2, 3)
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
  --health-listen 127.0.0.1:9091 || die "the portal did not start"

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
health_listen = "127.0.0.1:9090"
TOML
(exec ip netns exec "$GATEWAY" "$FIREBREAK" gateway --config "$WORK/gateway.toml" >"$WORK/gateway.log" 2>&1) &
PIDS+=("$!")
GW_PID[1]=$!
for _ in $(seq 100); do grep -q "joined the portal" "$WORK/gateway.log" && break; sleep 0.1; done
grep -q "joined the portal" "$WORK/gateway.log" || die "the gateway did not join: $(tail -5 "$WORK/gateway.log")"
echo "    Joined. Its settings came from a TOML file; environment variables and flags would override them."

say "Ada's laptop starts (firebreak client)"
(exec ip netns exec "$LAPTOP" env FIREBREAK_PORTAL_URL=wss://10.71.1.1:8443 \
   FIREBREAK_PORTAL_CA_FILE="$WORK/portal/tls/ca-cert.pem" FIREBREAK_TOKEN_FILE="$WORK/client.token" \
   FIREBREAK_KEY_FILE="$WORK/client.key" FIREBREAK_STATUS_SOCKET="$WORK/client.sock" \
   FIREBREAK_LOCAL_ADDRESSES=10.71.1.2 FIREBREAK_TRACE=true FIREBREAK_TRACE_FILE="$WORK/client.trace.jsonl" \
   FIREBREAK_HEALTH_LISTEN=127.0.0.1:9090 \
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
  in_ns "$LAPTOP" "$FIREBREAK" client status --json --status-socket "$WORK/client.sock" | python3 -c '
import json, sys
g = (json.load(sys.stdin).get("fast_path") or {}).get
print("    It went past the actors: {} packets opened on the laptop and written to its TUN in {} writes"
      " (TCP segments coalesced), {} sealed straight from its TUN reader.".format(
          g("packets_opened", 0), g("tun_frames_written", 0), g("packets_sealed", 0)))' || true
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
import re
closed = [l for l in open(sys.argv[2]) if re.search(r"connection closed|\] closed \(", l)][-1]
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

# A gateway of the office, configured through its environment as deploy/nomad/gateway.nomad.hcl does:
# gateway N in namespace $2, its token enrolled here. GW_PID[N] and GW_NS[N] are set.
start_env_gateway() {
  local n=$1 ns=$2
  (umask 077; admin --json gateways create --site "$SITE" --name "office-gw-$n" | json_field token >"$WORK/gateway-$n.token")
  (exec ip netns exec "$ns" env FIREBREAK_PORTAL_URL=wss://10.71.1.1:8443 \
     FIREBREAK_PORTAL_CA_FILE="$WORK/portal/tls/ca-cert.pem" FIREBREAK_TOKEN_FILE="$WORK/gateway-$n.token" \
     FIREBREAK_KEY_FILE="$WORK/gateway-$n.key" FIREBREAK_STATUS_SOCKET="$WORK/gateway-$n.sock" \
     FIREBREAK_LOCAL_ADDRESSES="10.71.$((n + 1)).2" FIREBREAK_HEALTH_LISTEN=127.0.0.1:9090 \
     FIREBREAK_TRACE=true FIREBREAK_TRACE_FILE="$WORK/gateway-$n.trace.jsonl" \
     "$FIREBREAK" gateway >"$WORK/gateway-$n.log" 2>&1) &
  PIDS+=("$!")
  GW_PID[$n]=$!
  GW_NS[$n]=$ns
  GW_SOCK[$n]=$WORK/gateway-$n.sock
}
# Waits (up to 20 s) until /healthz in namespace $1 answers 200 (what Nomad's check waits for).
wait_healthy() {
  for _ in $(seq 200); do
    [[ $(in_ns "$1" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9090/healthz) == 200 ]] && return 0
    sleep 0.1
  done
  return 1
}
GW_NS[1]=$GATEWAY
GW_SOCK[1]=$WORK/gateway.sock
# True when gateway $1's status shows a live connection (Ada's).
holds_connection() {
  in_ns "${GW_NS[$1]}" "$FIREBREAK" gateway status --json --status-socket "${GW_SOCK[$1]}" 2>/dev/null \
    | python3 -c 'import json,sys; sys.exit(not any(c["state"] in ("connected","idle") for c in json.load(sys.stdin)["connections"]))'
}

say "A second office gateway starts, configured through its environment, as the Nomad job does it"
office_gateway_namespace 2
start_env_gateway 2 "$GATEWAY_NS"
wait_healthy "${GW_NS[2]}" || die "gateway 2 never became healthy: $(tail -5 "$WORK/gateway-2.log")"
echo "    Its /healthz (what Nomad's health check and the update stanza wait for):"
echo "      $(in_ns "${GW_NS[2]}" curl -s http://127.0.0.1:9090/healthz)"

say "The goodbye (2): the office's gateways are upgraded one at a time, the way Nomad rolls a job"
echo "    Meanwhile Ada's browser fetches the web page every 50 ms."
touch "$WORK/browsing"
(while [[ -f $WORK/browsing ]]; do
   (s=$(date +%s%3N)
    if in_ns "$LAPTOP" curl -s -o /dev/null --max-time 3 http://10.72.0.2:8080/web.log; then r=ok; else r=fail; fi
    echo "$s $(date +%s%3N) $r") >>"$WORK/fetches.log" &
   sleep 0.05
 done; wait) &
PIDS+=("$!")
sleep 1
# The gateway Ada's connection goes through: the one whose status shows a live connection.
serving=""
for n in 1 2; do holds_connection "$n" && serving=$n; done
[[ -n $serving ]] || die "no gateway holds Ada's connection"
sigterms=()
# One step of the rolling upgrade: old gateway $1 is replaced by new gateway $2.
upgrade_step() {
  local old=$1 new=$2
  echo "    Nomad starts gateway $new, the replacement for gateway $old, in an allocation (a network namespace)"
  echo "    of its own, and waits until its /healthz says ready:"
  office_gateway_namespace "$new"
  start_env_gateway "$new" "$GATEWAY_NS"
  wait_healthy "${GW_NS[$new]}" || die "gateway $new never became healthy: $(tail -5 "$WORK/gateway-$new.log")"
  echo "      $(in_ns "${GW_NS[$new]}" curl -s http://127.0.0.1:9090/healthz)"
  echo "    Then it stops gateway $old with SIGTERM (SIGKILL would follow after the job's kill_timeout, 5 s):"
  local at
  at=$(date +%s%3N)
  sigterms+=("$at")
  kill -TERM "${GW_PID[$old]}"
  for _ in $(seq 50); do kill -0 "${GW_PID[$old]}" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "${GW_PID[$old]}" 2>/dev/null; then
    kill -KILL "${GW_PID[$old]}"; echo "      it needed SIGKILL"
  else
    echo "      it said goodbye to its clients and exited by itself within $(( $(date +%s%3N) - at )) ms."
  fi
  sleep 2  # Nomad's min_healthy_time, shortened: the next step waits for this one to settle
}
echo "    Ada's connection goes through gateway $serving; it is upgraded first."
upgrade_step "$serving" 3
upgrade_step "$(( serving == 1 ? 2 : 1 ))" 4
sleep 1
rm -f "$WORK/browsing"
sleep 3.5
python3 - "$WORK/fetches.log" "${sigterms[@]}" <<'PY'
import sys
rows = sorted((int(a), int(b), r) for a, b, r in (l.split() for l in open(sys.argv[1]) if l.strip()))
for i, t in enumerate(int(x) for x in sys.argv[2:]):
    after = [b for a, b, r in rows if r == "ok" and a >= t]
    print(f"    Step {i + 1}: the first fetch started after the SIGTERM succeeded {min(after) - t} ms after it.")
failed = sum(r != "ok" for _, _, r in rows)
longest, bad = 0, None
for a, b, r in rows:
    good = r == "ok" and b - a <= 1000
    if not good and bad is None: bad = a
    if good and bad is not None: longest, bad = max(longest, a - bad), None
print(f"    Ada's browser made {len(rows)} fetches during the upgrade, {failed} failed; the longest the page was")
print(f"    out of reach: {longest} ms. (Without the goodbye, her laptop would wait about 10 s each time.)")
PY
# The gateway Ada is on now.
now_on=3
holds_connection 4 && now_on=4

say "Health and metrics: every daemon serves /healthz and Prometheus /metrics (--health-listen)"
echo "    The laptop's /metrics, a few of its lines:"
in_ns "$LAPTOP" curl -s http://127.0.0.1:9090/metrics \
  | grep -E '^firebreak_(goodbyes_received_total|flows_(requested|granted)_total|handshakes_total|flow_setup_seconds_(count|sum))' \
  | sed 's/^/      /'
echo "    The /metrics of gateway $now_on, which Ada's connection goes through now, a few of its lines:"
in_ns "${GW_NS[$now_on]}" curl -s http://127.0.0.1:9090/metrics \
  | grep -E '^firebreak_(ready|connections\{.*connected|flows_(requested|granted)_total|handshakes_total|tunnel_bytes_total|flow_setup_seconds_count)' \
  | sed 's/^/      /'
echo "    The portal's:"
in_ns "$HUB" curl -s http://127.0.0.1:9091/metrics | grep -E '^firebreak_portal_(sessions|flows_(requested|granted)_total)' \
  | sed 's/^/      /'

PAGE=${DEMO_TRACE_PAGE:-/tmp/firebreak-demo-trace.html}
"$FIREBREAK" trace "$WORK"/gateway*.trace.jsonl "$WORK/client.trace.jsonl" \
  --format html -o "$PAGE" 2>/dev/null || true
say "The whole story as a sequence diagram: $PAGE (open it in a browser; it needs no network)"
