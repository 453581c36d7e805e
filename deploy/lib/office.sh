# The small network the demos and benches build, and its portal. Source processes.sh first.
#
#   [laptop] 10.71.1.2 ── 10.71.1.1 [hub: portal, coturn] 10.71.2.1 ── 10.71.2.2 [gateway] 10.72.0.1 ── 10.72.0.2 [office]
#
#   office_network TAG        creates the namespaces $TAG-hub, -laptop, -gw, -office (HUB LAPTOP GATEWAY
#                             OFFICE), links them as drawn, the hub routing; delete_namespaces removes them
#   office_gateway_namespace N   one more gateway namespace for the office (N >= 2), as a Nomad
#                             allocation in bridge mode gets: $TAG-gwN, 10.71.(N+1).2 towards the hub and
#                             10.(N+74).0.1 towards the office; GATEWAY_NS is its name; removed with the rest
#   start_relay WORK          coturn in the hub on 10.71.1.1:3478 with a fresh secret in WORK/relay-secret
#   start_portal FIREBREAK WORK [ARGS...]   the portal in the hub (admin API on 127.0.0.1:8444), waits for it
#   admin ARGS...             firebreak admin in the hub, with the portal's admin token
#   enroll_ada WORK           a site "office", a user ada in group "engineers", her laptop and the office
#                             gateway: SITE USER_ID GROUP set, WORK/client.token and WORK/gateway.token written
#   in_ns NS CMD...           CMD inside NS;   json_field KEY   reads KEY from the JSON on stdin

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

office_network() {
  local tag=$1
  HUB="$tag-hub" LAPTOP="$tag-laptop" GATEWAY="$tag-gw" OFFICE="$tag-office"
  local ns
  for ns in "$HUB" "$LAPTOP" "$GATEWAY" "$OFFICE"; do ip netns add "$ns"; in_ns "$ns" ip link set lo up; done
  _link "$HUB" 10.71.1.1/24 "$LAPTOP" 10.71.1.2/24 "${tag}l"
  _link "$HUB" 10.71.2.1/24 "$GATEWAY" 10.71.2.2/24 "${tag}g"
  _link "$GATEWAY" 10.72.0.1/24 "$OFFICE" 10.72.0.2/24 "${tag}o"
  in_ns "$HUB" sysctl -qw net.ipv4.ip_forward=1
  in_ns "$LAPTOP" ip route add default via 10.71.1.1
  in_ns "$GATEWAY" ip route add default via 10.71.2.1
}

EXTRA_NS=()
office_gateway_namespace() {
  local n=$1 tag=${HUB%-hub}
  GATEWAY_NS="$tag-gw$n"
  ip netns add "$GATEWAY_NS"; in_ns "$GATEWAY_NS" ip link set lo up
  EXTRA_NS+=("$GATEWAY_NS")
  # Interface names stay within 15 characters: the tag, one character, "-a"/"-b".
  local office_side=(- - q r s t u v w)
  _link "$HUB" "10.71.$((n + 1)).1/24" "$GATEWAY_NS" "10.71.$((n + 1)).2/24" "${tag}$n"
  _link "$GATEWAY_NS" "10.$((n + 74)).0.1/24" "$OFFICE" "10.$((n + 74)).0.2/24" "${tag}${office_side[$n]}"
  in_ns "$GATEWAY_NS" ip route add default via "10.71.$((n + 1)).1"
  in_ns "$GATEWAY_NS" ip route add 10.72.0.0/24 via "10.$((n + 74)).0.2"
}

delete_namespaces() {
  local ns
  for ns in "${EXTRA_NS[@]}" "$HUB" "$LAPTOP" "$GATEWAY" "$OFFICE"; do [[ -n $ns ]] && ip netns del "$ns" 2>/dev/null; done
  return 0
}

_link() {  # ns1 addr1 ns2 addr2 name
  ip link add "$5-a" netns "$1" type veth peer name "$5-b" netns "$3"
  in_ns "$1" ip addr add "$2" dev "$5-a"; in_ns "$1" ip link set "$5-a" up
  in_ns "$3" ip addr add "$4" dev "$5-b"; in_ns "$3" ip link set "$5-b" up
}

start_relay() {
  local work=$1
  head -c 24 /dev/urandom | base64 >"$work/relay-secret"
  start_in_ns "$HUB" "$work/turn.log" turnserver -n --listening-ip=10.71.1.1 --listening-port=3478 \
    --relay-ip=10.71.1.1 --use-auth-secret --static-auth-secret="$(cat "$work/relay-secret")" \
    --realm=firebreak.demo --no-tls --no-dtls --no-cli --userdb="$work/turndb" --pidfile="$work/turn.pid" \
    --log-file=stdout --simple-log
}

start_portal() {
  local firebreak=$1 work=$2; shift 2
  _FIREBREAK=$firebreak _WORK=$work
  start_in_ns "$HUB" "$work/portal.log" "$firebreak" portal --data-dir "$work/portal" --listen 0.0.0.0:8443 \
    --admin-listen 127.0.0.1:8444 --hostname 10.71.1.1 --hostname 10.71.2.1 --hostname 127.0.0.1 \
    --log-level warn "$@"
  for _ in $(seq 100); do in_ns "$HUB" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8444' 2>/dev/null && return 0; sleep 0.1; done
  echo "the portal did not start: $(tail -3 "$work/portal.log")" >&2
  return 1
}

admin() { in_ns "$HUB" "$_FIREBREAK" admin --portal 127.0.0.1:8444 --token-file "$_WORK/portal/admin-token" "$@"; }

enroll_ada() {
  local work=$1
  SITE=$(admin --json sites create office | json_field id)
  USER_ID=$(admin --json users create ada --email ada@example.com | json_field id)
  GROUP=$(admin --json groups create engineers | json_field id)
  admin groups add-member "$GROUP" "$USER_ID" >/dev/null
  (umask 077
   admin --json clients create --user "$USER_ID" --name ada-laptop | json_field token >"$work/client.token"
   admin --json gateways create --site "$SITE" --name office-gw-1 | json_field token >"$work/gateway.token")
}
