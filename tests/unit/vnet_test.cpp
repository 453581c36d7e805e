// The TUN super-packet code: TCP segmentation of what the kernel hands a TUN with TSO on, checksum
// completion, and the coalescing of opened segments into one super-packet — checked against an
// independent checksum and against each other (coalesce, then split, gives the segments back).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

#include "transport/ip/packet.hpp"
#include "transport/tun/tcp_coalesce.hpp"
#include "transport/tun/vnet_split.hpp"

using namespace firebreak::tun;
using bytes = std::vector<std::uint8_t>;

namespace {

/// Ones'-complement sum the slow way, 16-bit big-endian words: 0xffff over data with a correct checksum.
std::uint16_t ones_sum(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i < n; ++i) sum += i % 2 == 0 ? p[i] * 256u : p[i];
  while (sum > 0xffff) sum = (sum >> 16) + (sum & 0xffff);
  return static_cast<std::uint16_t>(sum);
}

bool tcp_checksum_ok(std::span<const std::uint8_t> p) {
  const bool v6 = p[0] >> 4 == 6;
  const std::size_t ip_len = v6 ? 40 : 20;
  const std::size_t l4 = p.size() - ip_len;
  std::uint32_t sum = v6 ? ones_sum(p.data() + 8, 32) : ones_sum(p.data() + 12, 8);
  sum += 6 + static_cast<std::uint32_t>(l4);
  return ones_sum(p.data() + ip_len, l4, sum) == 0xffff;
}

std::uint32_t seq_of(std::span<const std::uint8_t> p, std::size_t ip_len) {
  return std::uint32_t(p[ip_len + 4]) << 24 | std::uint32_t(p[ip_len + 5]) << 16 | std::uint32_t(p[ip_len + 6]) << 8 |
         p[ip_len + 7];
}

/// A TCP segment (or super-packet) with `payload` bytes 0, 1, 2, ... and flags ACK|PSH.
bytes tcp_packet(bool v6, std::size_t payload, std::uint32_t seq = 1000, std::uint8_t flags = 0x18) {
  const std::size_t ip_len = v6 ? 40 : 20;
  bytes p(ip_len + 20 + payload);
  if (v6) {
    p[0] = 0x60;
    p[4] = static_cast<std::uint8_t>((20 + payload) >> 8);
    p[5] = static_cast<std::uint8_t>(20 + payload);
    p[6] = 6;
    p[7] = 64;
    p[8] = 0xfd;
    p[23] = 1;
    p[24] = 0xfd;
    p[39] = 2;
  } else {
    p[0] = 0x45;
    p[2] = static_cast<std::uint8_t>(p.size() >> 8);
    p[3] = static_cast<std::uint8_t>(p.size());
    p[4] = 0x12;
    p[5] = 0x34;
    p[6] = 0x40;  // DF
    p[8] = 64;
    p[9] = 6;
    const std::uint8_t src[4] = {100, 64, 0, 2}, dst[4] = {10, 72, 0, 2};
    std::memcpy(&p[12], src, 4);
    std::memcpy(&p[16], dst, 4);
  }
  std::uint8_t* t = &p[ip_len];
  t[0] = 0xc0;
  t[1] = 0x01;
  t[2] = 0x14;
  t[3] = 0x51;
  for (int i = 0; i < 4; ++i) t[4 + i] = static_cast<std::uint8_t>(seq >> (24 - 8 * i));
  t[11] = 7;
  t[12] = 0x50;
  t[13] = flags;
  t[14] = 0xff;
  for (std::size_t i = 0; i < payload; ++i) p[ip_len + 20 + i] = static_cast<std::uint8_t>(i);
  return p;
}

/// What the kernel hands a TUN with TSO: a virtio header, the super-packet with a partial checksum.
bytes tso_frame(const bytes& packet, bool v6, std::uint16_t gso_size) {
  const std::size_t ip_len = v6 ? 40 : 20;
  bytes f(vnet_header_size + packet.size());
  std::copy(packet.begin(), packet.end(), f.begin() + vnet_header_size);
  f[0] = 1;  // NEEDS_CSUM
  f[1] = v6 ? 4 : 1;
  f[2] = static_cast<std::uint8_t>(ip_len + 20);
  f[4] = static_cast<std::uint8_t>(gso_size);
  f[5] = static_cast<std::uint8_t>(gso_size >> 8);
  f[6] = static_cast<std::uint8_t>(ip_len);
  f[8] = 16;
  return f;
}

}  // namespace

TEST_CASE("a TSO super-packet splits into segments with correct headers and checksums") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    const std::size_t ip_len = v6 ? 40 : 20;
    auto super = tcp_packet(v6, 5000);
    packet_arena out;
    REQUIRE(split_frame(tso_frame(super, v6, 1400), out) == split_error::none);
    REQUIRE(out.size() == 4);  // 1400 + 1400 + 1400 + 800
    std::size_t payload = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
      const auto p = out[i];
      const std::size_t len = i < 3 ? 1400 : 800;
      CHECK(p.size() == ip_len + 20 + len);
      auto info = firebreak::ip::parse(p);
      REQUIRE(info);
      CHECK(info->length == p.size());
      CHECK(seq_of(p, ip_len) == 1000 + 1400 * i);
      CHECK(((p[ip_len + 13] & 0x08) != 0) == (i == 3));  // PSH on the last only
      CHECK(tcp_checksum_ok(p));
      if (!v6) CHECK(ones_sum(p.data(), 20) == 0xffff);
      if (!v6) CHECK((p[4] << 8 | p[5]) == 0x1234 + static_cast<int>(i));
      CHECK(std::memcmp(p.data() + ip_len + 20, super.data() + ip_len + 20 + payload, len) == 0);
      payload += len;
    }
    CHECK(payload == 5000);
  }
}

TEST_CASE("coalesced segments split back into the same segments") {
  for (bool v6 : {false, true}) {
    CAPTURE(v6);
    packet_arena segments;
    REQUIRE(split_frame(tso_frame(tcp_packet(v6, 9000), v6, 1448), segments) == split_error::none);
    std::vector<std::span<const std::uint8_t>> views;
    segments.views(views);
    tcp_coalescer c;
    for (auto v : views) c.add(v);
    std::vector<bytes> frames;
    c.finish([&](std::span<const iovec> parts) {
      bytes f;
      for (const auto& p : parts) f.insert(f.end(), static_cast<const std::uint8_t*>(p.iov_base),
                                           static_cast<const std::uint8_t*>(p.iov_base) + p.iov_len);
      frames.push_back(std::move(f));
    });
    REQUIRE(frames.size() == 1);  // one flow, contiguous, equal segments: one super-packet
    packet_arena again;
    REQUIRE(split_frame(frames[0], again) == split_error::none);
    REQUIRE(again.size() == segments.size());
    for (std::size_t i = 0; i < again.size(); ++i) {
      CHECK(again[i].size() == segments[i].size());
      CHECK(std::memcmp(again[i].data(), segments[i].data(), segments[i].size()) == 0);
    }
  }
}

TEST_CASE("the coalescer keeps what it must not merge apart, in order per flow") {
  auto a = tcp_packet(false, 1000, 1000, 0x10);
  auto gap = tcp_packet(false, 1000, 5000, 0x10);   // not the next sequence number
  auto syn = tcp_packet(false, 0, 7000, 0x02);      // no payload, SYN
  bytes udp(28, 0);
  udp[0] = 0x45;
  udp[3] = 28;
  udp[9] = 17;
  tcp_coalescer c;
  for (const auto* p : {&a, &gap, &syn, &udp}) c.add(*p);
  std::vector<std::size_t> sizes;
  c.finish([&](std::span<const iovec> parts) {
    CHECK(parts.size() == 2);  // each on its own: an all-zero header and the packet
    const auto* h = static_cast<const std::uint8_t*>(parts[0].iov_base);
    CHECK(std::all_of(h, h + vnet_header_size, [](std::uint8_t b) { return b == 0; }));
    sizes.push_back(parts[1].iov_len);
  });
  CHECK(sizes == std::vector<std::size_t>{a.size(), gap.size(), syn.size(), udp.size()});
}

TEST_CASE("malformed frames are refused with a reason, and nothing is appended") {
  packet_arena out;
  CHECK(split_frame(bytes(5, 0), out) == split_error::too_short);
  auto super = tcp_packet(false, 3000);
  auto zero_gso = tso_frame(super, false, 0);
  CHECK(split_frame(zero_gso, out) == split_error::bad_header);
  auto udp_gso = tso_frame(super, false, 1000);
  udp_gso[1] = 3;  // UDP fragmentation offload: never enabled
  CHECK(split_frame(udp_gso, out) == split_error::unsupported_gso);
  auto wrong_family = tso_frame(super, false, 1000);
  wrong_family[1] = 4;  // TCPv6 on an IPv4 packet
  CHECK(split_frame(wrong_family, out) == split_error::unsupported_gso);
  auto cut = tso_frame(super, false, 1000);
  cut.resize(vnet_header_size + 30);  // the TCP header cut short
  CHECK(split_frame(cut, out) == split_error::bad_packet);
  auto tiny = tso_frame(super, false, 1);
  CHECK(split_frame(tiny, out) == split_error::too_many_segments);
  auto bad_csum = tso_frame(super, false, 1000);
  bad_csum[1] = 0;  // no GSO, but a checksum offset beyond the packet
  bad_csum[8] = 0xff;
  bad_csum[9] = 0xff;
  CHECK(split_frame(bad_csum, out) == split_error::bad_header);
  CHECK(out.size() == 0);
}

TEST_CASE("a packet with a partial checksum gets it completed") {
  auto p = tcp_packet(false, 100);
  // The kernel's part: the pseudo-header's sum, not complemented, in the checksum field.
  std::uint32_t pseudo = ones_sum(p.data() + 12, 8) + 6 + 120;
  while (pseudo > 0xffff) pseudo = (pseudo >> 16) + (pseudo & 0xffff);
  p[20 + 16] = static_cast<std::uint8_t>(pseudo >> 8);
  p[20 + 17] = static_cast<std::uint8_t>(pseudo);
  auto f = tso_frame(p, false, 0);
  f[1] = 0;  // GSO none, NEEDS_CSUM
  packet_arena out;
  REQUIRE(split_frame(f, out) == split_error::none);
  REQUIRE(out.size() == 1);
  CHECK(tcp_checksum_ok(out[0]));
}
