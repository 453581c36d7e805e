#include "transport/tun/vnet_split.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace firebreak::tun {

namespace {

// linux/virtio_net.h
constexpr std::uint8_t needs_csum = 1;
constexpr std::uint8_t gso_none = 0, gso_tcpv4 = 1, gso_tcpv6 = 4, gso_ecn = 0x80;
constexpr std::uint8_t tcp_fin = 0x01, tcp_psh = 0x08, tcp_cwr = 0x80;
constexpr std::uint8_t protocol_tcp = 6;

std::uint16_t load_le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | p[1] << 8); }
std::uint16_t load_be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t load_be32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}
void store_be16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void store_be32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

/// A 16-bit big-endian value as it adds into checksum_add's native-order sum.
std::uint64_t word(std::uint16_t v) {
  if constexpr (std::endian::native == std::endian::little) return static_cast<std::uint16_t>(v >> 8 | v << 8);
  return v;
}

void store_checksum(std::uint8_t* at, std::uint16_t native) { std::memcpy(at, &native, 2); }

}  // namespace

std::string_view to_string(split_error e) {
  switch (e) {
    case split_error::none: return "none";
    case split_error::too_short: return "too_short";
    case split_error::bad_header: return "bad_header";
    case split_error::unsupported_gso: return "unsupported_gso";
    case split_error::bad_packet: return "bad_packet";
    case split_error::too_many_segments: return "too_many_segments";
  }
  return "unknown";
}

// Summed in the machine's byte order and stored the same way, the result lands in network order
// (RFC 1071, 2 (B)); 32-bit words into a 64-bit sum cannot overflow for any packet.
std::uint64_t checksum_add(std::span<const std::uint8_t> bytes, std::uint64_t sum) {
  const std::uint8_t* p = bytes.data();
  std::size_t n = bytes.size();
  while (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    sum += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    sum += w;
    p += 2;
    n -= 2;
  }
  if (n == 1) {
    const std::uint8_t pad[2] = {p[0], 0};
    std::uint16_t w;
    std::memcpy(&w, pad, 2);
    sum += w;
  }
  return sum;
}

std::uint16_t checksum_finish(std::uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

namespace {

split_error one_packet(std::span<const std::uint8_t> packet, std::uint8_t flags, std::uint16_t csum_start,
                       std::uint16_t csum_offset, packet_arena& out) {
  if ((flags & needs_csum) &&
      (std::size_t(csum_start) + csum_offset + 2 > packet.size() || csum_start >= packet.size()))
    return split_error::bad_header;
  std::uint8_t* p = out.append(packet.size());
  std::memcpy(p, packet.data(), packet.size());
  if (flags & needs_csum) {
    // The kernel left the pseudo-header's sum in the checksum field: the rest is ours.
    const auto sum = checksum_add({p + csum_start, packet.size() - csum_start});
    store_checksum(p + csum_start + csum_offset, checksum_finish(sum));
  }
  return split_error::none;
}

split_error segment_tcp(std::span<const std::uint8_t> packet, bool v6, std::uint16_t gso_size, packet_arena& out) {
  const std::uint8_t* in = packet.data();
  const std::size_t size = packet.size();
  std::size_t ip_len = 0;
  if (!v6) {
    if (size < 20 || in[0] >> 4 != 4) return split_error::bad_packet;
    ip_len = std::size_t(in[0] & 0x0f) * 4;
    if (ip_len < 20 || in[9] != protocol_tcp) return split_error::bad_packet;
  } else {
    if (size < 40 || in[0] >> 4 != 6 || in[6] != protocol_tcp) return split_error::bad_packet;
    ip_len = 40;
  }
  if (size < ip_len + 20) return split_error::bad_packet;
  const std::size_t tcp_len = std::size_t(in[ip_len + 12] >> 4) * 4;
  const std::size_t headers = ip_len + tcp_len;
  if (tcp_len < 20 || headers > size) return split_error::bad_packet;
  if (gso_size == 0) return split_error::bad_header;
  const std::size_t payload = size - headers;
  const std::size_t segments = payload == 0 ? 1 : (payload + gso_size - 1) / gso_size;
  if (segments > max_segments) return split_error::too_many_segments;

  const std::uint32_t seq = load_be32(in + ip_len + 4);
  const std::uint16_t id = v6 ? 0 : load_be16(in + 4);
  const std::uint8_t tcp_flags = in[ip_len + 13];
  // The pseudo-header's addresses are the same in every segment.
  const std::uint64_t addresses = v6 ? checksum_add({in + 8, 32}) : checksum_add({in + 12, 8});
  for (std::size_t i = 0; i < segments; ++i) {
    const std::size_t offset = i * gso_size;
    const std::size_t len = std::min<std::size_t>(gso_size, payload - offset);
    std::uint8_t* p = out.append(headers + len);
    std::memcpy(p, in, headers);
    std::memcpy(p + headers, in + headers + offset, len);
    if (!v6) {
      store_be16(p + 2, static_cast<std::uint16_t>(headers + len));
      store_be16(p + 4, static_cast<std::uint16_t>(id + i));
      p[10] = p[11] = 0;
      store_checksum(p + 10, checksum_finish(checksum_add({p, ip_len})));
    } else {
      store_be16(p + 4, static_cast<std::uint16_t>(tcp_len + len));
    }
    std::uint8_t* tcp = p + ip_len;
    store_be32(tcp + 4, seq + static_cast<std::uint32_t>(offset));
    std::uint8_t f = tcp_flags;
    if (i + 1 != segments) f &= static_cast<std::uint8_t>(~(tcp_fin | tcp_psh));
    if (i != 0) f &= static_cast<std::uint8_t>(~tcp_cwr);
    tcp[13] = f;
    tcp[16] = tcp[17] = 0;
    const std::size_t l4 = tcp_len + len;
    std::uint64_t sum = addresses + word(protocol_tcp) + word(static_cast<std::uint16_t>(l4)) +
                        (v6 ? word(static_cast<std::uint16_t>(l4 >> 16)) : 0);
    sum = checksum_add({tcp, l4}, sum);
    store_checksum(tcp + 16, checksum_finish(sum));
  }
  return split_error::none;
}

}  // namespace

split_error split_frame(std::span<const std::uint8_t> frame, packet_arena& out) {
  if (frame.size() <= vnet_header_size) return split_error::too_short;
  const std::uint8_t flags = frame[0];
  const std::uint8_t gso = frame[1] & static_cast<std::uint8_t>(~gso_ecn);
  const std::uint16_t gso_size = load_le16(&frame[4]);
  const std::uint16_t csum_start = load_le16(&frame[6]);
  const std::uint16_t csum_offset = load_le16(&frame[8]);
  const auto packet = frame.subspan(vnet_header_size);
  if (gso == gso_none) return one_packet(packet, flags, csum_start, csum_offset, out);
  if (gso != gso_tcpv4 && gso != gso_tcpv6) return split_error::unsupported_gso;
  if ((packet[0] >> 4) != (gso == gso_tcpv4 ? 4 : 6)) return split_error::unsupported_gso;
  const std::size_t before = out.size();
  const auto e = segment_tcp(packet, gso == gso_tcpv6, gso_size, out);
  if (e != split_error::none)
    while (out.size() > before) out.drop_last();
  return e;
}

}  // namespace firebreak::tun
