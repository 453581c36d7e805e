#include "transport/wireguard/allowed_ips.hpp"

namespace firebreak::wireguard {

bool ip_packet_address(std::span<const std::uint8_t> packet, bool source, bool& v6, const std::uint8_t*& addr) {
  if (packet.empty()) return false;
  switch (packet[0] >> 4) {
    case 4:
      if (packet.size() < 20) return false;
      v6 = false;
      addr = packet.data() + (source ? 12 : 16);
      return true;
    case 6:
      if (packet.size() < 40) return false;
      v6 = true;
      addr = packet.data() + (source ? 8 : 24);
      return true;
    default:
      return false;
  }
}

std::optional<std::size_t> ip_packet_length(std::span<const std::uint8_t> packet) {
  if (packet.empty()) return std::nullopt;
  std::size_t len = 0;
  switch (packet[0] >> 4) {
    case 4:
      if (packet.size() < 20) return std::nullopt;
      len = std::size_t(packet[2]) << 8 | packet[3];
      if (len < 20) return std::nullopt;
      break;
    case 6:
      if (packet.size() < 40) return std::nullopt;
      len = 40 + (std::size_t(packet[4]) << 8 | packet[5]);
      break;
    default:
      return std::nullopt;
  }
  if (len > packet.size()) return std::nullopt;
  return len;
}

}  // namespace firebreak::wireguard
