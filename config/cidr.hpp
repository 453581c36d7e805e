// An IP prefix in CIDR notation: "10.0.0.0/24", "fd00::/64", or a bare address meaning /32 or /128.
//
// `parse` keeps the host bits as written, because an interface Address such as 10.0.0.1/24 means
// "this host, on that network". `masked()` clears them, which is what an AllowedIPs entry means.
// `contains` only looks at the first `prefix` bits, so it gives the same answer either way.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace firebreak::config {

struct cidr {
  bool v6 = false;
  std::array<std::uint8_t, 16> addr{};  // network byte order; IPv4 in the first 4 bytes, the rest zero
  std::uint8_t prefix = 0;              // 0..32 for IPv4, 0..128 for IPv6

  /// "a.b.c.d", "a.b.c.d/n", "x:y::z" or "x:y::z/n"; no whitespace, no brackets, no zone id.
  /// nullopt when it is none of those or the prefix is too long for the family.
  static std::optional<cidr> parse(std::string_view text);

  /// The same prefix with the host bits cleared: 10.1.2.3/8 -> 10.0.0.0/8.
  cidr masked() const;
  /// True when some bit after the prefix is set (10.1.2.3/8, but not 10.0.0.0/8 or 10.1.2.3/32).
  bool has_host_bits() const;

  /// Whether `address` (same layout as `addr`) of family `address_v6` lies inside this prefix.
  /// An address of the other family is never contained (no IPv4-mapped IPv6 matching).
  bool contains(const std::array<std::uint8_t, 16>& address, bool address_v6) const;

  /// "10.0.0.1/24", "fd00::1/64": the address as held (host bits included) and the prefix.
  std::string to_string() const;

  friend bool operator==(const cidr&, const cidr&) = default;
};

}  // namespace firebreak::config
