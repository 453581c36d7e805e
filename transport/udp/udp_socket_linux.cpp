#include "transport/udp/udp_socket_linux.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <netinet/udp.h>

#include <algorithm>
#include <cstring>

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace firebreak::udp {
namespace {

wireguard::endpoint from_sockaddr(const sockaddr_in6& sa) {
  wireguard::endpoint e;
  static constexpr std::uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(sa.sin6_addr.s6_addr, v4_mapped, 12) == 0) {
    std::memcpy(e.addr.data(), sa.sin6_addr.s6_addr + 12, 4);
  } else {
    e.v6 = true;
    std::memcpy(e.addr.data(), sa.sin6_addr.s6_addr, 16);
  }
  e.port = ntohs(sa.sin6_port);
  return e;
}

sockaddr_in6 to_sockaddr(const wireguard::endpoint& e) {
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(e.port);
  if (e.v6) {
    std::memcpy(sa.sin6_addr.s6_addr, e.addr.data(), 16);
  } else {
    sa.sin6_addr.s6_addr[10] = 0xff;
    sa.sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(sa.sin6_addr.s6_addr + 12, e.addr.data(), 4);
  }
  return sa;
}

}  // namespace

udp_socket udp_socket::bind(std::uint16_t port, std::string& why) {
  udp_socket s;
  s.fd_ = ::socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s.fd_ < 0) {
    why = std::string("cannot create a UDP socket: ") + std::strerror(errno);
    return s;
  }
  int off = 0;
  ::setsockopt(s.fd_, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  int buf = 4 << 20;  // room for bursts while the other side of the loop is busy
  ::setsockopt(s.fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  ::setsockopt(s.fd_, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  // Received runs of datagrams arrive as one buffer where the kernel has GRO (split in receive()).
  s.gro_ = enable_gro(s.fd_);
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(port);
  sa.sin6_addr = in6addr_any;
  if (::bind(s.fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    why = errno == EADDRINUSE ? "UDP port " + std::to_string(port) + " is already in use: choose another ListenPort"
                              : "cannot bind UDP port " + std::to_string(port) + ": " + std::strerror(errno);
    return s;
  }
  s.rx_buffers_.resize(batch * slot_size);
  s.tx_buffers_.resize(batch * slot_size);
  for (std::size_t i = 0; i < batch; ++i) {
    s.rx_iov_[i] = {s.rx_buffers_.data() + i * slot_size, slot_size};
    s.rx_msgs_[i].msg_hdr.msg_iov = &s.rx_iov_[i];
    s.rx_msgs_[i].msg_hdr.msg_iovlen = 1;
    s.rx_msgs_[i].msg_hdr.msg_name = &s.rx_addr_[i];
    s.tx_iov_[i].iov_base = s.tx_buffers_.data() + i * slot_size;
    s.tx_msgs_[i].msg_hdr.msg_iov = &s.tx_iov_[i];
    s.tx_msgs_[i].msg_hdr.msg_iovlen = 1;
    s.tx_msgs_[i].msg_hdr.msg_name = &s.tx_addr_[i];
    s.tx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in6);
  }
  return s;
}

udp_socket::udp_socket(udp_socket&& other) noexcept
    : fd_(other.fd_), gro_(other.gro_), rx_buffers_(std::move(other.rx_buffers_)), tx_buffers_(std::move(other.tx_buffers_)) {
  other.fd_ = -1;
  // The message headers point into the buffers, whose storage moved with them; re-point them.
  for (std::size_t i = 0; i < batch && !rx_buffers_.empty(); ++i) {
    rx_iov_[i] = {rx_buffers_.data() + i * slot_size, slot_size};
    rx_msgs_[i].msg_hdr.msg_iov = &rx_iov_[i];
    rx_msgs_[i].msg_hdr.msg_iovlen = 1;
    rx_msgs_[i].msg_hdr.msg_name = &rx_addr_[i];
    tx_iov_[i].iov_base = tx_buffers_.data() + i * slot_size;
    tx_msgs_[i].msg_hdr.msg_iov = &tx_iov_[i];
    tx_msgs_[i].msg_hdr.msg_iovlen = 1;
    tx_msgs_[i].msg_hdr.msg_name = &tx_addr_[i];
    tx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in6);
  }
}

udp_socket::~udp_socket() {
  if (fd_ >= 0) ::close(fd_);
}

std::uint16_t udp_socket::local_port() const {
  sockaddr_in6 sa{};
  socklen_t len = sizeof sa;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin6_port);
}

std::span<const udp_socket::received> udp_socket::receive() {
  for (std::size_t i = 0; i < batch; ++i) {
    rx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in6);
    rx_msgs_[i].msg_hdr.msg_control = rx_control_[i].data();
    rx_msgs_[i].msg_hdr.msg_controllen = rx_control_[i].size();
  }
  int n = ::recvmmsg(fd_, rx_msgs_.data(), batch, MSG_DONTWAIT, nullptr);
  rx_out_.clear();
  if (n <= 0) return {};
  rx_messages_ = static_cast<std::size_t>(n);
  for (int i = 0; i < n; ++i) {
    auto* base = static_cast<std::uint8_t*>(rx_iov_[i].iov_base);
    const std::size_t len = rx_msgs_[i].msg_len;
    const auto from = from_sockaddr(rx_addr_[i]);
    // With GRO, one buffer may hold a run of datagrams from one sender, all `segment` bytes but the last.
    std::size_t segment = len;
    for (cmsghdr* c = CMSG_FIRSTHDR(&rx_msgs_[i].msg_hdr); c != nullptr; c = CMSG_NXTHDR(&rx_msgs_[i].msg_hdr, c))
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
        int size = 0;
        std::memcpy(&size, CMSG_DATA(c), sizeof size);
        if (size > 0) segment = static_cast<std::size_t>(size);
      }
    for (std::size_t at = 0; at < len; at += segment)
      rx_out_.push_back({{base + at, std::min(segment, len - at)}, from});
  }
  return rx_out_;
}

std::span<std::uint8_t> udp_socket::next_slot() {
  if (tx_count_ == batch) flush();
  return {tx_buffers_.data() + tx_count_ * slot_size, slot_size};
}

void udp_socket::commit_slot(std::size_t len, const wireguard::endpoint& to) {
  tx_iov_[tx_count_].iov_len = len;
  tx_addr_[tx_count_] = to_sockaddr(to);
  ++tx_count_;
}

void udp_socket::queue(std::span<const std::uint8_t> bytes, const wireguard::endpoint& to) {
  auto slot = next_slot();
  if (bytes.size() > slot.size()) return;
  std::memcpy(slot.data(), bytes.data(), bytes.size());
  commit_slot(bytes.size(), to);
}

void udp_socket::flush() {
  // Runs to one destination go as one GSO send where they can (batch_sender), the rest by sendmmsg.
  const auto errors_before = sender_.errors();
  std::size_t i = 0;
  while (i < tx_count_) {
    std::size_t j = i + 1;
    while (j < tx_count_ && std::memcmp(&tx_addr_[j], &tx_addr_[i], sizeof(sockaddr_in6)) == 0) ++j;
    sender_.send(fd_, reinterpret_cast<const sockaddr*>(&tx_addr_[i]), sizeof(sockaddr_in6),
                 std::span<iovec>(tx_iov_.data() + i, j - i));
    i = j;
  }
  send_errors_ += sender_.errors() - errors_before;
  tx_count_ = 0;
}

}  // namespace firebreak::udp
