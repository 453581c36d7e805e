// libFuzzer target for every packet the tunnel hands the data path: parse(), and the unreachable answer
// for both reasons into a 1280-byte buffer.
// Properties checked beyond "no crash, no sanitizer report":
//   * what parses claims no more than the input holds, IPv4 addresses leave bytes 4..15 zero, and ports
//     appear only for TCP/UDP outside non-first fragments;
//   * an answer comes only from input that parses, fits its limit (576 / 1280), parses itself as an ICMP
//     error of the same family from the offending destination to the offending source, quotes the input's
//     first bytes, has a correct IPv4 header checksum, and is never answered in turn.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "transport/ip/packet.hpp"

namespace {

using namespace firebreak::ip;

void check(bool ok) {
  if (!ok) std::abort();
}

/// Folded ones'-complement sum (0xffff over a header that carries a correct checksum).
std::uint16_t ones_sum(std::span<const std::uint8_t> data) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < data.size(); ++i) sum += i % 2 == 0 ? data[i] * 256u : data[i];
  while (sum > 0xffff) sum = (sum >> 16) + (sum & 0xffff);
  return static_cast<std::uint16_t>(sum);
}

void check_info(const packet_info& info, std::size_t size) {
  check(info.length <= size);
  check(info.length >= (info.v6 ? ipv6_header_size : ipv4_min_header_size));
  if (!info.v6) check(std::all_of(info.src.begin() + 4, info.src.end(), [](std::uint8_t b) { return b == 0; }));
  if (!info.v6) check(std::all_of(info.dst.begin() + 4, info.dst.end(), [](std::uint8_t b) { return b == 0; }));
  const bool ports_possible = (info.protocol == protocol_tcp || info.protocol == protocol_udp) && !info.fragment_not_first;
  check(info.src_port.has_value() == info.dst_port.has_value());
  if (!ports_possible) check(!info.src_port);
}

void answer(std::span<const std::uint8_t> offending, const std::optional<packet_info>& info, unreachable why) {
  static std::array<std::uint8_t, ipv6_max_unreachable_size> out;
  const std::size_t n = build_unreachable(offending, why, out);
  if (n == 0) return;
  check(info.has_value());
  check(!info->icmp_error && !info->fragment_not_first);
  const std::size_t limit = info->v6 ? ipv6_max_unreachable_size : ipv4_max_unreachable_size;
  const std::size_t quote_at = (info->v6 ? ipv6_header_size : ipv4_min_header_size) + icmp_header_size;
  check(n <= limit && n > quote_at);
  const auto reply = std::span<const std::uint8_t>(out).first(n);
  const auto parsed = parse(reply);
  check(parsed.has_value());
  check_info(*parsed, n);
  check(parsed->length == n);
  check(parsed->v6 == info->v6);
  check(parsed->src == info->dst && parsed->dst == info->src);
  check(parsed->protocol == (info->v6 ? protocol_icmpv6 : protocol_icmp));
  check(parsed->icmp_error);
  check(std::memcmp(reply.data() + quote_at, offending.data(), n - quote_at) == 0);
  if (!info->v6) check(ones_sum(reply.first(ipv4_min_header_size)) == 0xffff);
  // No answer to an answer: two refusing peers must not talk forever.
  static std::array<std::uint8_t, ipv6_max_unreachable_size> again;
  check(build_unreachable(reply, why, again) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> packet(data, size);
  const auto info = parse(packet);
  if (info) {
    check_info(*info, size);
    (void)address_to_string(info->v6, info->src);
  }
  answer(packet, info, unreachable::host);
  answer(packet, info, unreachable::admin_prohibited);
  return 0;
}
