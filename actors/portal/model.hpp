// What the portal knows: sites and their gateways, users in groups, their client devices, resources
// behind sites, policies that let a group reach a resource (optionally until a moment), and the flows
// it granted. Plain data; the store keeps it, `policy.hpp` reasons about it.
//
// Ids are random UUIDv4 strings. Times are unix milliseconds. Tunnel addresses are plain address text
// ("100.64.0.7", "fd00:2021:1111::7") allocated by the store, one pair per client or gateway.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace firebreak::portal {

struct site {
  std::string id;
  std::string name;
  friend bool operator==(const site&, const site&) = default;
};

struct gateway {
  std::string id;
  std::string site_id;
  std::string name;
  std::string public_key;  // base64 WireGuard key; empty until the gateway first connects
  std::string ipv4;
  std::string ipv6;
  friend bool operator==(const gateway&, const gateway&) = default;
};

struct user {
  std::string id;
  std::string name;
  std::string email;
  friend bool operator==(const user&, const user&) = default;
};

struct group {
  std::string id;
  std::string name;
  friend bool operator==(const group&, const group&) = default;
};

struct membership {
  std::string group_id;
  std::string user_id;
  friend bool operator==(const membership&, const membership&) = default;
};

struct client {
  std::string id;
  std::string user_id;
  std::string name;
  std::string public_key;  // base64 WireGuard key; empty until the device first connects
  std::string ipv4;
  std::string ipv6;
  bool disabled = false;
  friend bool operator==(const client&, const client&) = default;
};

/// Which traffic to a resource a policy lets through. No filters on a resource means all traffic.
struct port_filter {
  std::string protocol;  // "tcp", "udp" or "icmp"
  int port_start = 0;    // 1..65535 for tcp and udp; 0 for icmp, which has no ports
  int port_end = 0;      // >= port_start
  friend bool operator==(const port_filter&, const port_filter&) = default;
};

struct resource {
  std::string id;
  std::string site_id;
  std::string name;
  std::string address;  // "10.0.0.5", "10.0.0.0/24", "fd00::/64", as the admin wrote it
  std::vector<port_filter> filters;
  friend bool operator==(const resource&, const resource&) = default;
};

/// Members of `group_id` may reach `resource_id` until `expires_at_ms` (exclusive), or for good.
struct policy {
  std::string id;
  std::string group_id;
  std::string resource_id;
  std::optional<std::int64_t> expires_at_ms;
  std::string description;
  friend bool operator==(const policy&, const policy&) = default;
};

/// A grant the portal sent to a gateway: this client may reach this resource through it.
struct flow {
  std::string id;
  std::string client_id;
  std::string gateway_id;
  std::string resource_id;
  std::string policy_id;  // the policy that covers it now; empty while none does (about to be revoked)
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> expires_at_ms;
  friend bool operator==(const flow&, const flow&) = default;
};

}  // namespace firebreak::portal
