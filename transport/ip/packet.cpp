#include "transport/ip/packet.hpp"

#include <algorithm>
#include <cstring>

namespace firebreak::ip {

namespace {

// ICMP type numbers (RFC 792, RFC 4443).
constexpr std::uint8_t icmp_destination_unreachable = 3;
constexpr std::uint8_t icmp_code_host_unreachable = 1;
constexpr std::uint8_t icmp_code_admin_prohibited = 13;
constexpr std::uint8_t icmpv6_destination_unreachable = 1;
constexpr std::uint8_t icmpv6_code_admin_prohibited = 1;
constexpr std::uint8_t icmpv6_code_address_unreachable = 3;
constexpr std::uint8_t icmpv6_redirect = 137;

constexpr std::size_t tcp_min_header_size = 20;
constexpr std::size_t udp_header_size = 8;
constexpr std::size_t ipv6_fragment_header_size = 8;

std::uint16_t read16(std::span<const std::uint8_t> bytes, std::size_t at) {
  return static_cast<std::uint16_t>(bytes[at] << 8 | bytes[at + 1]);
}

void write16(std::span<std::uint8_t> bytes, std::size_t at, std::uint16_t value) {
  bytes[at] = static_cast<std::uint8_t>(value >> 8);
  bytes[at + 1] = static_cast<std::uint8_t>(value);
}

/// RFC 1071 ones'-complement sum of big-endian 16-bit words (an odd last byte padded with zero), unfolded.
std::uint64_t add_words(std::span<const std::uint8_t> bytes, std::uint64_t sum = 0) {
  std::size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) sum += read16(bytes, i);
  if (i < bytes.size()) sum += std::uint64_t(bytes[i]) << 8;
  return sum;
}

std::uint16_t checksum_of(std::uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

/// The packet_info, plus where the upper-layer header starts (== length when the packet ends before it).
struct parsed_packet {
  packet_info info;
  std::size_t upper_offset = 0;
};

bool is_icmpv4_error(std::uint8_t type) {
  // Destination unreachable, source quench, redirect, time exceeded, parameter problem.
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

/// Ports and the ICMP error flag from the upper-layer header at `at`, if enough of it is there.
void read_upper_layer(std::span<const std::uint8_t> packet, std::size_t at, parsed_packet& out) {
  out.upper_offset = at;
  auto& info = out.info;
  const auto upper = packet.subspan(at);
  const bool ports = (info.protocol == protocol_tcp && upper.size() >= tcp_min_header_size) ||
                     (info.protocol == protocol_udp && upper.size() >= udp_header_size);
  if (ports) {
    info.src_port = read16(upper, 0);
    info.dst_port = read16(upper, 2);
  }
  if (!upper.empty()) {
    if (!info.v6 && info.protocol == protocol_icmp) info.icmp_error = is_icmpv4_error(upper[0]);
    if (info.v6 && info.protocol == protocol_icmpv6) info.icmp_error = upper[0] < 128;
  }
}

std::optional<parsed_packet> parse_ipv4(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < ipv4_min_header_size) return std::nullopt;
  const std::size_t header_size = std::size_t(bytes[0] & 0x0f) * 4;
  const std::size_t total = read16(bytes, 2);
  if (header_size < ipv4_min_header_size || total < header_size || total > bytes.size()) return std::nullopt;
  parsed_packet out;
  auto& info = out.info;
  info.length = total;
  info.protocol = bytes[9];
  std::copy_n(bytes.begin() + 12, 4, info.src.begin());
  std::copy_n(bytes.begin() + 16, 4, info.dst.begin());
  info.fragment_not_first = (read16(bytes, 6) & 0x1fff) != 0;
  if (info.fragment_not_first) {
    out.upper_offset = total;
    return out;
  }
  read_upper_layer(bytes.first(total), header_size, out);
  return out;
}

std::optional<parsed_packet> parse_ipv6(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < ipv6_header_size) return std::nullopt;
  const std::size_t total = ipv6_header_size + read16(bytes, 4);
  if (total > bytes.size()) return std::nullopt;
  const auto packet = bytes.first(total);
  parsed_packet out;
  auto& info = out.info;
  info.v6 = true;
  info.length = total;
  std::copy_n(packet.begin() + 8, 16, info.src.begin());
  std::copy_n(packet.begin() + 24, 16, info.dst.begin());

  // Each extension header is at least 8 bytes, so the walk ends within total / 8 steps.
  std::uint8_t next = packet[6];
  std::size_t at = ipv6_header_size;
  for (;;) {
    switch (next) {
      case protocol_hop_by_hop:
        // RFC 8200 4.1: only ever right after the IPv6 header.
        if (at != ipv6_header_size) return std::nullopt;
        [[fallthrough]];
      case protocol_routing:
      case protocol_destination_options: {
        if (total - at < 8) return std::nullopt;
        const std::size_t size = (std::size_t(packet[at + 1]) + 1) * 8;
        if (total - at < size) return std::nullopt;
        next = packet[at];
        at += size;
        continue;
      }
      case protocol_fragment: {
        if (total - at < ipv6_fragment_header_size) return std::nullopt;
        const bool not_first = (read16(packet, at + 2) >> 3) != 0;
        next = packet[at];
        at += ipv6_fragment_header_size;
        if (not_first) {
          // The rest of the header chain and the transport header are in the first fragment.
          info.fragment_not_first = true;
          info.protocol = next;
          out.upper_offset = total;
          return out;
        }
        continue;
      }
      default:
        info.protocol = next;
        read_upper_layer(packet, at, out);
        return out;
    }
  }
}

std::optional<parsed_packet> parse_packet(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return std::nullopt;
  switch (bytes[0] >> 4) {
    case 4: return parse_ipv4(bytes);
    case 6: return parse_ipv6(bytes);
    default: return std::nullopt;
  }
}

/// RFC 1122 3.2.2: an ICMP error goes neither to nor from an address that names no single host: 0/8
/// ("this network"), 127/8 (loopback), 224/4 (multicast), 240/4 (class E, with the limited broadcast).
bool is_single_ipv4_host(const std::array<std::uint8_t, 16>& addr) {
  return addr[0] != 0 && addr[0] != 127 && addr[0] < 224;
}

/// RFC 4443 2.4 (e): not to a multicast destination, nor from an unspecified or multicast source;
/// loopback (::1) is never valid off the node either (RFC 4291 2.5.3).
bool is_single_ipv6_host(const std::array<std::uint8_t, 16>& addr) {
  if (addr[0] == 0xff) return false;
  const bool zero_upper = std::all_of(addr.begin(), addr.end() - 1, [](std::uint8_t b) { return b == 0; });
  return !(zero_upper && (addr[15] == 0 || addr[15] == 1));
}

/// False for what RFC 1122 / RFC 4443 forbid answering with an ICMP error.
bool may_answer(std::span<const std::uint8_t> offending, const parsed_packet& p) {
  const auto& info = p.info;
  if (info.fragment_not_first || info.icmp_error) return false;
  const std::uint8_t icmp = info.v6 ? protocol_icmpv6 : protocol_icmp;
  if (info.protocol == icmp) {
    // An ICMP message cut before its type could be an error: stay silent.
    if (p.upper_offset >= info.length) return false;
    // ICMPv6 redirects are grouped with the errors in RFC 4443 2.4 (e.2).
    if (info.v6 && offending[p.upper_offset] == icmpv6_redirect) return false;
  }
  if (info.v6) return is_single_ipv6_host(info.src) && is_single_ipv6_host(info.dst);
  return is_single_ipv4_host(info.src) && is_single_ipv4_host(info.dst);
}

}  // namespace

std::optional<packet_info> parse(std::span<const std::uint8_t> packet) {
  auto p = parse_packet(packet);
  if (!p) return std::nullopt;
  return p->info;
}

std::size_t build_unreachable(std::span<const std::uint8_t> offending, unreachable why, std::span<std::uint8_t> out) {
  const auto p = parse_packet(offending);
  if (!p || !may_answer(offending, *p)) return 0;
  const auto& info = p->info;
  const std::size_t ip_header_size = info.v6 ? ipv6_header_size : ipv4_min_header_size;
  const std::size_t max_size = info.v6 ? ipv6_max_unreachable_size : ipv4_max_unreachable_size;
  const std::size_t quote_at = ip_header_size + icmp_header_size;
  const std::size_t quote_size = std::min(info.length, max_size - quote_at);
  const std::size_t size = quote_at + quote_size;
  if (out.size() < size) return 0;

  // The quote first, with memmove: `out` may be the offending packet's own buffer, and everything else
  // written below comes from `info`, not from `offending`.
  std::memmove(out.data() + quote_at, offending.data(), quote_size);
  const auto answer = out.first(size);
  auto icmp = answer.subspan(ip_header_size);
  std::fill_n(icmp.begin(), icmp_header_size, std::uint8_t{0});  // checksum and the unused word

  if (info.v6) {
    icmp[0] = icmpv6_destination_unreachable;
    icmp[1] = why == unreachable::host ? icmpv6_code_address_unreachable : icmpv6_code_admin_prohibited;
    answer[0] = 0x60;  // version 6, traffic class 0, flow label 0
    answer[1] = answer[2] = answer[3] = 0;
    write16(answer, 4, static_cast<std::uint16_t>(size - ipv6_header_size));
    answer[6] = protocol_icmpv6;
    answer[7] = unreachable_ttl;
    std::copy_n(info.dst.begin(), 16, answer.begin() + 8);
    std::copy_n(info.src.begin(), 16, answer.begin() + 24);
    // RFC 8200 8.1 pseudo-header: source, destination, upper-layer length, next header.
    std::uint64_t sum = add_words(answer.subspan(8, 32));
    sum += icmp.size() + protocol_icmpv6;
    write16(icmp, 2, checksum_of(add_words(icmp, sum)));
  } else {
    icmp[0] = icmp_destination_unreachable;
    icmp[1] = why == unreachable::host ? icmp_code_host_unreachable : icmp_code_admin_prohibited;
    write16(icmp, 2, checksum_of(add_words(icmp)));
    answer[0] = 0x45;  // version 4, no options
    answer[1] = 0;
    write16(answer, 2, static_cast<std::uint16_t>(size));
    write16(answer, 4, 0);  // identification: never fragmented (<= 576 bytes)
    write16(answer, 6, 0);
    answer[8] = unreachable_ttl;
    answer[9] = protocol_icmp;
    write16(answer, 10, 0);
    std::copy_n(info.dst.begin(), 4, answer.begin() + 12);
    std::copy_n(info.src.begin(), 4, answer.begin() + 16);
    write16(answer, 10, checksum_of(add_words(answer.first(ipv4_min_header_size))));
  }
  return size;
}

std::string address_to_string(bool v6, const std::array<std::uint8_t, 16>& addr) {
  std::string out;
  const auto append_dotted = [&out](const std::uint8_t* four) {
    for (int i = 0; i < 4; ++i) {
      if (i) out += '.';
      out += std::to_string(four[i]);
    }
  };
  if (!v6) {
    append_dotted(addr.data());
    return out;
  }
  std::array<std::uint16_t, 8> groups{};
  for (std::size_t i = 0; i < 8; ++i) groups[i] = read16(addr, 2 * i);
  // RFC 5952 5: IPv4-mapped addresses keep the dotted quad.
  if (std::all_of(groups.begin(), groups.begin() + 5, [](std::uint16_t g) { return g == 0; }) &&
      groups[5] == 0xffff) {
    out = "::ffff:";
    append_dotted(addr.data() + 12);
    return out;
  }
  // RFC 5952 4.2: "::" replaces the longest run of two or more zero groups, the first of equal runs.
  std::size_t best_at = 8, best_len = 0;
  for (std::size_t i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < 8 && groups[end] == 0) ++end;
    if (end - i > best_len && end - i >= 2) {
      best_at = i;
      best_len = end - i;
    }
    i = end;
  }
  static constexpr char digits[] = "0123456789abcdef";
  for (std::size_t i = 0; i < 8;) {
    if (i == best_at) {
      out += "::";
      i += best_len;
      continue;
    }
    if (i != 0 && i != best_at + best_len) out += ':';
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const int digit = (groups[i] >> shift) & 0xf;
      if (digit || started || shift == 0) {
        out += digits[digit];
        started = true;
      }
    }
    ++i;
  }
  return out;
}

}  // namespace firebreak::ip
