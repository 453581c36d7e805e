#include "transport/wireguard/messages.hpp"

#include "transport/wireguard/limits.hpp"

namespace firebreak::wireguard {

datagram parse_datagram(bytes_view bytes) {
  if (bytes.size() < 4) return parse_error::too_short;
  if (bytes.size() > max_datagram_size) return parse_error::oversized;
  // The type is a little-endian u32: the three reserved bytes must be zero.
  const std::uint32_t type = load_le32(bytes.data());
  switch (type) {
    case static_cast<std::uint32_t>(message_type::handshake_initiation):
      if (bytes.size() != handshake_initiation_size) return parse_error::bad_size;
      return handshake_initiation{{bytes}};
    case static_cast<std::uint32_t>(message_type::handshake_response):
      if (bytes.size() != handshake_response_size) return parse_error::bad_size;
      return handshake_response{{bytes}};
    case static_cast<std::uint32_t>(message_type::cookie_reply):
      if (bytes.size() != cookie_reply_size) return parse_error::bad_size;
      return cookie_reply{bytes};
    case static_cast<std::uint32_t>(message_type::transport_data):
      if (bytes.size() < transport_overhead) return parse_error::too_short;
      return transport_data{bytes};
    default:
      return parse_error::unknown_type;
  }
}

}  // namespace firebreak::wireguard
