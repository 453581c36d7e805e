#!/usr/bin/env bash
# A peer connection, told in plain words: a portal and a coturn relay run in a "hub" network namespace;
# a client laptop and a gateway each sit in a namespace of their own, joined to the hub by a virtual
# cable. The client asks the portal for access, the two sides find each other with ICE (the portal
# passes their candidates along), and talk WireGuard over the path ICE chose. Then again through the
# relay only, and finally the gateway is killed without warning, to show how long the client needs to
# notice on its own — the wait that the goodbye (the next step) will remove.
#
# The two sides are the project's test peer (build/tests/connection_peer): the real client and gateway
# daemons, with a TUN device and routes, come next.
#
#   usage: deploy/demo/connection_demo.sh [BUILD_DIR]     (default build)
# Needs root (network namespaces). Everything it creates is removed when it ends, even on Ctrl-C.
set -euo pipefail

BUILD=${1:-build}
say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nSorry, the demo cannot go on: %s\n' "$*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "it needs root, to make network namespaces"
FIREBREAK=$(realpath "$BUILD/apps/firebreak" 2>/dev/null) || die "build the project first (make build)"
PEER=$(realpath "$BUILD/tests/connection_peer" 2>/dev/null) || die "build the project first (make build)"
for tool in ip turnserver wg python3; do command -v "$tool" >/dev/null || die "$tool is missing (run deploy/install-deps.sh)"; done

TAG="fbdemo$$"
HUB="$TAG-hub" CLIENT="$TAG-client" GATEWAY="$TAG-gateway"
WORK=$(mktemp -d /tmp/firebreak-connection-demo.XXXXXX)
chmod 700 "$WORK"
source "$(dirname "$0")/../lib/processes.sh"
source "$(dirname "$0")/../lib/office.sh"
cleanup() {
  set +e
  say "Cleaning up: stopping what the demo started and deleting its namespaces..."
  stop_all
  for ns in "$HUB" "$CLIENT" "$GATEWAY"; do ip netns del "$ns" 2>/dev/null; done
  [[ ${DEMO_KEEP:-0} == 1 ]] && echo "    kept $WORK" || rm -rf "$WORK"
  echo "    Done. Nothing is left behind."
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The first line a peer printed for an event (and state), as JSON; empty when there is none yet.
event_of() {
  python3 - "$1" "$2" "${3:-}" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("event") == sys.argv[2] and (not sys.argv[3] or d.get("state") == sys.argv[3]):
        print(json.dumps(d)); break
PY
}
wait_event() {  # file event state seconds
  for _ in $(seq $(( $4 * 10 ))); do [[ -n $(event_of "$1" "$2" "$3") ]] && return 0; sleep 0.1; done
  return 1
}

say "Building a small network: hub 10.71.1.1 / 10.71.2.1, client laptop 10.71.1.2, gateway 10.71.2.2"
for ns in "$HUB" "$CLIENT" "$GATEWAY"; do ip netns add "$ns"; in_ns "$ns" ip link set lo up; done
ip link add "$TAG-c0" netns "$HUB" type veth peer name "$TAG-c1" netns "$CLIENT"
ip link add "$TAG-g0" netns "$HUB" type veth peer name "$TAG-g1" netns "$GATEWAY"
in_ns "$HUB" ip addr add 10.71.1.1/24 dev "$TAG-c0"; in_ns "$HUB" ip link set "$TAG-c0" up
in_ns "$HUB" ip addr add 10.71.2.1/24 dev "$TAG-g0"; in_ns "$HUB" ip link set "$TAG-g0" up
in_ns "$CLIENT" ip addr add 10.71.1.2/24 dev "$TAG-c1"; in_ns "$CLIENT" ip link set "$TAG-c1" up
in_ns "$GATEWAY" ip addr add 10.71.2.2/24 dev "$TAG-g1"; in_ns "$GATEWAY" ip link set "$TAG-g1" up
in_ns "$HUB" sysctl -qw net.ipv4.ip_forward=1
in_ns "$CLIENT" ip route add default via 10.71.1.1
in_ns "$GATEWAY" ip route add default via 10.71.2.1

say "Starting coturn (the TURN relay) and the portal in the hub"
start_relay "$WORK"
start_portal "$FIREBREAK" "$WORK" --relay turn-1=10.71.1.1:3478 --relay-secret-file "$WORK/relay-secret" \
  || die "the portal did not start"
echo "    The portal made its own CA: $WORK/portal/tls/ca-cert.pem"

say "An administrator says who may reach what (firebreak admin)"
enroll_ada "$WORK"
(umask 077; wg genkey >"$WORK/client.key"; wg genkey >"$WORK/gateway.key")
RESOURCE=$(admin --json resources create --site "$SITE" --name intranet --address 10.0.0.0/24 | json_field id)
admin policies create --group "$GROUP" --resource "$RESOURCE" >/dev/null
admin resources list
echo "    Ada's group 'engineers' may reach 'intranet' in the site 'office'."

peer() {  # ns role output extra...
  local ns=$1 role=$2 out=$3 addr; shift 3
  [[ $role == client ]] && addr=10.71.1.2 || addr=10.71.2.2
  local portal=10.71.1.1; [[ $role == gateway ]] && portal=10.71.2.1
  # exec: the PID we keep is the peer's own (ip netns exec runs it in place), so it can be killed.
  (exec ip netns exec "$ns" "$PEER" --portal "$portal:8443" --ca "$WORK/portal/tls/ca-cert.pem" \
    --token-file "$WORK/$role.token" --key-file "$WORK/$role.key" --role "$role" --local-address "$addr" \
    --resource "$RESOURCE" "$@" >"$out" 2>"$out.log") &
  PIDS+=("$!")
}

say "The office gateway comes online"
peer "$GATEWAY" gateway "$WORK/gateway.out" --duration 600
GATEWAY_PID=${PIDS[-1]}
wait_event "$WORK/gateway.out" link "" 20 || die "the gateway did not join the portal: $(tail -3 "$WORK/gateway.out.log")"
echo "    Joined the portal."

setup_of() { event_of "$1" first_packet | json_field setup_ms | xargs printf '%.0f'; }

say "Ada's laptop asks for the intranet: a direct path"
peer "$CLIENT" client "$WORK/direct.out" --packets 20 --until-echoed --duration 20
wait_event "$WORK/direct.out" echoed "" 20 || die "no connection: $(tail -5 "$WORK/direct.out.log")"
echo "    The portal chose the gateway and passed the ICE candidates; the two sides connected directly."
echo "    From flow_created to the first packet decrypted: $(setup_of "$WORK/direct.out") ms. 20 of 20 test packets came back."

say "Again, but the laptop may only use the relay (as behind a strict firewall)"
peer "$CLIENT" client "$WORK/relayed.out" --packets 20 --until-echoed --duration 20 --relay-only
wait_event "$WORK/relayed.out" echoed "" 20 || die "no relayed connection: $(tail -5 "$WORK/relayed.out.log")"
relayed=$(event_of "$WORK/relayed.out" connection connected | json_field relayed)
[[ $relayed == True ]] || die "the connection was not relayed"
echo "    Connected through coturn, with the TURN credentials the portal minted."
echo "    From flow_created to the first packet decrypted: $(setup_of "$WORK/relayed.out") ms."

say "Now the gateway dies without a word (SIGKILL) while the laptop keeps sending"
peer "$CLIENT" client "$WORK/killed.out" --packets 5 --probe-ms 200 --duration 60
wait_event "$WORK/killed.out" echoed "" 20 || die "no connection: $(tail -5 "$WORK/killed.out.log")"
{ kill -KILL "$GATEWAY_PID"; wait "$GATEWAY_PID"; } 2>/dev/null || true
killed_at=$(date +%s.%N)
echo "    Killed. Waiting for the laptop to notice on its own..."
wait_event "$WORK/killed.out" connection failed 30 || die "the laptop did not notice in 30 s"
noticed=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$killed_at" "$(date +%s.%N)")
reason=$(event_of "$WORK/killed.out" connection failed | json_field reason)
echo "    After about $noticed s the laptop marked the connection failed: $reason"
echo "    That wait is what Firebreak's goodbye removes: a gateway that shuts down tells its peers at once."
