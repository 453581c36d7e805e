# Firebreak gateways of one site: `firebreak gateway` on the Nomad clients inside the site's network.
#
# One job per site, each in the site's own Nomad namespace (a job label cannot hold a variable, and the
# namespace keeps each site's job, its tokens and its ACLs apart):
#
#   nomad namespace apply site-berlin
#   nomad var put -namespace site-berlin nomad/jobs/firebreak-gateway \
#       token_0=@gw0.token token_1=@gw1.token portal_ca=@ca-cert.pem
#   nomad job run -namespace site-berlin -var site=berlin \
#       -var portal_url=wss://portal.example.net:8443 gateway.nomad.hcl
#
# Each allocation is one gateway of the portal: `firebreak admin gateways create --site ...` once per
# allocation index (0 .. gateways-1), its token stored as token_<index> in the Nomad Variable above.
# The portal keeps one session per gateway token and a second join with it replaces the first, so two
# allocations must never share a token.
#
# What every Nomad client that may run this job needs in its agent configuration:
#
#   client {
#     meta { firebreak_site = "berlin" }            # which site's network this node sits in
#     host_volume "tun" {                            # the TUN clone device, see volume "tun" below
#       path      = "/dev/net/tun"
#       read_only = false
#     }
#   }
#   plugin "exec" {
#     config {
#       # The exec driver hands a task only the capabilities in this list; net_admin is not among its
#       # defaults. Keep the defaults the other jobs on the node rely on, and add net_admin.
#       allow_caps = ["audit_write", "chown", "dac_override", "fowner", "fsetid", "kill", "mknod",
#                     "net_bind_service", "setfcap", "setgid", "setpcap", "setuid", "sys_chroot",
#                     "net_admin"]
#     }
#   }
#
# plus the CNI reference plugins (bridge networking), a `firebreak` system user, /usr/bin/firebreak, and
# net.ipv4.ip_forward=1 in /etc/sysctl.d (see FIREBREAK_MANAGE_FORWARDING below).

variable "site" {
  description = "The site these gateways serve; nodes carry it as client meta firebreak_site."
  type        = string
}

variable "portal_url" {
  description = "The portal's WebSocket URL, wss://host[:port]."
  type        = string
}

variable "gateways" {
  description = "Gateways (allocations) in the site; a token_<index> for each in the Nomad Variable."
  type        = number
  default     = 2

  validation {
    # One gateway is a site that goes dark on every upgrade and every node failure: with two or more,
    # a rolling update always leaves a gateway serving, and clients that hear a goodbye reconnect
    # through it at once.
    condition     = var.gateways >= 2
    error_message = "Run at least 2 gateways per site."
  }
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "firebreak-gateway" {
  type        = "service"
  datacenters = var.datacenters

  group "gateway" {
    count = var.gateways

    meta {
      site = var.site
    }

    # Only nodes inside this site's network can forward to its resources.
    constraint {
      attribute = "${meta.firebreak_site}"
      value     = var.site
    }

    # Prefer one gateway per node, so a node failure takes down one gateway of the site, not all. A
    # spread rather than distinct_hosts: it is a preference, so an update can still place the new
    # allocation on a node where an old one of this job runs (see network below).
    spread {
      attribute = "${node.unique.id}"
    }

    network {
      # Bridge mode: every allocation gets its own network namespace. The gateway's TUN device
      # (fb-gateway), its routes for the tunnel prefixes and its nftables table (firebreak_fb_gateway)
      # live there, so two allocations on one node (two gateways of the site, or an old and a new one
      # during an update or a reschedule) never collide on an interface name, a route or a table,
      # and nothing the gateway does touches the node's own routing. Traffic to the site's resources
      # leaves the namespace masqueraded by the gateway, then by Nomad's bridge: resources see the
      # node's address. ICE works through the bridge's NAT: the relays double as STUN servers, so the
      # gateway learns its public address and port (server-reflexive candidates), and coturn relays
      # whatever cannot go direct.
      mode = "bridge"

      # Plain HTTP /healthz and /metrics inside the namespace, mapped to a dynamic port on the node.
      port "health" {
        to = 9090
      }

      # If the node's resolver is a stub on loopback (systemd-resolved's 127.0.0.53), the namespace
      # cannot reach it: give the allocation resolvers of its own.
      # dns {
      #   servers = ["192.0.2.53"]
      # }
    }

    # The exec driver's /dev is a fresh tmpfs with the standard nodes only. Its device cgroup already
    # allows the TUN clone device (character 10:200, in the default list of runc's libcontainer that
    # the driver uses), but the node itself is absent: it is bind-mounted from the host through the
    # client's host volume "tun" (see the top of this file). The daemon opens it to create fb-gateway.
    volume "tun" {
      type      = "host"
      source    = "tun"
      read_only = false
    }

    # Rolling upgrades, one gateway at a time, each gated on the new one's health:
    update {
      # One at a time: with 2+ gateways per site the others keep serving, and the clients of the one
      # being replaced hear its goodbye and reconnect through them within a second.
      max_parallel = 1
      # Healthy means the service check below passes: /healthz answers 200 only once the gateway has
      # joined the portal and is serving.
      health_check = "checks"
      # Healthy for 15 s in a row, not just once: a gateway that joins and then falls over (a bad
      # build, a refused token, a TUN device it cannot keep) must not let the rollout go on.
      min_healthy_time = "15s"
      # Joining takes seconds; 2 minutes allow for a portal that is restarting at the same time.
      healthy_deadline = "2m"
      # Must exceed healthy_deadline; a rollout that makes no progress for 5 minutes has failed.
      progress_deadline = "5m"
      # A failed rollout goes back to the last version that was healthy, on its own.
      auto_revert = true
      # No canary. A canary would start the new gateway before stopping an old one, but Nomad gives a
      # canary the allocation index (and so the token) of an allocation that is still running, and
      # the portal replaces a gateway's session when a second one joins with the same token: old and
      # new would take turns. Capacity during the rollout comes from the other gateways of the site
      # instead (count >= 2), and the goodbye makes the switch to them immediate.
      canary = 0
    }

    # A crashed gateway is restarted in place twice within 5 minutes, 15 s apart (a crash loop does not
    # hammer the portal with joins); after that the allocation fails and is rescheduled.
    restart {
      attempts = 2
      interval = "5m"
      delay    = "15s"
      mode     = "fail"
    }

    # ... onto another node of the site if there is one, backing off up to 5 minutes, forever: a site
    # without its gateways is an outage, and one coming back by itself is what we want.
    reschedule {
      delay          = "30s"
      delay_function = "exponential"
      max_delay      = "5m"
      unlimited      = true
    }

    service {
      name     = "firebreak-gateway"
      provider = "nomad"
      port     = "health"
      tags     = ["site-${var.site}", "metrics"]

      check {
        name     = "healthz"
        type     = "http"
        path     = "/healthz"
        interval = "5s"
        timeout  = "2s"
      }
      # No check_restart: /healthz also answers 503 while the portal is unreachable. Restarting
      # gateways then would only tear down tunnels that keep working without the portal, every gateway
      # of every site at once.
    }

    task "gateway" {
      # exec, not raw_exec: an isolated chroot, a non-root user and exactly the capabilities below,
      # where raw_exec would run it with all of the Nomad agent's privileges.
      driver = "exec"
      # Not root: the exec driver gives a root task its fixed legacy capability set and ignores cap_add;
      # any other user gets exactly the cap_add/cap_drop result, in the ambient set.
      user = "firebreak"

      config {
        # /usr is part of the exec driver's default chroot, so the node's installed binary is used (or
        # fetch a release into local/ with an artifact block and point command at it).
        command = "/usr/bin/firebreak"
        args    = ["gateway"]
        # CAP_NET_ADMIN and nothing else: the TUN device, its addresses and routes, the nftables
        # masquerade. The plugin's allow_caps must include net_admin (see the top of this file).
        cap_drop = ["all"]
        cap_add  = ["net_admin"]
      }

      volume_mount {
        volume      = "tun"
        destination = "/dev/net/tun"
        read_only   = false
      }

      # SIGTERM starts the goodbye: the gateway tells every connected client through the tunnel, so
      # they drop the connection and ask the portal for another gateway at once, flushes for at most
      # 1 s, removes its TUN device and nftables table, and exits 0.
      kill_signal = "SIGTERM"
      # Time between SIGTERM and SIGKILL: the 1 s flush plus the teardown with room to spare, and
      # still short, since every rolling step waits for it. A gateway killed before its goodbye leaves
      # its clients waiting for their ICE timeout (about 15 s) instead.
      kill_timeout = "5s"

      env {
        FIREBREAK_PORTAL_URL     = var.portal_url
        FIREBREAK_PORTAL_CA_FILE = "${NOMAD_TASK_DIR}/portal-ca.pem"
        # The token comes from a file rendered into secrets/ (below), never from the job or its env.
        FIREBREAK_TOKEN_FILE = "${NOMAD_SECRETS_DIR}/gateway.token"
        # A fresh WireGuard key for every allocation, kept in secrets/ (memory only, not readable
        # through `nomad alloc fs`): the portal records a gateway's new public key when it joins and
        # hands it to clients with each flow, so nothing needs the old one.
        FIREBREAK_KEY_FILE = "${NOMAD_SECRETS_DIR}/gateway.key"
        # In the allocation's own namespace, so the default name cannot clash.
        FIREBREAK_INTERFACE = "fb-gateway"
        # In the shared alloc/ directory: `nomad alloc exec -task gateway <alloc> /usr/bin/firebreak
        # gateway status --status-socket /alloc/gateway.sock` shows connections and grants.
        FIREBREAK_STATUS_SOCKET = "${NOMAD_ALLOC_DIR}/gateway.sock"
        FIREBREAK_TRACE_FILE    = "${NOMAD_ALLOC_DIR}/data/gateway.trace.jsonl"
        # Inside the namespace only; Nomad maps it to the node for the check and for Prometheus.
        FIREBREAK_HEALTH_LISTEN = "0.0.0.0:${NOMAD_PORT_health}"
        # IP forwarding and the nftables masquerade, in the allocation's namespace. The exec driver
        # mounts /proc/sys read-only, so the gateway cannot switch forwarding on itself: a new
        # namespace copies net.ipv4.ip_forward from the node, hence ip_forward=1 on every gateway node
        # (the daemon only writes it when it is off). IPv6 forwarding starts off in a new namespace:
        # the daemon warns and forwards IPv4 alone.
        FIREBREAK_MANAGE_FORWARDING = "true"
        FIREBREAK_GOODBYE           = "true"
        FIREBREAK_LOG_LEVEL         = "info"
      }

      # The token of this allocation's gateway: token_<allocation index> of the job's Nomad Variable
      # (readable by this job alone through its workload identity). The range form is deliberate:
      # nomadVar returns a pointer that `index` cannot take apart. With Vault instead:
      #   {{ with secret (printf "kv/data/firebreak/%s/gateway-%s" (env "NOMAD_META_site") (env "NOMAD_ALLOC_INDEX")) }}{{ .Data.data.token }}{{ end }}
      template {
        data        = <<-EOT
          {{- range $name, $value := nomadVar "nomad/jobs/firebreak-gateway" -}}
          {{- if eq $name (printf "token_%s" (env "NOMAD_ALLOC_INDEX")) }}{{ $value }}{{ end -}}
          {{- end }}
        EOT
        destination = "${NOMAD_SECRETS_DIR}/gateway.token"
        # The daemon reads the token only when it joins; restarting every gateway of the site at once
        # because the variable changed would be an outage. Roll a new token in with
        # `nomad job restart -batch-size 1` instead.
        change_mode = "noop"
      }

      # The portal's CA certificate (not a secret; kept beside the tokens for convenience).
      template {
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/firebreak-gateway" }}{{ .portal_ca }}{{ end }}
        EOT
        destination = "${NOMAD_TASK_DIR}/portal-ca.pem"
        change_mode = "noop"
      }

      resources {
        # WireGuard runs in user space here: every forwarded packet is sealed or opened on this CPU,
        # so this reservation is the gateway's throughput. Raise it for busy sites.
        cpu = 1000
        # The actor system plus a little state per connection; watch /metrics under real load and
        # adjust.
        memory = 256
      }
    }
  }
}
