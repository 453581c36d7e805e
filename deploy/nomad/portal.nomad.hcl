# The Firebreak portal: `firebreak portal`, the control plane. One allocation, its SQLite database on a
# host volume of the node that holds it.
#
#   nomad var put firebreak/relay static_auth_secret=@relay-secret     # shared with coturn.nomad.hcl
#   nomad acl policy apply -namespace default -job firebreak-portal firebreak-portal-relay relay.policy.hcl
#   nomad job run -var 'hostnames=["portal.example.net"]' \
#       -var 'relays=["relay1=turn.example.net:3478"]' portal.nomad.hcl
#
# where relay.policy.hcl grants read on the variable path "firebreak/relay" (jobs read nomad/jobs/<job>
# on their own; a path two jobs share needs this policy for each).
#
# The portal node's agent configuration needs the volume, a directory owned by the `firebreak` user:
#
#   client {
#     host_volume "firebreak-portal" {
#       path      = "/var/lib/firebreak/portal"
#       read_only = false
#     }
#   }
#
# On first start the portal creates portal.db, a private TLS CA (tls/ca-cert.pem: hand it to gateways
# and clients as their portal CA file) and the admin token (admin-token) in that directory. The admin
# API listens on the node's loopback only; use it from the allocation:
#
#   nomad alloc exec -task portal <alloc> /usr/bin/firebreak admin sites list
#
# (`firebreak admin` defaults to 127.0.0.1:8444 and the admin token in the default data directory.)

variable "hostnames" {
  description = "DNS names and IP addresses clients and gateways use to reach the portal (the SANs of its generated certificate)."
  type        = list(string)
}

variable "relays" {
  description = "coturn relays as id=host:port (see coturn.nomad.hcl)."
  type        = list(string)
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "firebreak-portal" {
  type        = "service"
  datacenters = var.datacenters

  group "portal" {
    # Exactly one. Its store is one SQLite file, and SQLite has a single writer on a single machine: a
    # second portal would be a second, diverging database. The live state is in the process too (who
    # is online, the sessions, the flows being set up), and the portal coordinates flows between peers
    # it must all see. Availability comes from restarting quickly instead; while it is away, the
    # tunnels that are up keep working (they run peer to peer), only new flows and revocations wait.
    count = 1

    # The data directory lives on the node, not in the allocation, so it survives upgrades and
    # restarts. A host volume also pins the job to the node(s) that have it: the database does not
    # move to another node by itself. Back it up (sqlite3 portal.db ".backup ...") like any database.
    volume "data" {
      type      = "host"
      source    = "firebreak-portal"
      read_only = false
    }

    network {
      # Host networking: the portal needs no TUN device or routes, fixed well-known ports are what
      # clients and gateways are configured with, and its logs show the peers' real addresses.
      mode = "host"

      # TLS WebSocket for clients and gateways (the port in their wss:// URL).
      port "wss" {
        static = 8443
      }
      # HTTPS admin API, bound to the node's loopback (see env); reserved here so that nothing else on
      # the node takes it.
      port "admin" {
        static = 8444
      }
      # Plain HTTP /healthz and /metrics, on a dynamic port.
      port "health" {}
    }

    update {
      max_parallel = 1
      # With one allocation an update is stop-then-start, never both at once: two processes on one
      # SQLite file and one static port cannot overlap. No canary for the same reason.
      canary       = 0
      # The service check below: /healthz answers 200 once the portal is serving.
      health_check = "checks"
      # Up for 10 s in a row: a portal that opens its database and then dies must not count as healthy.
      min_healthy_time = "10s"
      # Opening (or migrating) the database and generating a CA on a first start take seconds; 3
      # minutes allow for a slow disk.
      healthy_deadline  = "3m"
      progress_deadline = "10m"
      # A version that does not become healthy is replaced by the last good one at once.
      auto_revert = true
    }

    # Rescheduling elsewhere is pointless (the database is on this node), so the portal is restarted
    # in place for as long as it takes: 10 s apart, and after 5 failures within 5 minutes it waits out
    # the rest of the interval and starts over ("delay" never fails the allocation).
    restart {
      attempts = 5
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    service {
      name     = "firebreak-portal"
      provider = "nomad"
      port     = "wss"
      tags     = ["metrics"]

      check {
        name     = "healthz"
        type     = "http"
        port     = "health"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "portal" {
      driver = "exec"
      # The owner of the host volume's directory; never root.
      user = "firebreak"

      config {
        command = "/usr/bin/firebreak"
        args    = ["portal"]
        # Ports above 1024 and plain files: no capability at all.
        cap_drop = ["all"]
      }

      volume_mount {
        volume      = "data"
        destination = "/var/lib/firebreak/portal"
        read_only   = false
      }

      # On SIGTERM the portal closes every session (clients and gateways reconnect to the new one) and
      # closes the database. 10 s cover closing thousands of WebSockets; each SQLite transaction is
      # durable when it commits, so even a SIGKILL loses no committed change.
      kill_signal  = "SIGTERM"
      kill_timeout = "10s"

      env {
        # The host volume's mount point.
        FIREBREAK_PORTAL_DATA_DIR     = "/var/lib/firebreak/portal"
        FIREBREAK_PORTAL_LISTEN       = "0.0.0.0:${NOMAD_PORT_wss}"
        # Loopback only: the admin API can create tokens and revoke access.
        FIREBREAK_PORTAL_ADMIN_LISTEN = "127.0.0.1:${NOMAD_PORT_admin}"
        FIREBREAK_PORTAL_HOSTNAMES    = join(",", var.hostnames)
        FIREBREAK_PORTAL_RELAYS       = join(",", var.relays)
        # coturn's static-auth-secret, rendered into secrets/ below: the portal mints time-limited TURN
        # credentials with it.
        FIREBREAK_PORTAL_RELAY_SECRET_FILE = "${NOMAD_SECRETS_DIR}/relay-secret"
        FIREBREAK_PORTAL_HEALTH_LISTEN     = "${NOMAD_ADDR_health}"
        FIREBREAK_LOG_LEVEL                = "info"
        # A certificate from your own CA instead of the generated one: render it with two more
        # templates and set FIREBREAK_PORTAL_TLS_CERT and FIREBREAK_PORTAL_TLS_KEY to their files.
      }

      template {
        data        = <<-EOT
          {{- with nomadVar "firebreak/relay" }}{{ .static_auth_secret }}{{ end }}
        EOT
        destination = "${NOMAD_SECRETS_DIR}/relay-secret"
        # A new secret needs the portal to sign with it: restart (clients and gateways reconnect).
        change_mode = "restart"
      }

      resources {
        cpu    = 1000
        # SQLite's page cache plus one session per connected client and gateway.
        memory = 512
      }
    }
  }
}
