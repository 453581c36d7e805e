#!/usr/bin/env bash
# A guided tour: Firebreak and wireguard-go, the reference implementation, build a WireGuard
# tunnel between two network namespaces on this machine, then talk through it.
#
#   usage: sudo deploy/demo/tunnel_demo.sh [FIREBREAK_BINARY]     (default build/apps/firebreak)
#
# Needs root, iproute2, wireguard-go, wg (wireguard-tools), ping and socat. Nothing leaves this
# machine, and everything the demo creates is removed when it ends, even if it fails or you
# press Ctrl-C.
set -euo pipefail

FIREBREAK=${1:-build/apps/firebreak}
PORT=51820

say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nSorry, the demo cannot go on: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "it needs root to create network namespaces; try: sudo $0 ${1:-}"
[[ -c /dev/net/tun ]] || die "this machine has no /dev/net/tun, so no tunnel devices"
for tool in ip wg wireguard-go ping socat sha256sum ss; do
  command -v "$tool" >/dev/null || die "the '$tool' command is not installed"
done
[[ -x $FIREBREAK ]] || die "there is no firebreak binary at '$FIREBREAK'; build the project first, or pass its path"
FIREBREAK=$(realpath "$FIREBREAK")

WORK=$(mktemp -d /tmp/firebreak-demo.XXXXXX)
chmod 700 "$WORK"
NS_FB="fb-$$-1"   # where firebreak runs
NS_WG="fb-$$-2"   # where wireguard-go runs
IF_FB="fbdemo$$"  # interface names: at most 15 characters, unique on this machine
IF_WG="wgdemo$$"
PIDS=()
NAMESPACES=()

cleanup() {
  set +e
  say "Cleaning up: stopping the tunnel programs and deleting the namespaces..."
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$WORK"
  echo "    Done. Nothing is left behind."
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

wait_for() {  # wait_for SECONDS COMMAND...: retries COMMAND every 0.1 s
  local tries=$(($1 * 10)); shift
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

listening() { [[ -n $(ip netns exec "$1" ss -Hltn "sport = :$2") ]]; }  # listening NS PORT

say "Creating two network namespaces, two separate little networks inside this machine:"
for ns in "$NS_FB" "$NS_WG"; do
  ip netns add "$ns"
  NAMESPACES+=("$ns")
  ip -n "$ns" link set lo up
done
echo "    $NS_FB  will run Firebreak"
echo "    $NS_WG  will run wireguard-go"

say "Joining them with a virtual Ethernet cable (10.99.0.1 <-> 10.99.0.2)..."
ip link add veth-fb netns "$NS_FB" type veth peer name veth-wg netns "$NS_WG"
ip -n "$NS_FB" addr add 10.99.0.1/24 dev veth-fb
ip -n "$NS_WG" addr add 10.99.0.2/24 dev veth-wg
ip -n "$NS_FB" link set veth-fb up
ip -n "$NS_WG" link set veth-wg up

say "Generating a key pair for each side and a shared preshared key (they stay in a private temporary folder)..."
FB_KEY=$(wg genkey)
WG_KEY=$(wg genkey)
PSK=$(wg genpsk)
FB_PUB=$(wg pubkey <<<"$FB_KEY")
WG_PUB=$(wg pubkey <<<"$WG_KEY")
echo "    Firebreak's public key:    $FB_PUB"
echo "    wireguard-go's public key: $WG_PUB"

(
  umask 077
  cat >"$WORK/wireguard-go.conf" <<EOF
[Interface]
PrivateKey = $WG_KEY
ListenPort = $PORT

[Peer]
PublicKey = $FB_PUB
PresharedKey = $PSK
AllowedIPs = 10.100.0.1/32
EOF
  cat >"$WORK/firebreak.conf" <<EOF
[Interface]
PrivateKey = $FB_KEY
ListenPort = $PORT
Address = 10.100.0.1/24
MTU = 1420

[Peer]
PublicKey = $WG_PUB
PresharedKey = $PSK
Endpoint = 10.99.0.2:$PORT
AllowedIPs = 10.100.0.2/32
PersistentKeepalive = 25
EOF
)

say "Starting wireguard-go in $NS_WG, tunnel address 10.100.0.2; it waits for Firebreak to call..."
ip netns exec "$NS_WG" env WG_PROCESS_FOREGROUND=1 WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 \
  wireguard-go -f "$IF_WG" >"$WORK/wireguard-go.log" 2>&1 &
PIDS+=($!)
wait_for 10 ip -n "$NS_WG" link show dev "$IF_WG" || die "wireguard-go did not start: $(cat "$WORK/wireguard-go.log")"
ip netns exec "$NS_WG" wg setconf "$IF_WG" "$WORK/wireguard-go.conf"
ip -n "$NS_WG" addr add 10.100.0.2/24 dev "$IF_WG"
ip -n "$NS_WG" link set mtu 1420 up dev "$IF_WG"

say "Starting Firebreak in $NS_FB, tunnel address 10.100.0.1; it knows where wireguard-go is and calls it..."
echo "    $FIREBREAK tunnel --config firebreak.conf --interface $IF_FB"
ip netns exec "$NS_FB" "$FIREBREAK" tunnel --config "$WORK/firebreak.conf" --interface "$IF_FB" \
  >"$WORK/firebreak.log" 2>&1 &
PIDS+=($!)
wait_for 15 ip -n "$NS_FB" -o addr show dev "$IF_FB" up || die "Firebreak did not bring its tunnel up: $(cat "$WORK/firebreak.log")"

say "Waiting for the two to complete their WireGuard handshake..."
wait_for 20 ip netns exec "$NS_FB" ping -c 1 -W 1 10.100.0.2 || die "the tunnel did not come up"
echo "    Handshake done: the tunnel is up."

say "Pinging wireguard-go (10.100.0.2) from Firebreak's side, through the encrypted tunnel, 5 times:"
ip netns exec "$NS_FB" ping -c 5 -i 0.2 10.100.0.2

say "Sending 20 MB of random data from Firebreak's side to wireguard-go's side through the tunnel..."
head -c 20M /dev/urandom >"$WORK/sent.bin"
ip netns exec "$NS_FB" socat -u "FILE:$WORK/sent.bin" TCP-LISTEN:7000,bind=10.100.0.1,reuseaddr \
  >"$WORK/socat.log" 2>&1 &
PIDS+=($!)
wait_for 10 listening "$NS_FB" 7000 || die "the sender did not start: $(cat "$WORK/socat.log")"
start=$(date +%s.%N)
ip netns exec "$NS_WG" socat -u TCP:10.100.0.1:7000,connect-timeout=10 "OPEN:$WORK/received.bin,creat,trunc" &
PIDS+=($!)
wait "$!" || die "the transfer failed"
end=$(date +%s.%N)
sent=$(sha256sum <"$WORK/sent.bin" | cut -d' ' -f1)
received=$(sha256sum <"$WORK/received.bin" | cut -d' ' -f1)
echo "    sent:     $(stat -c %s "$WORK/sent.bin") bytes, sha256 $sent"
echo "    received: $(stat -c %s "$WORK/received.bin") bytes, sha256 $received"
awk -v s="$start" -v e="$end" 'BEGIN { printf "    in %.2f s\n", e - s }'
[[ $sent == "$received" ]] || die "the data that arrived differs from the data sent"
echo "    The checksums match: every byte arrived intact."

say "What wireguard-go reports about its session with Firebreak (wg show $IF_WG):"
ip netns exec "$NS_WG" wg show "$IF_WG"

say "That's it: Firebreak and wireguard-go speak the same WireGuard protocol."
