// IP packets as the data path sees them: what a packet from the tunnel says about itself (addresses,
// protocol, ports, fragment and ICMP-error status), and the ICMP/ICMPv6 "destination unreachable" answer a
// gateway or client sends back when it refuses one.
// Pure: no sockets, no clocks, no allocation on the parse and answer paths (both run for every packet).
// Rules:
//   * parse() never reads past the span, nor past the length the IP header claims; anything that is not a
//     well-formed IPv4/IPv6 packet is nullopt, never a guess.
//   * Ports are reported only when the whole minimal TCP (20 bytes) or UDP (8 bytes) header is present, so
//     a non-first fragment or a first fragment cut short never yields ports a policy could match.
//   * build_unreachable() answers only where RFC 1122 (3.2.2) and RFC 4443 (2.4 e) allow an ICMP error:
//     never to an ICMP error, a non-first fragment, a multicast/broadcast destination or a source that
//     names no single host, so two refusing peers can never answer each other forever.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace firebreak::ip {

// Wire constants (RFC 791, RFC 8200, IANA protocol numbers).
inline constexpr std::uint8_t protocol_hop_by_hop = 0;
inline constexpr std::uint8_t protocol_icmp = 1;
inline constexpr std::uint8_t protocol_tcp = 6;
inline constexpr std::uint8_t protocol_udp = 17;
inline constexpr std::uint8_t protocol_routing = 43;
inline constexpr std::uint8_t protocol_fragment = 44;
inline constexpr std::uint8_t protocol_icmpv6 = 58;
inline constexpr std::uint8_t protocol_destination_options = 60;

inline constexpr std::size_t ipv4_min_header_size = 20;
inline constexpr std::size_t ipv6_header_size = 40;
inline constexpr std::size_t icmp_header_size = 8;
/// The answer limits: RFC 1812 4.3.2.3 for ICMPv4, the IPv6 minimum MTU (RFC 4443 2.4 c) for ICMPv6.
inline constexpr std::size_t ipv4_max_unreachable_size = 576;
inline constexpr std::size_t ipv6_max_unreachable_size = 1280;
inline constexpr std::uint8_t unreachable_ttl = 64;

struct packet_info {
  bool v6 = false;
  std::array<std::uint8_t, 16> src{}, dst{};  // network byte order; IPv4 in the first 4 bytes, rest zero
  /// 6 tcp, 17 udp, 1 icmp, 58 icmpv6; for IPv6 the upper-layer protocol after the hop-by-hop (0), routing
  /// (43), fragment (44) and destination options (60) headers. In a non-first IPv6 fragment, the next
  /// header its fragment header names.
  std::uint8_t protocol = 0;
  /// TCP/UDP only, and only when the transport header is present (not a non-first fragment).
  std::optional<std::uint16_t> src_port, dst_port;
  bool fragment_not_first = false;
  /// ICMPv4 types 3, 4, 5, 11, 12 / ICMPv6 types < 128.
  bool icmp_error = false;
  /// Total length the header claims (<= span size); bytes after it are link padding, not the packet.
  std::size_t length = 0;
};

/// nullopt for anything that is not a well-formed IPv4/IPv6 packet: too short, bad version, IHL < 5,
/// total/payload length larger than the buffer, truncated extension headers. Never reads out of bounds.
/// The IPv4 header checksum is not verified: the kernel hands the TUN packets it built or already checked.
std::optional<packet_info> parse(std::span<const std::uint8_t> packet);

enum class unreachable { host, admin_prohibited };

/// Builds into `out` the ICMP (IPv4: type 3 code 1 host unreachable / code 13 communication administratively
/// prohibited) or ICMPv6 (type 1 code 3 address unreachable / code 1 administratively prohibited) answer to
/// `offending`, as the destination host would send it: source = offending's destination, destination =
/// offending's source.
/// Body: IPv4 = as much of the offending packet as keeps the answer <= 576 bytes; IPv6 = as much as keeps it
/// <= 1280. TTL/hop limit 64. Correct IPv4 header checksum, ICMP checksum, ICMPv6 checksum (pseudo-header).
/// Returns the answer's length, or 0 (and writes nothing meaningful) when no answer may be sent (RFC
/// 1122/4443): offending does not parse, is itself an ICMP error (or an ICMPv6 redirect, or an ICMP message
/// too short to tell), is a non-first fragment, has a source or destination that names no single host
/// (IPv4: 0/8, loopback 127/8, multicast 224/4, class E and broadcast 240/4; IPv6: ::, ::1, multicast
/// ff00::/8), or `out` cannot hold the whole answer. `out` may be `offending`'s own buffer.
std::size_t build_unreachable(std::span<const std::uint8_t> offending, unreachable why, std::span<std::uint8_t> out);

/// A multicast destination (IPv4 224/4, IPv6 ff00::/8): the kernel's own chatter on a tunnel interface
/// (IPv6 router solicitations, MLD reports), never a resource's traffic.
inline bool multicast_destination(const packet_info& p) {
  return p.v6 ? p.dst[0] == 0xff : (p.dst[0] & 0xf0) == 0xe0;
}

/// "10.0.0.1" / "fd00::1" (RFC 5952) for logs.
std::string address_to_string(bool v6, const std::array<std::uint8_t, 16>& addr);

}  // namespace firebreak::ip
