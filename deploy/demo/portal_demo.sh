#!/usr/bin/env bash
# A guided tour of the portal: it starts on an empty data directory, makes its own TLS CA and admin
# token, and an administrator describes who may reach what with `firebreak admin`. Then a grant is
# revoked and the portal shows the flow table empty again.
#
#   usage: deploy/demo/portal_demo.sh [FIREBREAK_BINARY]     (default build/apps/firebreak)
#
# Listens on 127.0.0.1 only; everything it creates is removed when it ends, even on Ctrl-C.
set -euo pipefail

FIREBREAK=${1:-build/apps/firebreak}
say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nSorry, the demo cannot go on: %s\n' "$*" >&2; exit 1; }
[[ -x $FIREBREAK ]] || die "there is no firebreak binary at '$FIREBREAK'; build the project first, or pass its path"
FIREBREAK=$(realpath "$FIREBREAK")

WORK=$(mktemp -d /tmp/firebreak-portal-demo.XXXXXX)
PORTAL_PID=
cleanup() {
  set +e
  say "Cleaning up: stopping the portal and removing its data directory..."
  if [[ -n $PORTAL_PID ]]; then
    kill -TERM "$PORTAL_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$PORTAL_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PORTAL_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
  echo "    Done. Nothing is left behind."
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
              shuf -i 20000-60000 -n 1; }
PORT=$(free_port)
ADMIN_PORT=$(free_port)

say "Starting the portal on an empty data directory ($WORK/data)."
echo "    It creates its SQLite database, a private TLS certificate authority and an admin token."
"$FIREBREAK" portal --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  > "$WORK/portal.log" 2>&1 &
PORTAL_PID=$!
for _ in $(seq 100); do [[ -s $WORK/data/admin-token ]] && grep -q "admin API" "$WORK/portal.log" && break; sleep 0.1; done
kill -0 "$PORTAL_PID" 2>/dev/null || { cat "$WORK/portal.log"; die "the portal did not start"; }
sed 's/^/    portal: /' "$WORK/portal.log"

admin() { "$FIREBREAK" admin --portal "127.0.0.1:$ADMIN_PORT" --token-file "$WORK/data/admin-token" "$@"; }
id_of() { admin --json "$@" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | head -1; }

say "An administrator describes the company: a site, its gateway, a user in a group, her laptop."
SITE=$(id_of sites create headquarters)
admin gateways create --site "$SITE" --name gw-hq-1 | sed 's/^/    /'
USER_ID=$(id_of users create alice --email alice@example.com)
GROUP=$(id_of groups create engineering)
admin groups add-member "$GROUP" "$USER_ID" > /dev/null
admin clients create --user "$USER_ID" --name alice-laptop | sed 's/^/    /'

say "Two resources behind the site, and a policy: engineering may reach the wiki (for 10 minutes)."
WIKI=$(id_of resources create --site "$SITE" --name wiki --address 10.20.0.10 --filter tcp:443-443)
admin resources create --site "$SITE" --name payroll --address 10.20.0.20 > /dev/null
POLICY=$(id_of policies create --group "$GROUP" --resource "$WIKI" --expires-in 10m)
admin resources list | sed 's/^/    /'
echo
admin policies list | sed 's/^/    /'

say "Revoking the policy. With live flows, gateways would hear reject_access at once and clients resource_deleted."
admin policies delete "$POLICY" | sed 's/^/    /'
admin policies list | sed 's/^/    /'

say "That's the portal. Clients and gateways join it over TLS WebSockets (Phoenix channels) at"
echo "    wss://127.0.0.1:$PORT/socket/websocket, trusting $WORK/data/tls/ca-cert.pem."
