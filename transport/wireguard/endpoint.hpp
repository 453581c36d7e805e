// A UDP endpoint as a value: what the engine reports as a packet's source and a datagram's destination.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace firebreak::wireguard {

struct endpoint {
  bool v6 = false;
  std::array<std::uint8_t, 16> addr{};  // IPv4 in the first 4 bytes
  std::uint16_t port = 0;

  static endpoint ipv4(std::array<std::uint8_t, 4> a, std::uint16_t port);
  /// "1.2.3.4:51820" or "[::1]:51820"; nullopt when it is neither.
  static std::optional<endpoint> parse(std::string_view text);
  std::string to_string() const;
  /// The bytes the cookie is computed over: address then big-endian port.
  std::size_t cookie_input(std::uint8_t (&out)[18]) const;

  friend bool operator==(const endpoint&, const endpoint&) = default;
};

}  // namespace firebreak::wireguard
