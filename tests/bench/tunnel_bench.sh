#!/usr/bin/env bash
# Tunnel throughput: iperf3 TCP for 10 s through (a) firebreak <-> firebreak and
# (b) wireguard-go <-> wireguard-go, each pair in two fresh network namespaces joined by a veth,
# then both figures in Gbit/s and the ratio ours / wireguard-go (bar: >= 3.0); the same with four
# streams; raw veth between the same namespaces in the same run (the fraction each tunnel carries); CPU
# seconds per GB moved, both ends together (utime + stime of the two tunnel processes, /proc/PID/stat).
#
#   usage: tests/bench/tunnel_bench.sh [FIREBREAK_BINARY]     (default build/apps/firebreak)
#          tests/bench/tunnel_bench.sh --wireguard-go-only    (just the reference figure)
#   env:   BENCH_SECONDS (default 10)
#
# Needs root, iproute2, wireguard-go, wg and iperf3. Everything it creates (namespaces
# fb-<pid>-<n>, daemons, the scratch folder with the keys) is removed on exit, however it exits.
# Both ends, both daemons and iperf3 share this machine's CPUs: compare the two figures with
# each other, not with a real link.
set -euo pipefail

FIREBREAK=${1:-build/apps/firebreak}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
PORT=51820
IPERF_PORT=5201

die() { echo "tunnel_bench: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (network namespaces, TUN devices)"
[[ -c /dev/net/tun ]] || die "/dev/net/tun is missing"
for tool in ip wg wireguard-go iperf3 ss awk; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
if [[ $FIREBREAK != --wireguard-go-only ]]; then
  [[ -x $FIREBREAK ]] || die "no firebreak binary at $FIREBREAK (build it, pass its path, or use --wireguard-go-only)"
  FIREBREAK=$(realpath "$FIREBREAK")
fi

WORK=$(mktemp -d /tmp/fb-bench.XXXXXX)
chmod 700 "$WORK"
NAMESPACES=()
PIDS=()
SERIAL=0

# Ends the processes we started (SIGTERM, up to 3 s, SIGKILL) and deletes our namespaces.
teardown() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  NAMESPACES=()
}
cleanup() {
  set +e
  teardown
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Functions that create things record them in PIDS / NAMESPACES, so they are called directly,
# never in $(...): a subshell's additions would be lost to the cleanup trap.
new_namespace() {  # -> NEW_NS
  SERIAL=$((SERIAL + 1))
  NEW_NS="fb-$$-$SERIAL"
  ip netns add "$NEW_NS"
  NAMESPACES+=("$NEW_NS")
  ip -n "$NEW_NS" link set lo up
}

# wait_for SECONDS COMMAND...: retries COMMAND every 0.1 s
wait_for() {
  local tries=$(($1 * 10)); shift
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# listening NS PORT: is something listening on TCP PORT in NS?
listening() { [[ -n $(ip netns exec "$1" ss -Hltn "sport = :$2") ]]; }

# write_config FILE FORMAT PRIVATE_KEY ADDRESS PEER_PUBLIC_KEY PSK ALLOWED [ENDPOINT]
# FORMAT wg: wg(8) setconf; quick: wg-quick style with Address and MTU (what firebreak reads).
write_config() {
  local file=$1 format=$2 priv=$3 address=$4 peer=$5 psk=$6 allowed=$7 endpoint=${8:-}
  (
    umask 077
    {
      echo "[Interface]"
      echo "PrivateKey = $priv"
      echo "ListenPort = $PORT"
      if [[ $format == quick ]]; then echo "Address = $address"; echo "MTU = 1420"; fi
      echo
      echo "[Peer]"
      echo "PublicKey = $peer"
      echo "PresharedKey = $psk"
      echo "AllowedIPs = $allowed"
      if [[ -n $endpoint ]]; then echo "Endpoint = $endpoint"; echo "PersistentKeepalive = 25"; fi
    } >"$file"
  )
}

# start_peer KIND NS IFNAME CONFIG ADDRESS: KIND is firebreak or wireguard-go
start_peer() {
  local kind=$1 ns=$2 ifname=$3 config=$4 address=$5
  if [[ $kind == firebreak ]]; then
    ip netns exec "$ns" "$FIREBREAK" tunnel --config "$config" --interface "$ifname" \
      >"$WORK/$ifname.log" 2>&1 &
    PIDS+=($!)
    wait_for 15 ip -n "$ns" -o addr show dev "$ifname" up ||
      die "firebreak did not bring up $ifname (log: see below)$(echo; cat "$WORK/$ifname.log")"
  else
    # `ip netns exec` execs in place, so $! is the daemon's own PID.
    ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 \
      wireguard-go -f "$ifname" >"$WORK/$ifname.log" 2>&1 &
    PIDS+=($!)
    wait_for 10 ip -n "$ns" link show dev "$ifname" || die "wireguard-go did not create $ifname"
    ip netns exec "$ns" wg setconf "$ifname" "$config"
    ip -n "$ns" addr add "$address" dev "$ifname"
    ip -n "$ns" link set mtu 1420 up dev "$ifname"
  fi
}

# measure KIND: sets up a KIND <-> KIND tunnel, runs iperf3 through it, tears down -> GBITS
measure() {
  local kind=$1 left right
  local tag="${kind:0:2}"
  new_namespace; left=$NEW_NS
  new_namespace; right=$NEW_NS
  ip link add "veth${SERIAL}a" netns "$left" type veth peer name "veth${SERIAL}b" netns "$right"
  ip -n "$left" addr add 10.99.0.1/24 dev "veth${SERIAL}a"
  ip -n "$right" addr add 10.99.0.2/24 dev "veth${SERIAL}b"
  ip -n "$left" link set "veth${SERIAL}a" up
  ip -n "$right" link set "veth${SERIAL}b" up

  local left_key right_key psk format=wg
  left_key=$(wg genkey)
  right_key=$(wg genkey)
  psk=$(wg genpsk)
  [[ $kind == firebreak ]] && format=quick
  write_config "$WORK/$tag-right.conf" "$format" "$right_key" 10.100.0.2/24 \
    "$(wg pubkey <<<"$left_key")" "$psk" 10.100.0.1/32
  write_config "$WORK/$tag-left.conf" "$format" "$left_key" 10.100.0.1/24 \
    "$(wg pubkey <<<"$right_key")" "$psk" 10.100.0.2/32 "10.99.0.2:$PORT"

  # Interface names must be unique on the host: wireguard-go's UAPI socket
  # /var/run/wireguard/NAME.sock is shared by every namespace. The responder starts first.
  start_peer "$kind" "$right" "fbb$$${tag}r" "$WORK/$tag-right.conf" 10.100.0.2/24
  start_peer "$kind" "$left" "fbb$$${tag}l" "$WORK/$tag-left.conf" 10.100.0.1/24
  wait_for 20 ip netns exec "$left" ping -c 1 -W 1 10.100.0.2 || die "$kind tunnel did not come up"

  local peer_pids=("${PIDS[@]: -2}")
  ip netns exec "$right" iperf3 -s -p "$IPERF_PORT" >"$WORK/$tag-iperf3-server.log" 2>&1 &
  PIDS+=($!)
  wait_for 10 listening "$right" "$IPERF_PORT" || die "iperf3 server did not start"
  local t0 t1
  t0=$(cpu_ticks "${peer_pids[@]}")
  run_iperf "$left" 10.100.0.2 "$tag-1"
  t1=$(cpu_ticks "${peer_pids[@]}")
  GBITS=$(receiver_gbits "$tag-1")
  CPU_S_PER_GB=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v g="$GBITS" -v s="$SECONDS_PER_RUN" \
    'BEGIN { printf "%.2f", (t / hz) / (g * s / 8) }')
  run_iperf "$left" 10.100.0.2 "$tag-4" -P 4
  GBITS4=$(receiver_gbits "$tag-4")
  if [[ $kind == firebreak ]]; then  # the same veth without a tunnel, in the same run
    run_iperf "$left" 10.99.0.2 raw-1
    RAW1=$(receiver_gbits raw-1)
    run_iperf "$left" 10.99.0.2 raw-4 -P 4
    RAW4=$(receiver_gbits raw-4)
  fi
  teardown
}

cpu_ticks() {  # pid... -> utime+stime, clock ticks
  local t=0 pid
  for pid in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$t"
}
# run_iperf NS ADDRESS NAME ARGS...: in the background and waited for, so Ctrl-C or SIGTERM cleans up at once
run_iperf() {
  local ns=$1 address=$2 name=$3; shift 3
  ip netns exec "$ns" iperf3 -c "$address" -p "$IPERF_PORT" -t "$SECONDS_PER_RUN" -f g "$@" >"$WORK/$name.txt" 2>&1 &
  PIDS+=($!)
  wait "$!" || die "iperf3 $name failed: $(cat "$WORK/$name.txt")"
}
# The receiver's summary line ("[SUM]" with -P): "...  1.23 GBytes  1.05 Gbits/sec   receiver"
receiver_gbits() {
  local g
  g=$(awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Gbits/sec") print $(i - 1) }' "$WORK/$1.txt" | tail -n 1)
  [[ -n $g ]] || die "no receiver line in the iperf3 output: $(cat "$WORK/$1.txt")"
  echo "$g"
}

ours=''
if [[ $FIREBREAK != --wireguard-go-only ]]; then
  echo "measuring firebreak <-> firebreak (${SECONDS_PER_RUN} s)..." >&2
  measure firebreak
  ours=$GBITS ours4=$GBITS4 ours_cpu=$CPU_S_PER_GB
fi
echo "measuring wireguard-go <-> wireguard-go (${SECONDS_PER_RUN} s)..." >&2
measure wireguard-go
theirs=$GBITS theirs4=$GBITS4 theirs_cpu=$CPU_S_PER_GB

if [[ -n $ours ]]; then
  printf 'firebreak    <-> firebreak    : %s Gbit/s\n' "$ours"
else
  printf 'firebreak    <-> firebreak    : not measured\n'
fi
printf 'wireguard-go <-> wireguard-go : %s Gbit/s\n' "$theirs"
if [[ -n $ours ]]; then
  printf 'ratio ours / wireguard-go     : %s (bar: >= 3.0)\n' "$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", a / b }')"
  printf 'four streams                  : firebreak %s, wireguard-go %s Gbit/s, ratio %s\n' "$ours4" "$theirs4" \
    "$(awk -v a="$ours4" -v b="$theirs4" 'BEGIN { printf "%.2f", a / b }')"
  printf 'raw veth, same run            : %s Gbit/s (1 stream), %s (4): firebreak carries %s and %s of it\n' \
    "$RAW1" "$RAW4" "$(awk -v a="$ours" -v b="$RAW1" 'BEGIN { printf "%.0f %%", 100 * a / b }')" \
    "$(awk -v a="$ours4" -v b="$RAW4" 'BEGIN { printf "%.0f %%", 100 * a / b }')"
  printf 'CPU s per GB (both ends)      : firebreak %s, wireguard-go %s\n' "$ours_cpu" "$theirs_cpu"
fi
