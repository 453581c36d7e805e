// Sending a batch of datagrams to one address in as few system calls as the kernel allows: each run of
// equal-sized datagrams (the last may be shorter) as one UDP GSO send (a UDP_SEGMENT control message),
// the kernel cutting it into datagrams; everything else with sendmmsg. The first time the kernel
// refuses GSO (a device without checksum offload, an old kernel) the sender stops asking and uses
// sendmmsg alone. A full socket buffer waits a moment for room, then the rest is counted as dropped.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

namespace firebreak::udp {

class batch_sender {
 public:
  /// Sends every datagram (one iovec each); returns how many the kernel took.
  std::size_t send(int fd, const sockaddr* to, socklen_t to_len, std::span<iovec> datagrams);
  bool gso() const { return gso_.load(std::memory_order_relaxed); }
  std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  std::uint64_t gso_sends() const { return gso_sends_.load(std::memory_order_relaxed); }

  /// The most segments and bytes one GSO send carries (the kernel's UDP_MAX_SEGMENTS, and an IP packet).
  static constexpr std::size_t max_segments = 64;
  static constexpr std::size_t max_gso_bytes = 65000;

 private:
  std::size_t send_gso(int fd, const sockaddr* to, socklen_t to_len, std::span<iovec> run, bool& refused);
  std::size_t send_mmsg(int fd, const sockaddr* to, socklen_t to_len, std::span<iovec> datagrams);
  std::atomic<bool> gso_{true};
  std::atomic<std::uint64_t> errors_{0}, gso_sends_{0};
};

/// Turns on UDP GRO for a socket (received runs of datagrams arrive as one buffer, their segment size
/// in a UDP_GRO control message); false when the kernel does not have it.
bool enable_gro(int fd);

}  // namespace firebreak::udp
