#include "transport/tun/tun_device_linux.hpp"

#include "transport/tun/vnet_split.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace firebreak::tun {

namespace {

/// Attaches `fd` to the interface `ifr` names, with its flags (the kernel writes the name back).
int attach(int fd, ifreq& ifr) { return ::ioctl(fd, TUNSETIFF, &ifr); }

/// The virtio header size, then checksum and TSO offloads; `tso` tells whether the kernel took them.
void set_offloads(int fd, bool& tso) {
  int header = static_cast<int>(vnet_header_size);
  if (::ioctl(fd, TUNSETVNETHDRSZ, &header) == 0)
    tso = ::ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) == 0;
}

}  // namespace

tun_device tun_device::open(const std::string& name, std::error_code& ec, std::string& why, bool offload,
                            unsigned queues) {
  tun_device dev;
  if (name.empty() || name.size() >= IFNAMSIZ) {
    ec = std::make_error_code(std::errc::invalid_argument);
    why = "interface name '" + name + "' must be 1 to " + std::to_string(IFNAMSIZ - 1) + " characters";
    return dev;
  }
  dev.fd_ = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (dev.fd_ < 0) {
    ec = std::error_code(errno, std::system_category());
    why = errno == ENOENT ? "/dev/net/tun does not exist: load the tun module or give the container the device"
          : errno == EACCES
              ? "cannot open /dev/net/tun: permission denied; it must be readable and writable by this user "
                "(mode 0666 is usual)"
          : errno == EPERM
              ? "cannot open /dev/net/tun: not allowed here; allow the device to this service (systemd: "
                "DeviceAllow=/dev/net/tun rw; a container: give it the device)"
              : "cannot open /dev/net/tun: " + ec.message();
    return dev;
  }
  ifreq ifr{};
  const short multi = queues > 1 ? IFF_MULTI_QUEUE : 0;
  ifr.ifr_flags = static_cast<short>(IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0) | multi);
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  int r = attach(dev.fd_, ifr);
  if (r < 0 && multi != 0 && errno == EINVAL) {
    // No multi-queue here (or the interface exists as a single-queue one): one queue.
    queues = 1;
    ifr.ifr_flags = static_cast<short>(IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0));
    r = attach(dev.fd_, ifr);
  }
  if (r < 0 && offload && errno == EINVAL) {
    // A kernel without the virtio header: the plain device.
    ifr.ifr_flags = static_cast<short>(IFF_TUN | IFF_NO_PI | (queues > 1 ? IFF_MULTI_QUEUE : 0));
    r = attach(dev.fd_, ifr);
  }
  if (r < 0) {
    ec = std::error_code(errno, std::system_category());
    why = errno == EPERM ? "cannot create TUN interface '" + name + "': CAP_NET_ADMIN is required"
          : errno == EBUSY ? "TUN interface '" + name + "' is in use by another process"
                           : "cannot create TUN interface '" + name + "': " + ec.message();
    return dev;
  }
  dev.vnet_ = (ifr.ifr_flags & IFF_VNET_HDR) != 0;
  if (dev.vnet_) set_offloads(dev.fd_, dev.tso_);
  // The other queues, with the same flags; one the kernel refuses ends the list there.
  const ifreq first = ifr;
  for (unsigned q = 1; q < queues && (first.ifr_flags & IFF_MULTI_QUEUE); ++q) {
    const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) break;
    ifreq more = first;
    if (attach(fd, more) < 0) {
      ::close(fd);
      break;
    }
    if (dev.vnet_) {
      bool tso = false;
      set_offloads(fd, tso);
      dev.tso_ = dev.tso_ && tso;
    }
    dev.more_.push_back(fd);
  }
  dev.name_ = ifr.ifr_name;
  dev.ifindex_ = static_cast<int>(::if_nametoindex(dev.name_.c_str()));
  return dev;
}

bool tun_device::write_frame(std::span<const iovec> parts, unsigned q) {
  std::size_t total = 0;
  for (const auto& p : parts) total += p.iov_len;
  return ::writev(queue_fd(q), parts.data(), static_cast<int>(parts.size())) == static_cast<ssize_t>(total);
}

tun_device::tun_device(tun_device&& other) noexcept
    : fd_(other.fd_),
      more_(std::move(other.more_)),
      ifindex_(other.ifindex_),
      vnet_(other.vnet_),
      tso_(other.tso_),
      name_(std::move(other.name_)) {
  other.fd_ = -1;
  other.more_.clear();
}

void tun_device::close_all() {
  for (int fd : more_) ::close(fd);
  more_.clear();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

tun_device& tun_device::operator=(tun_device&& other) noexcept {
  if (this != &other) {
    close_all();
    fd_ = other.fd_;
    more_ = std::move(other.more_);
    other.more_.clear();
    ifindex_ = other.ifindex_;
    vnet_ = other.vnet_;
    tso_ = other.tso_;
    name_ = std::move(other.name_);
    other.fd_ = -1;
  }
  return *this;
}

tun_device::~tun_device() {
  close_all();  // a non-persistent TUN interface disappears with its last descriptor
}

long tun_device::read(std::span<std::uint8_t> buf) {
  ssize_t n = ::read(fd_, buf.data(), buf.size());
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  return n;
}

bool tun_device::write(std::span<const std::uint8_t> packet, unsigned q) {
  const int fd = queue_fd(q);
  if (!vnet_) return ::write(fd, packet.data(), packet.size()) == static_cast<ssize_t>(packet.size());
  // No offload asked for this packet: its checksums are complete.
  static const std::uint8_t none[vnet_header_size] = {};
  iovec iov[2] = {{const_cast<std::uint8_t*>(none), sizeof none},
                  {const_cast<std::uint8_t*>(packet.data()), packet.size()}};
  return ::writev(fd, iov, 2) == static_cast<ssize_t>(sizeof none + packet.size());
}

}  // namespace firebreak::tun
