# coturn (Debian's `turnserver`), the TURN/STUN relay Firebreak's clients and gateways fall back to when
# no direct path works, and the STUN server they learn their public address from.
#
#   nomad var put firebreak/relay static_auth_secret=@relay-secret     # shared with portal.nomad.hcl
#   nomad acl policy apply -namespace default -job firebreak-coturn firebreak-coturn-relay relay.policy.hcl
#   nomad job run coturn.nomad.hcl
#
# (relay.policy.hcl: read on the variable path "firebreak/relay", as for the portal.) The portal lists
# this relay as id=<node address>:3478 in its relays and mints TURN credentials from the same secret
# (coturn's use-auth-secret REST scheme): nothing else in coturn needs to know about users.
#
# Nodes that may run it need the `coturn` package (for /usr/bin/turnserver and its `turnserver` user),
# and the relay port range below free: keep it outside the Nomad client's dynamic port range (20000 to
# 32000 by default) and add it to the client's reserved ports so that Nomad never hands it out.

variable "realm" {
  description = "TURN realm; any fixed string, the portal's credentials do not depend on it."
  type        = string
  default     = "firebreak"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "firebreak-coturn" {
  type        = "service"
  datacenters = var.datacenters

  group "coturn" {
    # One relay per region is enough to start; for more, run more allocations on distinct nodes and
    # list each of them in the portal's relays.
    count = 1

    network {
      # Host networking. Every TURN allocation gets a relay port of its own from the range below, and
      # peers send to <node address>:<that port> directly. A bridge would need a port mapping for each
      # of the hundreds of relay ports (a Nomad port block maps one port, not a range), and coturn
      # would advertise its private bridge address as the relayed address. On the host it binds the
      # node's real addresses and sees the peers' real ones (its per-source quotas and logs need them).
      # Behind a 1:1 NAT (most clouds) add external-ip=<public>/<private> to the configuration.
      mode = "host"

      # TURN and STUN, UDP and TCP.
      port "turn" {
        static = 3478
      }
    }

    update {
      max_parallel     = 1
      health_check     = "checks"
      min_healthy_time = "10s"
      healthy_deadline = "2m"
      auto_revert      = true
    }

    restart {
      attempts = 3
      interval = "5m"
      delay    = "10s"
      mode     = "fail"
    }

    service {
      name     = "firebreak-coturn"
      provider = "nomad"
      port     = "turn"

      # coturn answers TURN over TCP on the same port as over UDP: a TCP connect shows the process is
      # up and listening. (Nomad's own checks are http and tcp; with Consul as the service provider a
      # `type = "udp"` check on the same port works too.)
      check {
        name     = "turn-tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "turnserver" {
      driver = "exec"
      # The Debian package's system user; ports above 1024 need no privilege.
      user = "turnserver"

      config {
        command = "/usr/bin/turnserver"
        # Everything, the secret included, comes from the rendered file: nothing secret on the
        # command line, where every user of the node could read it in /proc.
        args     = ["-c", "${NOMAD_SECRETS_DIR}/turnserver.conf"]
        cap_drop = ["all"]
      }

      # Relayed sessions end with the process either way (peers fall back to another path and rebuild
      # their relays); 5 s is plenty for coturn to close its sockets.
      kill_signal  = "SIGTERM"
      kill_timeout = "5s"

      # The configuration holds static-auth-secret, which coturn only takes inline: so the whole file
      # is rendered into secrets/ (memory only, not readable through `nomad alloc fs`).
      template {
        data        = <<-EOT
          listening-port=3478
          # Relay ports: one per TURN allocation (each relayed peer connection uses one on each side
          # that relays). 840 ports; widen the range for more concurrent relayed connections.
          min-port=49160
          max-port=49999
          # The portal's credentials: username "<expiry>:<id>", password HMAC-SHA1 of it with the secret.
          use-auth-secret
          static-auth-secret={{ with nomadVar "firebreak/relay" }}{{ .static_auth_secret }}{{ end }}
          realm=${var.realm}
          fingerprint
          # No TLS/DTLS listener: what it relays is WireGuard, encrypted end to end, and the
          # credentials are short-lived HMACs. Add cert/pkey and drop these to offer TURNS as well.
          no-tls
          no-dtls
          no-cli
          no-multicast-peers
          no-software-attribute
          # Nothing to store with use-auth-secret, but coturn opens its SQLite database anyway
          # (/var/lib/turn/turndb by default, outside the task's chroot): keep it in the task's own
          # directory, like the pid file.
          userdb={{ env "NOMAD_TASK_DIR" }}/turndb
          pidfile={{ env "NOMAD_TASK_DIR" }}/turnserver.pid
          log-file=stdout
          simple-log
        EOT
        destination = "${NOMAD_SECRETS_DIR}/turnserver.conf"
        # A new secret must be used at once, or the portal's new credentials would be refused.
        change_mode = "restart"
      }

      resources {
        # Relaying is packet forwarding in user space: CPU is its throughput.
        cpu    = 500
        memory = 256
      }
    }
  }
}
