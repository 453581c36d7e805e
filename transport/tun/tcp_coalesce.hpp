// The other direction of vnet_split.hpp: consecutive TCP segments of one flow, opened from the tunnel,
// written to a TUN with the virtio header as one super-packet (gso tcpv4/tcpv6, the checksum left
// partial), so the kernel forwards or delivers one buffer instead of dozens, as a NIC's GRO would.
//
// A segment joins the newest run of its flow when: same addresses, ports, IP header fields (TOS or
// traffic class, TTL or hop limit, DF), same TCP header length, options, acknowledgement and window;
// only ACK set on the run so far (PSH may end it); its sequence number follows the run's; its payload
// is the run's segment size (a shorter one ends the run); the run stays within 64 KiB and 64 segments.
// Anything else (other protocols, IPv4 options, IPv6 extension headers, SYN/FIN/RST/URG/ECE/CWR, no
// payload) is written as it came, with an all-zero header. Per flow the order is kept; across flows
// it need not be.
//
// Pure: plans frames as scatter lists over the caller's packets (no payload is copied); the caller
// writes each with writev. The packets must stay valid until finish() has returned.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace firebreak::tun {

class tcp_coalescer {
 public:
  static constexpr std::size_t max_run_segments = 64;
  static constexpr std::size_t max_run_bytes = 65535;

  /// Adds one complete IP packet (already checked by the caller's policy).
  void add(std::span<const std::uint8_t> packet);
  /// Hands every frame to `write` (virtio header first, as one scatter list), in order per flow, and
  /// starts over.
  void finish(const std::function<void(std::span<const iovec>)>& write);
  std::size_t runs() const { return runs_.size(); }

 private:
  struct run {
    std::span<const std::uint8_t> first;
    std::size_t headers = 0;       // IP + TCP header bytes of every member
    std::size_t ip_len = 0;
    bool v6 = false, coalescable = false, closed = false;
    std::size_t segment = 0;       // payload bytes per segment (the first's)
    std::size_t payload = 0;       // sum so far
    std::uint32_t next_seq = 0;
    std::vector<std::span<const std::uint8_t>> members;
  };
  bool joins(const run& r, std::span<const std::uint8_t> p, std::size_t ip_len, std::size_t headers) const;

  std::vector<run> runs_;
  std::size_t used_ = 0;
  std::vector<iovec> iov_;
  std::array<std::uint8_t, 10 + 60 + 60> head_{};
};

}  // namespace firebreak::tun
