// The Linux TUN device: /dev/net/tun opened with IFF_TUN | IFF_NO_PI, so every read and write is exactly
// one IP packet with no extra header. Non-blocking; the owner polls its descriptor.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <system_error>

namespace firebreak::tun {

class tun_device {
 public:
  /// Creates (or attaches to) the interface `name`. The error names what to fix.
  static tun_device open(const std::string& name, std::error_code& ec, std::string& why);

  tun_device(tun_device&& other) noexcept;
  tun_device& operator=(tun_device&& other) noexcept;
  tun_device(const tun_device&) = delete;
  tun_device& operator=(const tun_device&) = delete;
  ~tun_device();

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }
  int ifindex() const { return ifindex_; }
  /// One packet into `buf`; 0 when none is waiting, -1 on error (errno set).
  long read(std::span<std::uint8_t> buf);
  /// One packet; false when the kernel refused it (errno set).
  bool write(std::span<const std::uint8_t> packet);

 private:
  tun_device() = default;
  int fd_ = -1;
  int ifindex_ = 0;
  std::string name_;
};

}  // namespace firebreak::tun
