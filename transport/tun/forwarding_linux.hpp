// Kernel forwarding for a gateway: packets that clients send through the tunnel (sources in the tunnel
// prefixes, arriving decrypted on the TUN interface) are routed on by the kernel to the resources, masqueraded
// behind the gateway's own address on the way out, so that the answers come back to the gateway.
//
// What it changes on the machine, in the calling thread's network namespace only, and undoes on destruction:
//   * net.ipv4.ip_forward and net.ipv6.conf.all.forwarding set to 1, for each family that has a tunnel prefix.
//     Each is restored to its previous value, and only if it was not 1 already. Writing conf/all/forwarding
//     sets the forwarding flag of every interface, and an IPv6 host that forwards ignores router advertisements
//     unless accept_ra is 2: restoring it writes every interface's flag back too.
//   * one nftables table of its own, `inet firebreak_<ifname>`, deleted again. Nothing else in the ruleset is
//     touched. Its forward chain accepts, but an accept does not override a drop: nftables runs every base
//     chain on a hook, and a drop in any of them (another table's, iptables-nft's) is final. A namespace whose
//     own firewall drops forwarded traffic must let the tunnel's traffic through itself.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace firebreak::tun {

class forwarding {
 public:
  /// Enables forwarding and installs the table `inet firebreak_<tun_name>` (`-` becomes `_`):
  ///   nat postrouting:   packets from `tunnel_prefixes` leaving through any interface but the TUN are masqueraded
  ///   filter forward:    policy accept; accepts what comes from the TUN and what is established/related back to it
  /// A table of that name left behind by a process that was killed is replaced in the same transaction.
  /// IPv6 forwarding that cannot be turned on is a warning in warnings(), not a failure: IPv4 goes on without it.
  /// Where the namespace has no IPv6 at all (no /proc/sys/net/ipv6), the IPv6 prefixes are left out of the table.
  /// nullopt and `why` (one sentence naming the sysctl file or carrying the nft error text) on failure; what
  /// was already changed is undone before it returns.
  static std::optional<forwarding> enable(const std::string& tun_name, const std::vector<std::string>& tunnel_prefixes,
                                          std::string& why);

  forwarding(forwarding&& other) noexcept;
  forwarding& operator=(forwarding&& other) noexcept;
  forwarding(const forwarding&) = delete;
  forwarding& operator=(const forwarding&) = delete;
  /// disable(), its failures unreported.
  ~forwarding();

  /// Deletes the table and restores the sysctls now; empty on success, else what could not be undone.
  /// Idempotent: a second call, or the destructor after it, does nothing.
  std::string disable();

  const std::string& table_name() const { return table_name_; }
  /// Things that did not stop the gateway but that an operator should hear of (IPv6 forwarding unavailable).
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  /// A sysctl this object wrote, and the value to put back.
  struct changed_sysctl {
    std::string path;
    std::string previous;
  };

  forwarding() = default;

  std::string table_name_;
  bool table_installed_ = false;
  std::vector<changed_sysctl> changed_;
  std::vector<std::string> warnings_;
};

}  // namespace firebreak::tun
