// IP packets as the data path sees them: IPv4 and IPv6 packets built by hand parse into the right
// addresses, protocol and ports (through IPv6 extension headers and fragments); truncated and garbage
// input is refused; and the ICMP/ICMPv6 unreachable answers carry the right type, code, addresses, TTL,
// lengths, quote and checksums (checked by a checksum routine of the test's own), and are never sent
// where RFC 1122 and RFC 4443 forbid them.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "transport/ip/packet.hpp"

using namespace firebreak::ip;

namespace {

using bytes = std::vector<std::uint8_t>;
using addr4 = std::array<std::uint8_t, 4>;
using addr16 = std::array<std::uint8_t, 16>;

constexpr addr4 client4{100, 64, 0, 7};
constexpr addr4 resource4{10, 0, 0, 5};
constexpr addr16 client6{0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07};
constexpr addr16 resource6{0xfd, 0x00, 0x20, 0x21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05};

std::uint8_t hi(std::size_t v) { return static_cast<std::uint8_t>(v >> 8); }
std::uint8_t lo(std::size_t v) { return static_cast<std::uint8_t>(v); }
std::size_t word(const bytes& b, std::size_t at) { return std::size_t(b[at]) * 256 + b[at + 1]; }

/// The test's own RFC 1071 sum: bytes added at their place value into 32 bits, folded once at the end.
/// A message that carries a correct checksum sums to 0xffff.
std::uint16_t ones_sum(const bytes& data) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < data.size(); ++i) sum += i % 2 == 0 ? data[i] * 256u : data[i];
  while (sum > 0xffff) sum = (sum >> 16) + (sum & 0xffff);
  return static_cast<std::uint16_t>(sum);
}

std::uint16_t checksum(const bytes& data) { return static_cast<std::uint16_t>(~ones_sum(data)); }

bytes slice(const bytes& b, std::size_t from, std::size_t n) { return bytes(b.begin() + from, b.begin() + from + n); }

addr16 widen(addr4 a) {
  addr16 out{};
  std::copy(a.begin(), a.end(), out.begin());
  return out;
}

/// flags_fragment: the 16 bits of flags and fragment offset (0x4000: don't fragment, whole packet).
bytes ipv4(std::uint8_t protocol, addr4 src, addr4 dst, const bytes& payload, std::uint16_t flags_fragment = 0x4000) {
  const std::size_t total = 20 + payload.size();
  bytes p{0x45, 0x00, hi(total), lo(total), 0x1c, 0x46, hi(flags_fragment), lo(flags_fragment), 64, protocol, 0, 0};
  p.insert(p.end(), src.begin(), src.end());
  p.insert(p.end(), dst.begin(), dst.end());
  const std::uint16_t sum = checksum(p);
  p[10] = hi(sum);
  p[11] = lo(sum);
  p.insert(p.end(), payload.begin(), payload.end());
  return p;
}

/// `payload` is everything after the fixed header: extension headers and the upper layer.
bytes ipv6(std::uint8_t next_header, const addr16& src, const addr16& dst, const bytes& payload) {
  bytes p{0x60, 0x00, 0x00, 0x00, hi(payload.size()), lo(payload.size()), next_header, 64};
  p.insert(p.end(), src.begin(), src.end());
  p.insert(p.end(), dst.begin(), dst.end());
  p.insert(p.end(), payload.begin(), payload.end());
  return p;
}

bytes udp(std::uint16_t src_port, std::uint16_t dst_port, std::size_t data = 4) {
  const std::size_t length = 8 + data;
  bytes u{hi(src_port), lo(src_port), hi(dst_port), lo(dst_port), hi(length), lo(length), 0, 0};
  for (std::size_t i = 0; i < data; ++i) u.push_back(static_cast<std::uint8_t>('a' + i % 26));
  return u;
}

bytes tcp_syn(std::uint16_t src_port, std::uint16_t dst_port) {
  return {hi(src_port), lo(src_port), hi(dst_port), lo(dst_port), 0x00, 0x00, 0x10, 0x00, 0, 0, 0, 0,
          0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0};
}

bytes icmp_message(std::uint8_t type, std::uint8_t code = 0) { return {type, code, 0, 0, 0x00, 0x01, 0x00, 0x01, 1, 2, 3, 4}; }

/// Hop-by-hop or destination options: 8 bytes, one PadN option.
bytes options_header(std::uint8_t next) { return {next, 0, 1, 4, 0, 0, 0, 0}; }

bytes fragment_header(std::uint8_t next, std::uint16_t offset_units, bool more) {
  const std::uint16_t field = static_cast<std::uint16_t>(offset_units << 3 | (more ? 1 : 0));
  return {next, 0, hi(field), lo(field), 0xde, 0xad, 0xbe, 0xef};
}

bytes operator+(bytes a, const bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

packet_info parsed(const bytes& p) {
  auto info = parse(p);
  REQUIRE(info);
  return *info;
}

bytes answer_to(const bytes& offending, unreachable why, std::size_t room = 1500) {
  bytes out(room, 0xee);
  const std::size_t n = build_unreachable(offending, why, out);
  out.resize(n);
  return out;
}

/// The ICMPv6 checksum over the RFC 8200 pseudo-header, summed by the test's own routine.
std::uint16_t icmpv6_sum(const bytes& answer) {
  const std::size_t upper = answer.size() - 40;
  bytes pseudo = slice(answer, 8, 32);
  pseudo.insert(pseudo.end(), {0, 0, hi(upper), lo(upper), 0, 0, 0, 58});
  return ones_sum(pseudo + slice(answer, 40, upper));
}

}  // namespace

// ---- the test's checksum against a real header -----------------------------------------------------

TEST_CASE("the test's checksum routine gives the classic example header's b861") {
  const bytes header{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                     0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  CHECK(checksum(header) == 0xb861);
  bytes with_sum = header;
  with_sum[10] = 0xb8;
  with_sum[11] = 0x61;
  CHECK(ones_sum(with_sum) == 0xffff);
}

// ---- parse: IPv4 ------------------------------------------------------------------------------------

TEST_CASE("the classic example packet is UDP from 192.168.0.1 to 192.168.0.199") {
  bytes p{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
          0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  p = p + udp(5353, 53, 0x73 - 28);
  REQUIRE(p.size() == 0x73);
  const auto info = parsed(p);
  CHECK_FALSE(info.v6);
  CHECK(info.src == widen({192, 168, 0, 1}));
  CHECK(info.dst == widen({192, 168, 0, 199}));
  CHECK(info.protocol == 17);
  CHECK(info.src_port == 5353);
  CHECK(info.dst_port == 53);
  CHECK(info.length == 0x73);
  CHECK_FALSE(info.fragment_not_first);
  CHECK_FALSE(info.icmp_error);
  CHECK(address_to_string(false, info.src) == "192.168.0.1");
}

TEST_CASE("an IPv4 TCP SYN to port 443") {
  const auto info = parsed(ipv4(6, client4, resource4, tcp_syn(40000, 443)));
  CHECK(info.protocol == 6);
  CHECK(info.src == widen(client4));
  CHECK(info.dst == widen(resource4));
  CHECK(info.src_port == 40000);
  CHECK(info.dst_port == 443);
  CHECK(info.length == 40);
}

TEST_CASE("IPv4 options move the TCP header, and the ports are read after them") {
  auto p = ipv4(6, client4, resource4, bytes{0x01, 0x01, 0x01, 0x00} + tcp_syn(40001, 22));
  p[0] = 0x46;  // IHL 6: one word of options (NOP NOP NOP EOL)
  const auto info = parsed(p);
  CHECK(info.src_port == 40001);
  CHECK(info.dst_port == 22);
}

TEST_CASE("an IPv4 ICMP echo request has no ports and is not an error; types 3 4 5 11 12 are errors") {
  const auto echo = parsed(ipv4(1, client4, resource4, icmp_message(8)));
  CHECK(echo.protocol == 1);
  CHECK_FALSE(echo.src_port);
  CHECK_FALSE(echo.dst_port);
  CHECK_FALSE(echo.icmp_error);
  for (std::uint8_t type : {3, 4, 5, 11, 12}) {
    CAPTURE(int(type));
    CHECK(parsed(ipv4(1, client4, resource4, icmp_message(type))).icmp_error);
  }
  for (std::uint8_t type : {0, 8, 13, 14}) {
    CAPTURE(int(type));
    CHECK_FALSE(parsed(ipv4(1, client4, resource4, icmp_message(type))).icmp_error);
  }
}

TEST_CASE("bytes after the IPv4 total length are padding, not packet") {
  auto p = ipv4(17, client4, resource4, udp(1000, 2000));
  const std::size_t claimed = p.size();
  p.resize(p.size() + 18, 0);
  CHECK(parsed(p).length == claimed);
}

TEST_CASE("IPv4 fragments: the first carries the ports, the others none") {
  const auto first = parsed(ipv4(17, client4, resource4, udp(1000, 2000, 1472), 0x2000));  // MF, offset 0
  CHECK_FALSE(first.fragment_not_first);
  CHECK(first.src_port == 1000);
  CHECK(first.dst_port == 2000);

  // Offset 185 units (1480 bytes); its first bytes look like ports but are payload.
  const auto later = parsed(ipv4(17, client4, resource4, udp(1000, 2000, 100), 185));
  CHECK(later.fragment_not_first);
  CHECK(later.protocol == 17);
  CHECK_FALSE(later.src_port);
  CHECK_FALSE(later.dst_port);
}

TEST_CASE("a first fragment cut inside the TCP header yields no ports") {
  const auto info = parsed(ipv4(6, client4, resource4, slice(tcp_syn(40000, 443), 0, 8), 0x2000));
  CHECK(info.protocol == 6);
  CHECK_FALSE(info.fragment_not_first);
  CHECK_FALSE(info.src_port);
  CHECK_FALSE(info.dst_port);
}

// ---- parse: IPv6 ------------------------------------------------------------------------------------

TEST_CASE("IPv6 TCP, UDP and ICMPv6") {
  const auto t = parsed(ipv6(6, client6, resource6, tcp_syn(50000, 443)));
  CHECK(t.v6);
  CHECK(t.src == client6);
  CHECK(t.dst == resource6);
  CHECK(t.protocol == 6);
  CHECK(t.src_port == 50000);
  CHECK(t.dst_port == 443);
  CHECK(t.length == 60);

  const auto u = parsed(ipv6(17, client6, resource6, udp(5000, 53)));
  CHECK(u.protocol == 17);
  CHECK(u.src_port == 5000);
  CHECK(u.dst_port == 53);
  CHECK(u.length == 52);

  const auto echo = parsed(ipv6(58, client6, resource6, icmp_message(128)));
  CHECK(echo.protocol == 58);
  CHECK_FALSE(echo.src_port);
  CHECK_FALSE(echo.icmp_error);
  CHECK(parsed(ipv6(58, client6, resource6, icmp_message(1, 4))).icmp_error);
  CHECK(parsed(ipv6(58, client6, resource6, icmp_message(3))).icmp_error);
  CHECK_FALSE(parsed(ipv6(58, client6, resource6, icmp_message(135))).icmp_error);
}

TEST_CASE("IPv6 through a hop-by-hop header to UDP, TCP and ICMPv6") {
  const auto u = parsed(ipv6(0, client6, resource6, options_header(17) + udp(5000, 53)));
  CHECK(u.protocol == 17);
  CHECK(u.src_port == 5000);
  CHECK(u.dst_port == 53);

  const auto t = parsed(ipv6(0, client6, resource6, options_header(6) + tcp_syn(50000, 8443)));
  CHECK(t.protocol == 6);
  CHECK(t.dst_port == 8443);

  const auto mld = parsed(ipv6(0, client6, resource6, options_header(58) + icmp_message(143)));
  CHECK(mld.protocol == 58);
  CHECK_FALSE(mld.icmp_error);
}

TEST_CASE("IPv6 fragments: the first carries the ports, the others none") {
  const auto first = parsed(ipv6(44, client6, resource6, fragment_header(17, 0, true) + udp(5000, 53, 1000)));
  CHECK(first.protocol == 17);
  CHECK_FALSE(first.fragment_not_first);
  CHECK(first.src_port == 5000);
  CHECK(first.dst_port == 53);

  const auto later = parsed(ipv6(44, client6, resource6, fragment_header(17, 126, false) + udp(5000, 53, 100)));
  CHECK(later.protocol == 17);
  CHECK(later.fragment_not_first);
  CHECK_FALSE(later.src_port);
  CHECK_FALSE(later.dst_port);

  // An atomic fragment (offset 0, no more fragments) is a whole packet.
  const auto atomic = parsed(ipv6(44, client6, resource6, fragment_header(6, 0, false) + tcp_syn(1, 2)));
  CHECK_FALSE(atomic.fragment_not_first);
  CHECK(atomic.dst_port == 2);
}

TEST_CASE("IPv6 through hop-by-hop, destination options, routing and fragment headers together") {
  const bytes routing{60, 0, 4, 0, 0, 0, 0, 0};  // type 4 (segment routing), 8 bytes, then dest options
  const auto info = parsed(ipv6(0, client6, resource6,
                                options_header(43) + routing + options_header(44) + fragment_header(6, 0, true) +
                                    tcp_syn(50001, 443)));
  CHECK(info.protocol == 6);
  CHECK(info.src_port == 50001);
  CHECK(info.dst_port == 443);

  // A longer extension header (length field 1: 16 bytes) is skipped whole.
  const bytes long_options{17, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const auto u = parsed(ipv6(60, client6, resource6, long_options + udp(7, 9)));
  CHECK(u.protocol == 17);
  CHECK(u.src_port == 7);
  CHECK(u.dst_port == 9);
}

// ---- parse: refusals --------------------------------------------------------------------------------

TEST_CASE("garbage and malformed headers are refused") {
  CHECK_FALSE(parse({}));
  CHECK_FALSE(parse(bytes{0x45}));
  CHECK_FALSE(parse(bytes(19, 0x45)));
  CHECK_FALSE(parse(bytes(64, 0x00)));
  CHECK_FALSE(parse(bytes(64, 0xff)));

  const auto good = ipv4(17, client4, resource4, udp(1, 2));
  auto bad_version = good;
  bad_version[0] = 0x55;
  CHECK_FALSE(parse(bad_version));
  auto short_ihl = good;
  short_ihl[0] = 0x44;
  CHECK_FALSE(parse(short_ihl));
  auto long_ihl = good;  // IHL 15: a 60-byte header in a 32-byte packet
  long_ihl[0] = 0x4f;
  CHECK_FALSE(parse(long_ihl));
  auto claims_more = good;
  claims_more[3] = lo(good.size() + 1);
  CHECK_FALSE(parse(claims_more));
  auto claims_less_than_header = good;
  claims_less_than_header[3] = 19;
  CHECK_FALSE(parse(claims_less_than_header));

  CHECK_FALSE(parse(bytes(39, 0x60)));
  auto v6_claims_more = ipv6(17, client6, resource6, udp(1, 2));
  v6_claims_more[5] = lo(v6_claims_more[5] + 1);
  CHECK_FALSE(parse(v6_claims_more));
}

TEST_CASE("every truncation of a valid packet is refused") {
  for (const auto& p : {ipv4(6, client4, resource4, tcp_syn(1, 2)),
                        ipv6(0, client6, resource6, options_header(44) + fragment_header(17, 0, true) + udp(1, 2))}) {
    for (std::size_t n = 0; n < p.size(); ++n) {
      CAPTURE(n);
      CHECK_FALSE(parse(slice(p, 0, n)));
    }
    CHECK(parse(p));
  }
}

TEST_CASE("truncated or misplaced IPv6 extension headers are refused") {
  // The payload length ends inside the hop-by-hop header.
  CHECK_FALSE(parse(ipv6(0, client6, resource6, slice(options_header(17), 0, 4))));
  // The hop-by-hop header claims 16 bytes; only 8 are there.
  CHECK_FALSE(parse(ipv6(0, client6, resource6, bytes{59, 1, 1, 4, 0, 0, 0, 0})));
  // A fragment header cut short.
  CHECK_FALSE(parse(ipv6(44, client6, resource6, slice(fragment_header(17, 0, false), 0, 6))));
  // A chain that ends before its next header arrives.
  CHECK_FALSE(parse(ipv6(0, client6, resource6, options_header(60))));
  // Hop-by-hop anywhere but first (RFC 8200 4.1).
  CHECK_FALSE(parse(ipv6(60, client6, resource6, options_header(0) + options_header(17) + udp(1, 2))));
  // Payload length zero with a header chain announced (a jumbogram, or a lie).
  CHECK_FALSE(parse(ipv6(0, client6, resource6, {})));
  // No next header (59) is a complete packet with nothing after it.
  CHECK(parsed(ipv6(59, client6, resource6, {})).protocol == 59);
}

// ---- build_unreachable: IPv4 ------------------------------------------------------------------------

TEST_CASE("IPv4 unreachable answers: type 3, code 1 or 13, from the destination, quoting the packet") {
  const auto offending = ipv4(6, client4, resource4, tcp_syn(40000, 443));
  for (auto [why, code] : {std::pair{unreachable::host, 1}, std::pair{unreachable::admin_prohibited, 13}}) {
    CAPTURE(code);
    const auto a = answer_to(offending, why);
    REQUIRE(a.size() == 20 + 8 + offending.size());
    CHECK(a[0] == 0x45);
    CHECK(word(a, 2) == a.size());
    CHECK(a[8] == 64);
    CHECK(a[9] == 1);
    CHECK(slice(a, 12, 4) == bytes(resource4.begin(), resource4.end()));
    CHECK(slice(a, 16, 4) == bytes(client4.begin(), client4.end()));
    CHECK(ones_sum(slice(a, 0, 20)) == 0xffff);
    CHECK(a[20] == 3);
    CHECK(a[21] == code);
    CHECK(ones_sum(slice(a, 20, a.size() - 20)) == 0xffff);
    CHECK(slice(a, 24, 4) == bytes{0, 0, 0, 0});
    CHECK(slice(a, 28, offending.size()) == offending);

    const auto info = parsed(a);
    CHECK(info.icmp_error);
    CHECK(info.src == widen(resource4));
    CHECK(info.dst == widen(client4));
  }
}

TEST_CASE("an IPv4 answer quotes no more than keeps it within 576 bytes, and never the padding") {
  const auto big = ipv4(17, client4, resource4, udp(1000, 2000, 1400));
  const auto a = answer_to(big, unreachable::admin_prohibited);
  REQUIRE(a.size() == 576);
  CHECK(word(a, 2) == 576);
  CHECK(slice(a, 28, 548) == slice(big, 0, 548));
  CHECK(ones_sum(slice(a, 0, 20)) == 0xffff);
  CHECK(ones_sum(slice(a, 20, 556)) == 0xffff);

  auto padded = ipv4(17, client4, resource4, udp(1000, 2000, 2));
  const std::size_t real = padded.size();
  padded.resize(60, 0xaa);
  CHECK(answer_to(padded, unreachable::host).size() == 28 + real);
}

TEST_CASE("an odd-length IPv4 quote still has a correct ICMP checksum") {
  const auto offending = ipv4(17, client4, resource4, udp(1000, 2000, 3));
  REQUIRE(offending.size() % 2 == 1);
  const auto a = answer_to(offending, unreachable::host);
  REQUIRE(a.size() == 28 + offending.size());
  CHECK(ones_sum(slice(a, 20, a.size() - 20)) == 0xffff);
}

// ---- build_unreachable: IPv6 ------------------------------------------------------------------------

TEST_CASE("IPv6 unreachable answers: type 1, code 3 or 1, from the destination, quoting the packet") {
  const auto offending = ipv6(0, client6, resource6, options_header(17) + udp(5000, 53, 21));
  for (auto [why, code] : {std::pair{unreachable::host, 3}, std::pair{unreachable::admin_prohibited, 1}}) {
    CAPTURE(code);
    const auto a = answer_to(offending, why);
    REQUIRE(a.size() == 40 + 8 + offending.size());
    CHECK((a[0] >> 4) == 6);
    CHECK(word(a, 4) == a.size() - 40);
    CHECK(a[6] == 58);
    CHECK(a[7] == 64);
    CHECK(slice(a, 8, 16) == bytes(resource6.begin(), resource6.end()));
    CHECK(slice(a, 24, 16) == bytes(client6.begin(), client6.end()));
    CHECK(a[40] == 1);
    CHECK(a[41] == code);
    CHECK(slice(a, 44, 4) == bytes{0, 0, 0, 0});
    CHECK(icmpv6_sum(a) == 0xffff);
    CHECK(slice(a, 48, offending.size()) == offending);

    const auto info = parsed(a);
    CHECK(info.icmp_error);
    CHECK(info.src == resource6);
    CHECK(info.dst == client6);
  }
}

TEST_CASE("an IPv6 answer quotes no more than keeps it within 1280 bytes") {
  const auto big = ipv6(17, client6, resource6, udp(5000, 5001, 1400));
  const auto a = answer_to(big, unreachable::host, 2000);
  REQUIRE(a.size() == 1280);
  CHECK(word(a, 4) == 1240);
  CHECK(slice(a, 48, 1232) == slice(big, 0, 1232));
  CHECK(icmpv6_sum(a) == 0xffff);
}

TEST_CASE("a changed byte in the answer breaks the checksum the test computes") {
  // Guards the checks above: the test's routine must notice a wrong checksum.
  auto a4 = answer_to(ipv4(6, client4, resource4, tcp_syn(1, 2)), unreachable::host);
  a4[30] ^= 0x01;
  CHECK(ones_sum(slice(a4, 20, a4.size() - 20)) != 0xffff);
  auto a6 = answer_to(ipv6(6, client6, resource6, tcp_syn(1, 2)), unreachable::host);
  a6[9] ^= 0x01;  // the source address is in the pseudo-header
  CHECK(icmpv6_sum(a6) != 0xffff);
}

TEST_CASE("an answer can be built over the offending packet's own buffer") {
  const auto offending = ipv4(6, client4, resource4, tcp_syn(40000, 443));
  const auto expected = answer_to(offending, unreachable::host);
  bytes buffer = offending;
  buffer.resize(600);
  const std::size_t n = build_unreachable(std::span(buffer).first(offending.size()), unreachable::host, buffer);
  REQUIRE(n == expected.size());
  buffer.resize(n);
  CHECK(buffer == expected);
}

TEST_CASE("an ICMP echo request may be answered; it is not an error") {
  CHECK(answer_to(ipv4(1, client4, resource4, icmp_message(8)), unreachable::host).size() == 60);
  CHECK(answer_to(ipv6(58, client6, resource6, icmp_message(128)), unreachable::host).size() == 100);
}

// ---- build_unreachable: when no answer may be sent --------------------------------------------------

TEST_CASE("no answer to an ICMP error, so two refusing peers never answer each other") {
  CHECK(answer_to(ipv4(1, client4, resource4, icmp_message(3, 1)), unreachable::host).empty());
  CHECK(answer_to(ipv4(1, client4, resource4, icmp_message(11)), unreachable::host).empty());
  CHECK(answer_to(ipv6(58, client6, resource6, icmp_message(1, 3)), unreachable::host).empty());
  CHECK(answer_to(ipv6(58, client6, resource6, icmp_message(4)), unreachable::host).empty());
  CHECK(answer_to(ipv6(58, client6, resource6, icmp_message(137)), unreachable::host).empty());  // redirect

  const auto answer4 = answer_to(ipv4(17, client4, resource4, udp(1, 2)), unreachable::admin_prohibited);
  REQUIRE_FALSE(answer4.empty());
  CHECK(answer_to(answer4, unreachable::admin_prohibited).empty());
  const auto answer6 = answer_to(ipv6(17, client6, resource6, udp(1, 2)), unreachable::admin_prohibited);
  REQUIRE_FALSE(answer6.empty());
  CHECK(answer_to(answer6, unreachable::admin_prohibited).empty());
}

TEST_CASE("no answer to an ICMP message cut before its type") {
  CHECK(answer_to(ipv4(1, client4, resource4, {}, 0x2000), unreachable::host).empty());
  CHECK(answer_to(ipv6(58, client6, resource6, {}), unreachable::host).empty());
}

TEST_CASE("no answer to a non-first fragment") {
  CHECK(answer_to(ipv4(17, client4, resource4, udp(1, 2, 100), 185), unreachable::host).empty());
  CHECK(answer_to(ipv6(44, client6, resource6, fragment_header(17, 126, false) + udp(1, 2)), unreachable::host)
            .empty());
  // The first fragment is answered.
  CHECK_FALSE(answer_to(ipv4(17, client4, resource4, udp(1, 2, 100), 0x2000), unreachable::host).empty());
}

TEST_CASE("no answer to a multicast or broadcast destination") {
  CHECK(answer_to(ipv4(17, client4, {224, 0, 0, 251}, udp(5353, 5353)), unreachable::host).empty());
  CHECK(answer_to(ipv4(17, client4, {239, 255, 255, 250}, udp(1900, 1900)), unreachable::host).empty());
  CHECK(answer_to(ipv4(17, client4, {255, 255, 255, 255}, udp(68, 67)), unreachable::host).empty());
  const addr16 all_nodes{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  CHECK(answer_to(ipv6(17, client6, all_nodes, udp(1, 2)), unreachable::host).empty());
}

TEST_CASE("no answer to a source that names no single host") {
  CHECK(answer_to(ipv4(17, {0, 0, 0, 0}, resource4, udp(68, 67)), unreachable::host).empty());
  CHECK(answer_to(ipv4(17, {224, 0, 0, 1}, resource4, udp(1, 2)), unreachable::host).empty());
  CHECK(answer_to(ipv4(17, {255, 255, 255, 255}, resource4, udp(1, 2)), unreachable::host).empty());
  CHECK(answer_to(ipv4(17, {127, 0, 0, 1}, resource4, udp(1, 2)), unreachable::host).empty());
  CHECK(answer_to(ipv6(17, addr16{}, resource6, udp(1, 2)), unreachable::host).empty());
  const addr16 multicast{0xff, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};
  CHECK(answer_to(ipv6(17, multicast, resource6, udp(1, 2)), unreachable::host).empty());
}

TEST_CASE("no answer into a buffer too small for it, nor to garbage") {
  const auto offending = ipv4(6, client4, resource4, tcp_syn(40000, 443));
  const std::size_t needed = 28 + offending.size();
  CHECK(answer_to(offending, unreachable::host, needed - 1).empty());
  CHECK(answer_to(offending, unreachable::host, 0).empty());
  CHECK(answer_to(offending, unreachable::host, needed).size() == needed);

  const auto offending6 = ipv6(17, client6, resource6, udp(1, 2, 1400));
  CHECK(answer_to(offending6, unreachable::host, 1279).empty());
  CHECK(answer_to(offending6, unreachable::host, 1280).size() == 1280);

  CHECK(answer_to({}, unreachable::host).empty());
  CHECK(answer_to(bytes(100, 0x45), unreachable::host).empty());
}

// ---- address_to_string -------------------------------------------------------------------------------

TEST_CASE("addresses print as people write them (RFC 5952 for IPv6)") {
  CHECK(address_to_string(false, widen({10, 0, 0, 1})) == "10.0.0.1");
  CHECK(address_to_string(false, widen({255, 255, 255, 255})) == "255.255.255.255");
  CHECK(address_to_string(true, client6) == "fd00::7");
  CHECK(address_to_string(true, resource6) == "fd00:2021::5");
  CHECK(address_to_string(true, addr16{}) == "::");
  CHECK(address_to_string(true, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}) == "::1");
  CHECK(address_to_string(true, {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) == "ff02::");
  // The longest zero run is compressed; of equal runs, the first; a lone zero group is not.
  CHECK(address_to_string(true, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1}) ==
        "2001:db8::1:0:0:1");
  CHECK(address_to_string(true, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}) ==
        "2001:db8:0:1::1");
  CHECK(address_to_string(true, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1}) ==
        "2001:db8:0:1:1:1:1:1");
  CHECK(address_to_string(true, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1}) == "::ffff:192.0.2.1");
}
