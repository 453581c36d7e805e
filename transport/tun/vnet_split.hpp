// Splitting what a TUN device opened with IFF_VNET_HDR and TUNSETOFFLOAD hands us: a virtio_net_hdr in
// front of every frame, and — once TSO is on — TCP "super-packets" of up to 64 KiB that the kernel did
// not segment, with their checksums left for us (CHECKSUM_PARTIAL). Each frame becomes plain IP
// packets with complete checksums, as if the kernel had segmented them itself (wireguard-go does the
// same in tun/offload_linux.go).
//
//   gso none  ── one packet; its transport checksum completed when the header says NEEDS_CSUM
//   gso tcpv4 / tcpv6 ── one packet per gso_size bytes of payload: headers copied, IPv4 length, id and
//               header checksum, IPv6 payload length, TCP sequence number and flags (FIN and PSH on
//               the last segment only, CWR on the first only) and the TCP checksum recomputed
//   anything else (UDP fragmentation offload, which we never enable; a header that does not match
//   its packet; IPv6 extension headers under TSO; more than max_segments) ── an error, nothing appended
//
// Pure: no system calls, no clock, never reads outside the frame; the output goes into an arena.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace firebreak::tun {

inline constexpr std::size_t vnet_header_size = 10;  // struct virtio_net_hdr

/// Packets one after another in one buffer, reused from batch to batch.
class packet_arena {
 public:
  void clear() {
    bytes_.clear();
    at_.clear();
  }
  /// Room for a packet of `n` bytes; valid until the next append.
  std::uint8_t* append(std::size_t n) {
    const std::size_t at = bytes_.size();
    bytes_.resize(at + n);
    at_.emplace_back(at, n);
    return bytes_.data() + at;
  }
  /// Shortens the last packet to `n` bytes (n <= its size).
  void trim_last(std::size_t n) {
    at_.back().second = n;
    bytes_.resize(at_.back().first + n);
  }
  void drop_last() {
    bytes_.resize(at_.back().first);
    at_.pop_back();
  }
  std::size_t size() const { return at_.size(); }
  std::size_t bytes() const { return bytes_.size(); }
  std::span<const std::uint8_t> operator[](std::size_t i) const { return {bytes_.data() + at_[i].first, at_[i].second}; }
  void views(std::vector<std::span<const std::uint8_t>>& out) const {
    out.clear();
    for (const auto& [at, n] : at_) out.emplace_back(bytes_.data() + at, n);
  }

 private:
  std::vector<std::uint8_t> bytes_;
  std::vector<std::pair<std::size_t, std::size_t>> at_;
};

enum class split_error : std::uint8_t {
  none,
  too_short,          // shorter than the virtio header, or no packet after it
  bad_header,         // checksum start/offset or segment size outside the packet
  unsupported_gso,    // a GSO type we never enable (UDP), or one that does not match the IP version
  bad_packet,         // not IPv4/IPv6 TCP with sane header lengths where TSO says it is
  too_many_segments,  // more than max_segments
};
std::string_view to_string(split_error e);

inline constexpr std::size_t max_segments = 256;

/// Appends the packets of one frame (virtio_net_hdr, then the packet) to `out`.
split_error split_frame(std::span<const std::uint8_t> frame, packet_arena& out);

/// The Internet checksum (RFC 1071) of `bytes` added to a running sum; fold with checksum_finish.
std::uint64_t checksum_add(std::span<const std::uint8_t> bytes, std::uint64_t sum = 0);
/// Folds a running sum and complements it: the 16-bit value to store, in network byte order.
std::uint16_t checksum_finish(std::uint64_t sum);

}  // namespace firebreak::tun
