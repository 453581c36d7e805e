#!/usr/bin/env bash
# Firebreak end to end, told in plain words: Ada's laptop fetches a web page from an office server it
# has no route to, through the real daemons: `firebreak client` (a TUN interface with routes to her
# resources) and `firebreak gateway` (forwarding into the office network, enforcing her grants).
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

TAG="fbacc$$"
HUB="$TAG-hub" LAPTOP="$TAG-laptop" GATEWAY="$TAG-gw" OFFICE="$TAG-office"
WORK=$(mktemp -d /tmp/firebreak-access-demo.XXXXXX)
chmod 700 "$WORK"
source "$(dirname "$0")/../lib/processes.sh"
cleanup() {
  set +e
  say "Cleaning up: stopping what the demo started and deleting its namespaces..."
  stop_all
  for ns in "$HUB" "$LAPTOP" "$GATEWAY" "$OFFICE"; do ip netns del "$ns" 2>/dev/null; done
  [[ ${DEMO_KEEP:-0} == 1 ]] && echo "    kept $WORK" || rm -rf "$WORK"
  echo "    Done. Nothing is left behind."
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

say "Building a small network: a hub, Ada's laptop, the office gateway, and an office web server"
for ns in "$HUB" "$LAPTOP" "$GATEWAY" "$OFFICE"; do ip netns add "$ns"; in_ns "$ns" ip link set lo up; done
link() {  # ns1 addr1 ns2 addr2 name
  ip link add "$5-a" netns "$1" type veth peer name "$5-b" netns "$3"
  in_ns "$1" ip addr add "$2" dev "$5-a"; in_ns "$1" ip link set "$5-a" up
  in_ns "$3" ip addr add "$4" dev "$5-b"; in_ns "$3" ip link set "$5-b" up
}
link "$HUB" 10.71.1.1/24 "$LAPTOP" 10.71.1.2/24 "${TAG}l"
link "$HUB" 10.71.2.1/24 "$GATEWAY" 10.71.2.2/24 "${TAG}g"
link "$GATEWAY" 10.72.0.1/24 "$OFFICE" 10.72.0.2/24 "${TAG}o"
in_ns "$HUB" sysctl -qw net.ipv4.ip_forward=1
in_ns "$LAPTOP" ip route add default via 10.71.1.1
in_ns "$GATEWAY" ip route add default via 10.71.2.1
echo "    The office network 10.72.0.0/24 is reachable only from the gateway."

say "Starting the office web server (10.72.0.2:8080) with a 20 MB file"
head -c 20000000 /dev/urandom >"$WORK/report.bin"
(cd "$WORK" && exec ip netns exec "$OFFICE" "$PYTHON" -m http.server 8080 --bind 10.72.0.2 >"$WORK/web.log" 2>&1) &
PIDS+=("$!")

say "Starting coturn (the TURN relay) and the portal in the hub"
head -c 24 /dev/urandom | base64 >"$WORK/relay-secret"
start_in_ns "$HUB" "$WORK/turn.log" turnserver -n --listening-ip=10.71.1.1 --listening-port=3478 \
  --relay-ip=10.71.1.1 --use-auth-secret --static-auth-secret="$(cat "$WORK/relay-secret")" --realm=firebreak.demo \
  --no-tls --no-dtls --no-cli --userdb="$WORK/turndb" --pidfile="$WORK/turn.pid" --log-file=stdout --simple-log
start_in_ns "$HUB" "$WORK/portal.log" "$FIREBREAK" portal --data-dir "$WORK/portal" --listen 0.0.0.0:8443 \
  --admin-listen 127.0.0.1:8444 --hostname 10.71.1.1 --hostname 10.71.2.1 --hostname 127.0.0.1 \
  --relay turn-1=10.71.1.1:3478 --relay-secret-file "$WORK/relay-secret" --log-level warn
for _ in $(seq 100); do in_ns "$HUB" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8444' 2>/dev/null && break; sleep 0.1; done

say "An administrator says who may reach what (firebreak admin)"
admin() { in_ns "$HUB" "$FIREBREAK" admin --portal 127.0.0.1:8444 --token-file "$WORK/portal/admin-token" "$@"; }
SITE=$(admin --json sites create office | json_field id)
USER_ID=$(admin --json users create ada --email ada@example.com | json_field id)
GROUP=$(admin --json groups create engineers | json_field id)
admin groups add-member "$GROUP" "$USER_ID" >/dev/null
(umask 077
 admin --json clients create --user "$USER_ID" --name ada-laptop | json_field token >"$WORK/client.token"
 admin --json gateways create --site "$SITE" --name office-gw-1 | json_field token >"$WORK/gateway.token")
WEB=$(admin --json resources create --site "$SITE" --name intranet-web --address 10.72.0.2/32 --filter tcp:8080 | json_field id)
admin policies create --group "$GROUP" --resource "$WEB" >/dev/null
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
   FIREBREAK_LOCAL_ADDRESSES=10.71.1.2 "$FIREBREAK" client >"$WORK/client.log" 2>&1) &
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
