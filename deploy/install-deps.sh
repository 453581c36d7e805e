#!/usr/bin/env bash
# Installs what Firebreak needs to build, test, benchmark and demo, from Debian's packages only.
#   deploy/install-deps.sh               install everything missing
#   deploy/install-deps.sh --check       exit 1 (and list them) when something is missing
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libcaf-dev libnice-dev libssl-dev libspdlog-dev doctest-dev libcli11-dev nlohmann-json3-dev
  libinih-dev libnl-route-3-dev libbenchmark-dev libsqlite3-dev libboost-dev libboost-system-dev
  libtomlplusplus-dev libnftables-dev libsystemd-dev
  # the portal: its store and its relay
  sqlite3 coturn
  # tests, demo and benchmarks: network namespaces, the interop peer, traffic
  iproute2 nftables iputils-ping procps socat iperf3 wireguard-go wireguard-tools curl python3
  # the actor trace's HTML page, opened headless by its test
  chromium
  # fleet operations: /metrics read by the Prometheus project's own parser; the units checked by
  # systemd-analyze; the bad-input tests drop capabilities (setpriv) and hide the TUN device (unshare)
  python3-prometheus-client systemd util-linux
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Test tooling: the official phoenix JavaScript client runs under Node (npm packages, tests only). A Node
# that already brings its own npm (as some distributions' builds do) is kept; otherwise Debian's.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if [[ ${1:-} == --check ]]; then
  if ((${#missing[@]})); then echo "missing Debian packages: ${missing[*]}"; exit 1; fi
  exit 0
fi
((${#missing[@]})) || exit 0

echo "Installing Debian packages: ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  sudo=sudo
  command -v sudo >/dev/null || { echo "run as root (or install sudo) to install: ${missing[*]}" >&2; exit 1; }
else
  sudo=
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
