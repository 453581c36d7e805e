#include "transport/wireguard/endpoint.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace firebreak::wireguard {

endpoint endpoint::ipv4(std::array<std::uint8_t, 4> a, std::uint16_t port) {
  endpoint e;
  std::memcpy(e.addr.data(), a.data(), 4);
  e.port = port;
  return e;
}

std::optional<endpoint> endpoint::parse(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto host = text.substr(0, colon);
  auto port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || port == 0 || port > 65535)
    return std::nullopt;
  endpoint e;
  e.port = static_cast<std::uint16_t>(port);
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
    if (inet_pton(AF_INET6, h.c_str(), e.addr.data()) != 1) return std::nullopt;
    e.v6 = true;
    return e;
  }
  if (inet_pton(AF_INET, h.c_str(), e.addr.data()) != 1) return std::nullopt;
  return e;
}

std::string endpoint::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, addr.data(), buf, sizeof buf);
  return v6 ? "[" + std::string(buf) + "]:" + std::to_string(port) : std::string(buf) + ":" + std::to_string(port);
}

std::size_t endpoint::cookie_input(std::uint8_t (&out)[18]) const {
  std::size_t n = v6 ? 16 : 4;
  std::memcpy(out, addr.data(), n);
  out[n] = static_cast<std::uint8_t>(port >> 8);
  out[n + 1] = static_cast<std::uint8_t>(port);
  return n + 2;
}

}  // namespace firebreak::wireguard
