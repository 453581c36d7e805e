// The Linux TUN device: /dev/net/tun opened with IFF_TUN | IFF_NO_PI. Non-blocking; the owner polls its
// descriptor.
//
// With `offload`, also IFF_VNET_HDR and TUNSETOFFLOAD (checksum, TSO for IPv4 and IPv6): every read is
// a virtio_net_hdr and a packet that may be a TCP super-packet of up to 64 KiB (vnet_split.hpp cuts
// it), every write gets an all-zero header in front. Where the kernel refuses the offloads the device
// works without them; where it refuses the header, it is opened plain. Without `offload`, every read
// and write is exactly one IP packet.
//
// With `queues` above 1, IFF_MULTI_QUEUE: that many descriptors on the one interface. The kernel hands
// each flow to one queue (by its hash, or to the queue its replies were last written on), so several
// readers can seal at once and every flow keeps its order. Where the kernel refuses, one queue.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace firebreak::tun {

class tun_device {
 public:
  /// Creates (or attaches to) the interface `name`. The error names what to fix.
  static tun_device open(const std::string& name, std::error_code& ec, std::string& why, bool offload = false,
                         unsigned queues = 1);

  tun_device(tun_device&& other) noexcept;
  tun_device& operator=(tun_device&& other) noexcept;
  tun_device(const tun_device&) = delete;
  tun_device& operator=(const tun_device&) = delete;
  ~tun_device();

  int fd() const { return fd_; }
  /// How many queues were opened (1 without IFF_MULTI_QUEUE), and each one's descriptor (0 is fd()).
  unsigned queues() const { return 1 + static_cast<unsigned>(more_.size()); }
  int queue_fd(unsigned q) const { return q == 0 || q > more_.size() ? fd_ : more_[q - 1]; }
  const std::string& name() const { return name_; }
  int ifindex() const { return ifindex_; }
  /// Reads carry a virtio_net_hdr (open with `offload`, accepted by the kernel).
  bool vnet_header() const { return vnet_; }
  /// The kernel took TUNSETOFFLOAD: reads may be super-packets.
  bool segmentation_offload() const { return tso_; }
  /// One frame into `buf` (with the virtio header when vnet_header()); 0 when none is waiting, -1 on
  /// error (errno set).
  long read(std::span<std::uint8_t> buf);
  /// One plain IP packet (the header added when vnet_header()); false when the kernel refused it.
  /// On queue `q` (any queue reaches the same interface; the kernel steers the flow's replies there).
  bool write(std::span<const std::uint8_t> packet, unsigned q = 0);
  /// One frame exactly as given (the virtio header first when vnet_header()), from a scatter list.
  bool write_frame(std::span<const iovec> parts, unsigned q = 0);

 private:
  tun_device() = default;
  void close_all();
  int fd_ = -1;
  std::vector<int> more_;  // queues 1..n-1
  int ifindex_ = 0;
  bool vnet_ = false, tso_ = false;
  std::string name_;
};

}  // namespace firebreak::tun
