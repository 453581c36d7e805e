#include "config/cidr.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace firebreak::config {

std::optional<cidr> cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  auto address = text.substr(0, slash);

  // inet_pton wants a NUL-terminated string; no textual address is longer than INET6_ADDRSTRLEN - 1.
  char buf[INET6_ADDRSTRLEN] = {};
  if (address.empty() || address.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, address.data(), address.size());

  cidr out;
  out.v6 = address.find(':') != std::string_view::npos;
  if (inet_pton(out.v6 ? AF_INET6 : AF_INET, buf, out.addr.data()) != 1) return std::nullopt;
  const unsigned max_prefix = out.v6 ? 128 : 32;

  unsigned prefix = max_prefix;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    // Only plain decimal digits: from_chars would take neither a sign nor spaces, but say so plainly.
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    for (char c : digits)
      if (c < '0' || c > '9') return std::nullopt;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc{} || ptr != digits.data() + digits.size()) return std::nullopt;
  }
  if (prefix > max_prefix) return std::nullopt;
  out.prefix = static_cast<std::uint8_t>(prefix);
  return out;
}

cidr cidr::masked() const {
  cidr out = *this;
  const unsigned bytes = v6 ? 16 : 4;
  for (unsigned i = 0; i < bytes; ++i) {
    const unsigned first_bit = i * 8;
    if (first_bit >= prefix) {
      out.addr[i] = 0;
    } else if (prefix - first_bit < 8) {
      out.addr[i] &= static_cast<std::uint8_t>(0xff00u >> (prefix - first_bit));
    }
  }
  return out;
}

bool cidr::has_host_bits() const { return masked().addr != addr; }

bool cidr::contains(const std::array<std::uint8_t, 16>& address, bool address_v6) const {
  if (address_v6 != v6) return false;
  cidr other = *this;
  other.addr = address;
  if (!v6) std::memset(other.addr.data() + 4, 0, 12);
  return other.masked().addr == masked().addr;
}

std::string cidr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, addr.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix);
}

}  // namespace firebreak::config
