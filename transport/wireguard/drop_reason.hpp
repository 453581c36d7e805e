// Why a datagram or packet was not delivered. Every drop is counted by reason and logged at a limited rate.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace firebreak::wireguard {

enum class drop_reason {
  too_short,
  oversized,
  unknown_type,
  bad_size,
  bad_mac1,
  cookie_required,      // under load without a valid mac2: a cookie reply was sent instead
  rate_limited,
  unknown_peer,         // a handshake from a static key we do not know
  stale_timestamp,      // an initiation not newer than the last one (replayed or reordered)
  handshake_flood,      // initiations from one peer faster than 50 per second
  handshake_failed,     // Noise decryption or DH failed
  unknown_receiver,     // no session or handshake with that index
  unexpected_response,  // a response to no initiation of ours
  bad_cookie,
  keypair_expired,
  replayed,
  decrypt_failed,
  bad_inner_packet,     // decrypted, but not an IPv4/IPv6 packet of the length it claims
  source_not_allowed,   // decrypted, but its source is not in the peer's AllowedIPs
  no_route,             // a packet from the tunnel to an address no peer is allowed
  no_endpoint,          // we have never learned where this peer is
  staging_full,         // the queue of packets waiting for a handshake is full
  too_large,            // a packet larger than the output buffer
  count,
};

constexpr std::string_view to_string(drop_reason r) {
  constexpr std::array<std::string_view, static_cast<std::size_t>(drop_reason::count)> names{
      "too_short", "oversized", "unknown_type", "bad_size", "bad_mac1", "cookie_required", "rate_limited",
      "unknown_peer", "stale_timestamp", "handshake_flood", "handshake_failed", "unknown_receiver",
      "unexpected_response", "bad_cookie", "keypair_expired", "replayed", "decrypt_failed",
      "bad_inner_packet", "source_not_allowed", "no_route", "no_endpoint", "staging_full", "too_large"};
  auto i = static_cast<std::size_t>(r);
  return i < names.size() ? names[i] : "?";
}

using drop_counters = std::array<std::uint64_t, static_cast<std::size_t>(drop_reason::count)>;

}  // namespace firebreak::wireguard
