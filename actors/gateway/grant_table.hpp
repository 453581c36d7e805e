// Who may reach what through this gateway, until when: the grants the portal authorized, per client,
// and the per-packet check against them. Pure: time comes in as `now_ms` (unix milliseconds).
//
// A grant is client × resource × expiry. A packet from a client passes when its source is that
// client's tunnel address (anything else is spoofed) and its destination, protocol and port fall
// inside a resource the client holds an unexpired grant for (a resource without filters allows all
// traffic to its addresses). A packet back to a client passes when its source lies inside such a
// resource. Expiry is checked on every packet, so a grant stops working at its exact moment even if
// the timer that removes it runs late.
//
// The authorization actor owns the real table (and the timers); the tunnel actor keeps a copy per
// client, replaced whole on every change (`entry`/`replace`), for its per-packet checks.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/cidr.hpp"
#include "messages/node_messages.hpp"
#include "transport/ip/packet.hpp"

namespace firebreak::gateway {

using messages::client_grants;
using messages::granted_resource;

enum class verdict : std::uint8_t {
  allow,
  spoofed_source,  // from a client, but not from its tunnel address
  not_granted,     // no grant covers this destination, protocol or port
  expired,         // a grant covered it, but it has expired
  unknown_client,
};
std::string_view to_string(verdict v);

class grant_table {
 public:
  /// Records (or renews) a grant. An empty string on success; otherwise why it cannot be enforced
  /// (a DNS name as the address, an unparsable client address): nothing is recorded then.
  std::string grant(const messages::flow_client& client, const messages::resource_description& resource,
                    std::optional<std::int64_t> expires_at_ms);
  /// Records a grant from the gateway's init (client addresses already known, or not yet).
  std::string grant(const std::string& client_id, const messages::resource_description& resource,
                    std::optional<std::int64_t> expires_at_ms);
  /// Knows a client's tunnel addresses (from authorize_flow) without granting anything.
  std::string set_addresses(const messages::flow_client& client);
  /// False when there was no such grant. A client left with no grant is forgotten.
  bool revoke(const std::string& client_id, const std::string& resource_id);
  bool update_expiry(const std::string& client_id, const std::string& resource_id,
                     std::optional<std::int64_t> expires_at_ms);
  /// Removes every grant expired at `now_ms`; returns (client, resource) for each. Clients left with
  /// no grant are forgotten.
  std::vector<std::pair<std::string, std::string>> expire(std::int64_t now_ms);
  std::optional<std::int64_t> next_expiry() const;

  bool has_grants(const std::string& client_id, std::int64_t now_ms) const;
  const client_grants* entry(const std::string& client_id) const;
  /// A copy with neither grants nor addresses (what the authorization actor publishes for a
  /// forgotten client) forgets the client.
  void replace(client_grants grants);
  void forget(const std::string& client_id);
  const std::map<std::string, client_grants>& clients() const { return clients_; }

  verdict from_client(const std::string& client_id, const ip::packet_info& p, std::int64_t now_ms) const;
  verdict to_client(const std::string& client_id, const ip::packet_info& p, std::int64_t now_ms) const;
  /// The client whose tunnel address this is.
  std::optional<std::string> client_at(bool v6, const std::array<std::uint8_t, 16>& addr) const;

 private:
  using address_key = std::pair<bool, std::array<std::uint8_t, 16>>;
  void index(const client_grants& c);
  void unindex(const std::string& client_id);
  std::map<std::string, client_grants> clients_;
  std::map<address_key, std::string> by_address_;
};

}  // namespace firebreak::gateway
