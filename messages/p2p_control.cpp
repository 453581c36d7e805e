#include "messages/p2p_control.hpp"

#include <algorithm>

namespace firebreak::messages::p2p {

namespace {

constexpr std::uint8_t control_next_header = 0xFF;

bool all_zero(std::span<const std::uint8_t> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

}  // namespace

classified classify(std::span<const std::uint8_t> packet) {
  // What makes it a control packet: IPv6, next header 0xFF, source and destination "::".
  if (packet.size() < ipv6_header_size || (packet[0] >> 4) != 6 || packet[6] != control_next_header ||
      !all_zero(packet.subspan(8, 32)))
    return {};
  classified out{kind::malformed, 0, {}};
  const std::size_t payload_length = (std::size_t{packet[4]} << 8) | packet[5];
  const bool header_ok = (packet[0] & 0x0f) == 0 && packet[1] == 0 && packet[2] == 0 && packet[3] == 0 &&
                         packet[7] == 0;  // traffic class, flow label, hop limit
  if (!header_ok || payload_length < control_header_size || packet.size() != ipv6_header_size + payload_length)
    return out;
  const auto control = packet.subspan(ipv6_header_size, control_header_size);
  if (!all_zero(control.subspan(1))) return out;
  out.event = control[0];
  out.payload = packet.subspan(ipv6_header_size + control_header_size);
  if (out.event == static_cast<std::uint8_t>(event::goodbye)) {
    out.what = out.payload.empty() ? kind::goodbye : kind::malformed;
    return out;
  }
  out.what = kind::unknown_event;
  return out;
}

std::array<std::uint8_t, goodbye_size> goodbye() {
  std::array<std::uint8_t, goodbye_size> p{};
  p[0] = 0x60;
  p[5] = control_header_size;  // payload length
  p[6] = control_next_header;
  p[ipv6_header_size] = static_cast<std::uint8_t>(event::goodbye);
  return p;
}

}  // namespace firebreak::messages::p2p
