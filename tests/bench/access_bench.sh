#!/usr/bin/env bash
# The daemons' speed, each figure beside its anchor from the same run:
#   1. iperf3 TCP from a client to a resource behind a gateway, through `firebreak client` and
#      `firebreak gateway`, and through a wireguard-go tunnel between the same two namespaces (the same
#      forwarding and masquerade on the gateway side, the same MTU 1280). Both tunnels stay up and the
#      client's route to the resource alternates between them, round after round, so both see the same
#      machine; the medians in Gbit/s and their ratio.
#   2. First-packet latency: a cold client (just started and joined, no flow yet) pings the resource;
#      ping's own time for that first echo covers create_flow, the portal, ICE, the WireGuard handshake
#      and the forwarding. p50/p95 over BENCH_RUNS runs, beside a cold wireguard-go tunnel's first ping
#      (its handshake only: no signalling, no ICE).
#   4. The data path: TCP with one and four streams in both directions, UDP packets per second in both
#      directions (1200-byte payloads, 1228-byte IP packets: the largest the tunnel MTU of 1280 carries
#      whole; iperf3 -b 3G, more than any of them carries), each through Firebreak, wireguard-go and
#      raw veth (an iperf3
#      server on the gateway's underlay address: the same two veth hops, no tunnel), with Firebreak's
#      ratio to wireguard-go (bar: >= 3.0 on TCP) and its fraction of raw; CPU seconds per GB moved on
#      each side (utime + stime from /proc/PID/stat around the one-stream upload); then the client again,
#      relay only through coturn, beside the direct figures.
#
#   [laptop] 10.71.1.2 ── 10.71.1.1 [hub: portal, coturn] 10.71.2.1 ── 10.71.2.2 [gateway] 10.72.0.1 ── 10.72.0.2 [office: iperf3 -s]
#
#   usage: tests/bench/access_bench.sh [BUILD_DIR]     env: BENCH_SECONDS (10), BENCH_RUNS (20), BENCH_ROUNDS (3)
#   3. The actor trace's cost: each round also runs Firebreak with both daemons' trace switched on at
#      run time (`firebreak client|gateway trace on`), beside the same round with it off; the medians and
#      their difference (bar: under 2 %).
#   BENCH_PERF=FILE records a perf profile of the whole machine during the first Firebreak round.
# Needs root. Everything it starts is stopped by PID; its namespaces are deleted, however it exits.
# Every process shares this machine's 2 cores: compare the figures with each other, not with a real link.
set -euo pipefail

BUILD=${1:-build}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
RUNS=${BENCH_RUNS:-20}
ROUNDS=${BENCH_ROUNDS:-3}
die() { echo "access_bench: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "needs root (network namespaces, TUN devices)"
FIREBREAK=$(realpath "$BUILD/apps/firebreak" 2>/dev/null) || die "build first (make build)"
for tool in ip iperf3 wireguard-go wg python3 ping nft; do command -v "$tool" >/dev/null || die "$tool is not installed"; done

WORK=$(mktemp -d /tmp/firebreak-access-bench.XXXXXX)
chmod 700 "$WORK"
source "$(dirname "$0")/../../deploy/lib/processes.sh"
source "$(dirname "$0")/../../deploy/lib/office.sh"
cleanup() {
  set +e
  stop_all
  delete_namespaces
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
office_network "fbab$$"
start_in_ns "$OFFICE" "$WORK/iperf3-server.log" iperf3 -s -B 10.72.0.2
# Raw veth: the same two hops the tunnel rides on (laptop -> hub -> gateway), no tunnel.
start_in_ns "$GATEWAY" "$WORK/iperf3-raw.log" iperf3 -s -B 10.71.2.2
start_relay "$WORK"
start_portal "$FIREBREAK" "$WORK" --relay turn-1=10.71.1.1:3478 --relay-secret-file "$WORK/relay-secret" ||
  die "the portal did not start"
enroll_ada "$WORK"
RESOURCE=$(admin --json resources create --site "$SITE" --name office --address 10.72.0.2 | json_field id)
admin policies create --group "$GROUP" --resource "$RESOURCE" >/dev/null

CA="$WORK/portal/tls/ca-cert.pem"
start_in_ns "$GATEWAY" "$WORK/gateway.log" "$FIREBREAK" gateway --portal-url wss://10.71.2.1:8443 \
  --portal-ca-file "$CA" --token-file "$WORK/gateway.token" --key-file "$WORK/gateway.key" \
  --status-socket "$WORK/gateway.sock" --local-address 10.71.2.2 --log-level warn \
  --trace-file "$WORK/gateway.trace.jsonl"
GATEWAY_PID=$LAST_PID

start_client() {  # [--relay-only] -> CLIENT_PID; waits until the resource is routed (joined, init applied)
  start_in_ns "$LAPTOP" "$WORK/client.log" "$FIREBREAK" client "$@" --portal-url wss://10.71.1.1:8443 \
    --portal-ca-file "$CA" --token-file "$WORK/client.token" --key-file "$WORK/client.key" \
    --status-socket "$WORK/client.sock" --local-address 10.71.1.2 --log-level warn \
    --trace-file "$WORK/client.trace.jsonl"
  CLIENT_PID=$LAST_PID
  for _ in $(seq 200); do in_ns "$LAPTOP" ip route show | grep -q '^10.72.0.2 dev' && return 0; sleep 0.05; done
  die "the client did not route its resource: $(tail -5 "$WORK/client.log")"
}
first_ping_ms() {  # the first echo's round trip, from ping itself
  in_ns "$LAPTOP" ping -c 1 -W 5 10.72.0.2 | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p'
}
iperf_gbits() {
  in_ns "$LAPTOP" iperf3 -c 10.72.0.2 -t "$SECONDS_PER_RUN" -J >"$WORK/iperf.json" || die "iperf3 failed: $(tail -3 "$WORK/iperf.json")"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"] / 1e9))' "$WORK/iperf.json"
}
percentiles() {  # values on stdin -> "p50 p95"
  python3 -c '
import sys
v = sorted(float(x) for x in sys.stdin.read().split())
if not v: print("- -"); sys.exit()
pick = lambda q: v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
print(f"{pick(0.5):.1f} {pick(0.95):.1f}")'
}

echo "access bench: client -> gateway -> resource, $SECONDS_PER_RUN s of iperf3 TCP each, $RUNS cold first packets each"

# ---- Firebreak ----
for _ in $(seq 100); do [[ -S $WORK/gateway.sock ]] && break; sleep 0.1; done
sleep 1  # the gateway joins the portal
: >"$WORK/fb-first.txt"
for _ in $(seq "$RUNS"); do
  start_client
  ms=$(first_ping_ms || true)
  [[ -n $ms ]] && echo "$ms" >>"$WORK/fb-first.txt"
  stop_pid "$CLIENT_PID"
done
fb_ok=$(wc -l <"$WORK/fb-first.txt")

# ---- wireguard-go, between the same namespaces, the gateway forwarding and masquerading the same way ----
for side in laptop gw; do (umask 077; wg genkey >"$WORK/wg-$side.key"); wg pubkey <"$WORK/wg-$side.key" >"$WORK/wg-$side.pub"; done
wg_up() {  # ns ifname key address peer_pub allowed endpoint
  start_in_ns "$1" "$WORK/$2.log" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$2"
  for _ in $(seq 100); do in_ns "$1" ip link show "$2" >/dev/null 2>&1 && break; sleep 0.05; done
  in_ns "$1" wg set "$2" private-key "$3" listen-port 51820 peer "$5" allowed-ips "$6" ${7:+endpoint "$7"}
  in_ns "$1" ip addr add "$4" dev "$2"
  in_ns "$1" ip link set "$2" mtu 1280 up
}
: >"$WORK/wg-first.txt"
in_ns "$GATEWAY" nft add table ip benchnat
in_ns "$GATEWAY" nft add chain ip benchnat post '{ type nat hook postrouting priority 100; }'
in_ns "$GATEWAY" nft add rule ip benchnat post ip saddr 100.65.0.0/16 oifname != wgb0 masquerade
for run in $(seq "$RUNS"); do
  # Cold each time: both ends new, no session yet.
  wg_up "$GATEWAY" wgb0 "$WORK/wg-gw.key" 100.65.0.1/32 "$(cat "$WORK/wg-laptop.pub")" 100.65.0.2/32
  WG_GW_PID=$LAST_PID
  wg_up "$LAPTOP" wgb1 "$WORK/wg-laptop.key" 100.65.0.2/32 "$(cat "$WORK/wg-gw.pub")" 10.72.0.0/24 10.71.2.2:51820
  WG_LAPTOP_PID=$LAST_PID
  in_ns "$GATEWAY" ip route add 100.65.0.2/32 dev wgb0
  in_ns "$LAPTOP" ip route add 10.72.0.0/24 dev wgb1
  ms=$(first_ping_ms || true)
  [[ -n $ms ]] && echo "$ms" >>"$WORK/wg-first.txt"
  if [[ $run -lt $RUNS ]]; then stop_pid "$WG_LAPTOP_PID"; stop_pid "$WG_GW_PID"; fi
done

# ---- throughput: both tunnels up; the laptop's route to the resource alternates between them ----
start_client
first_ping_ms >/dev/null || true
in_ns "$GATEWAY" sysctl -qw net.ipv4.ip_forward=1
: >"$WORK/fb-gbits.txt"; : >"$WORK/wg-gbits.txt"; : >"$WORK/fbt-gbits.txt"
trace_switch() {  # on|off, both daemons, at run time
  in_ns "$LAPTOP" "$FIREBREAK" client trace "$1" --status-socket "$WORK/client.sock" >/dev/null || die "client trace $1 failed"
  in_ns "$GATEWAY" "$FIREBREAK" gateway trace "$1" --status-socket "$WORK/gateway.sock" >/dev/null || die "gateway trace $1 failed"
}
for round in $(seq "$ROUNDS"); do
  in_ns "$LAPTOP" ip route replace 10.72.0.2/32 dev fb-client
  if [[ -n ${BENCH_PERF:-} && $round -eq 1 ]]; then  # a profile of the machine during one Firebreak run
    perf record -a -g -o "$BENCH_PERF" -- sleep "$SECONDS_PER_RUN" >/dev/null 2>&1 &
    PERF_PID=$!
  fi
  fb=$(iperf_gbits); echo "$fb" >>"$WORK/fb-gbits.txt"
  [[ -n ${PERF_PID:-} ]] && { wait "$PERF_PID" || true; PERF_PID=; }
  trace_switch on
  fbt=$(iperf_gbits); echo "$fbt" >>"$WORK/fbt-gbits.txt"
  trace_switch off
  in_ns "$LAPTOP" ip route replace 10.72.0.2/32 dev wgb1
  wg=$(iperf_gbits); echo "$wg" >>"$WORK/wg-gbits.txt"
  echo "  round $round: firebreak $fb Gbit/s (with the actor trace on: $fbt), wireguard-go $wg Gbit/s"
done
median() { python3 -c 'import statistics,sys; print("%.2f" % statistics.median(float(x) for x in sys.stdin.read().split()))'; }
fb_gbits=$(median <"$WORK/fb-gbits.txt")
wg_gbits=$(median <"$WORK/wg-gbits.txt")
fbt_gbits=$(median <"$WORK/fbt-gbits.txt")
trace_cost=$(python3 -c "import sys; print(f'{(1 - float(sys.argv[2]) / float(sys.argv[1])) * 100:+.1f} %')" "$fb_gbits" "$fbt_gbits")

read -r fb_p50 fb_p95 < <(percentiles <"$WORK/fb-first.txt")
read -r wg_p50 wg_p95 < <(percentiles <"$WORK/wg-first.txt")
ratio=$(python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$fb_gbits" "$wg_gbits")
echo
echo "  iperf3 TCP client -> resource (median of $ROUNDS alternating rounds)"
echo "      firebreak $fb_gbits Gbit/s   wireguard-go $wg_gbits Gbit/s   ratio $ratio (bar: >= 1.0)"
echo "  the actor trace's cost (same rounds): trace off $fb_gbits Gbit/s, on $fbt_gbits Gbit/s: $trace_cost (bar: < 2 %)"
echo "  first packet -> first answer (cold, $RUNS runs)"
echo "      firebreak p50 $fb_p50 ms  p95 $fb_p95 ms  ($fb_ok of $RUNS answered; bar: p50 < 150 ms)"
echo "      wireguard-go p50 $wg_p50 ms  p95 $wg_p95 ms  (its handshake only: no portal, no ICE)"

# ---- the data path: one and four TCP streams both ways, UDP packets per second both ways, CPU per GB,
# ---- each beside wireguard-go and raw veth in the same run; then the relay beside direct ----
cpu_ticks() {  # pid... -> utime+stime in clock ticks, summed
  local t=0 pid
  for pid in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$t"
}
# iperf_run NAME TARGET ARGS... -> WORK/NAME.json
iperf_run() {
  local name=$1 target=$2; shift 2
  in_ns "$LAPTOP" iperf3 -c "$target" -t "$SECONDS_PER_RUN" -J "$@" >"$WORK/$name.json" ||
    die "iperf3 $name failed: $(tail -3 "$WORK/$name.json")"
}
tcp_gbits() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"] / 1e9))' "$1"; }
tcp_bytes() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["end"]["sum_received"]["bytes"])' "$1"; }
udp_kpps() {  # delivered 1200-byte datagrams per second, thousands (the receiver's side)
  python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["end"]
s = e.get("sum_received") or e.get("sum")
if not s:
    print("n/a")  # iperf3 lost its summary (its control connection starved under the flood)
    sys.exit()
if "packets" in s and "lost_packets" in s:
    pps = (s["packets"] - s["lost_packets"]) / s["seconds"]
else:
    pps = s["bytes"] / 1200 / s["seconds"]
print("%.0f" % (pps / 1e3))' "$1"
}
CLK_TCK=$(getconf CLK_TCK)
s_per_gb() {  # ticks bytes -> CPU seconds per GB
  python3 -c "import sys; t,b,hz=map(float,sys.argv[1:]); print(f'{t / hz / (b / 1e9):.2f}')" "$1" "$2" "$CLK_TCK"
}
# measure KIND TARGET CLIENT_PID GATEWAY_PID: every figure for one kind of path, into WORK/KIND.*
measure() {
  local kind=$1 target=$2 cpid=$3 gpid=$4 c0 g0 c1 g1
  c0=$(cpu_ticks $cpid); g0=$(cpu_ticks $gpid)
  iperf_run "$kind-tcp1" "$target"
  c1=$(cpu_ticks $cpid); g1=$(cpu_ticks $gpid)
  local bytes; bytes=$(tcp_bytes "$WORK/$kind-tcp1.json")
  echo "$(s_per_gb $((c1 - c0)) "$bytes") $(s_per_gb $((g1 - g0)) "$bytes")" >"$WORK/$kind.cpu"
  iperf_run "$kind-tcp4" "$target" -P 4
  iperf_run "$kind-tcp1r" "$target" -R
  iperf_run "$kind-tcp4r" "$target" -R -P 4
  iperf_run "$kind-udp" "$target" -u -b 3G -l 1200
  iperf_run "$kind-udpr" "$target" -u -b 3G -l 1200 -R
}
in_ns "$LAPTOP" ip route replace 10.72.0.2/32 dev fb-client
measure fb 10.72.0.2 "$CLIENT_PID" "$GATEWAY_PID"
fb_status_client=$(in_ns "$LAPTOP" "$FIREBREAK" client status --json --status-socket "$WORK/client.sock" 2>/dev/null || true)
in_ns "$LAPTOP" ip route replace 10.72.0.2/32 dev wgb1
measure wg 10.72.0.2 "$WG_LAPTOP_PID" "$WG_GW_PID"
# Raw: no daemon carries it, so no CPU figure (the kernel's share shows in the others' system time).
iperf_run raw-tcp1 10.71.2.2; iperf_run raw-tcp4 10.71.2.2 -P 4
iperf_run raw-tcp1r 10.71.2.2 -R; iperf_run raw-tcp4r 10.71.2.2 -R -P 4
iperf_run raw-udp 10.71.2.2 -u -b 3G -l 1200; iperf_run raw-udpr 10.71.2.2 -u -b 3G -l 1200 -R
# Relayed: the client again, relay only (coturn in the hub carries every datagram).
stop_pid "$CLIENT_PID"
start_client --relay-only
first_ping_ms >/dev/null || true
in_ns "$LAPTOP" ip route replace 10.72.0.2/32 dev fb-client
iperf_run relay-tcp1 10.72.0.2
iperf_run relay-tcp1r 10.72.0.2 -R
relay_path=$(in_ns "$LAPTOP" "$FIREBREAK" client status --json --status-socket "$WORK/client.sock" |
  python3 -c 'import json,sys; print(",".join(c.get("path","?") for c in json.load(sys.stdin).get("connections",[])))' || true)

row() {  # label test -> "fb wg raw  fb/wg  fb/raw"
  local fbv wgv rawv
  fbv=$($2 "$WORK/fb-$1.json"); wgv=$($2 "$WORK/wg-$1.json"); rawv=$($2 "$WORK/raw-$1.json")
  python3 -c "
import sys
v = sys.argv[1:4]
if 'n/a' in v: print(f'{v[0]:>8} {v[1]:>8} {v[2]:>8}'); sys.exit()
f, w, r = map(float, v)
print(f'{f:>8} {w:>8} {r:>8}   {f/w if w else 0:5.2f}x wg-go   {f/r if r else 0:5.1%} of raw')" "$fbv" "$wgv" "$rawv"
}
echo
echo "  data path, same run (firebreak  wireguard-go  raw veth; bar: >= 3.0x wireguard-go on TCP)"
echo "      TCP 1 stream  client->resource Gbit/s  $(row tcp1 tcp_gbits)"
echo "      TCP 4 streams client->resource Gbit/s  $(row tcp4 tcp_gbits)"
echo "      TCP 1 stream  resource->client Gbit/s  $(row tcp1r tcp_gbits)"
echo "      TCP 4 streams resource->client Gbit/s  $(row tcp4r tcp_gbits)"
echo "      UDP 1228 B IP client->resource kpps    $(row udp udp_kpps)"
echo "      UDP 1228 B IP resource->client kpps    $(row udpr udp_kpps)"
read -r fb_cpu_c fb_cpu_g <"$WORK/fb.cpu"; read -r wg_cpu_c wg_cpu_g <"$WORK/wg.cpu"
echo "      CPU s per GB (TCP 1 stream up): firebreak client $fb_cpu_c, gateway $fb_cpu_g;" \
  "wireguard-go laptop $wg_cpu_c, gateway $wg_cpu_g"
echo "      relayed through coturn ($relay_path): TCP up $(tcp_gbits "$WORK/relay-tcp1.json") Gbit/s," \
  "down $(tcp_gbits "$WORK/relay-tcp1r.json") Gbit/s; direct: up $(tcp_gbits "$WORK/fb-tcp1.json")," \
  "down $(tcp_gbits "$WORK/fb-tcp1r.json") Gbit/s"
echo "      fast path (client): $(echo "$fb_status_client" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("fast_path"))' 2>/dev/null || echo unknown)"
