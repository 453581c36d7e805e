// Cryptokey routing: which peer owns an address. Outbound, a packet goes to the peer whose AllowedIPs
// hold its destination; inbound, a decrypted packet is accepted only if its source is in the sender's.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace firebreak::wireguard {

struct ip_prefix {
  bool v6 = false;
  std::array<std::uint8_t, 16> addr{};
  std::uint8_t bits = 0;

  bool contains(bool is_v6, const std::uint8_t* a) const {
    if (is_v6 != v6) return false;
    unsigned full = bits / 8, rest = bits % 8;
    if (!std::equal(addr.begin(), addr.begin() + full, a)) return false;
    if (rest == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (addr[full] & mask) == (a[full] & mask);
  }
};

/// Longest-prefix match over a short list; peers have few AllowedIPs each and tunnels few peers.
template <typename Value>
class allowed_ips {
 public:
  void insert(const ip_prefix& prefix, Value value) {
    std::erase_if(entries_, [&](const auto& e) {
      return e.first.v6 == prefix.v6 && e.first.bits == prefix.bits && e.first.addr == prefix.addr;
    });
    auto at = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) { return e.first.bits < prefix.bits; });
    entries_.insert(at, {prefix, value});
  }
  void remove(const Value& value) {
    std::erase_if(entries_, [&](const auto& e) { return e.second == value; });
  }
  std::optional<Value> lookup(bool v6, const std::uint8_t* addr) const {
    for (const auto& [prefix, value] : entries_)
      if (prefix.contains(v6, addr)) return value;
    return std::nullopt;
  }

 private:
  std::vector<std::pair<ip_prefix, Value>> entries_;  // longest prefix first
};

/// The source (for `source`) or destination address of an IP packet; false when it is not one.
bool ip_packet_address(std::span<const std::uint8_t> packet, bool source, bool& v6, const std::uint8_t*& addr);
/// The length the IP header claims, when it is a plausible IPv4/IPv6 packet that fits in `packet`.
std::optional<std::size_t> ip_packet_length(std::span<const std::uint8_t> packet);

}  // namespace firebreak::wireguard
