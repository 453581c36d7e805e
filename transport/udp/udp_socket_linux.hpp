// A dual-stack UDP socket (IPv6 with v4-mapped addresses) with batched receive and send
// (recvmmsg/sendmmsg), so the data path pays one system call per batch rather than per datagram.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "transport/wireguard/endpoint.hpp"

namespace firebreak::udp {

class udp_socket {
 public:
  static constexpr std::size_t batch = 64;

  /// Binds [::]:port (0: any). Empty `why` on success.
  static udp_socket bind(std::uint16_t port, std::string& why);

  udp_socket(udp_socket&& other) noexcept;
  udp_socket(const udp_socket&) = delete;
  udp_socket& operator=(const udp_socket&) = delete;
  ~udp_socket();

  int fd() const { return fd_; }
  std::uint16_t local_port() const;

  /// A batch of received datagrams: views into the socket's own buffers, valid until the next receive.
  struct received {
    std::span<std::uint8_t> bytes;
    wireguard::endpoint from;
  };
  std::span<const received> receive();

  /// Queues a datagram for the next flush (copied into the send batch); flushes when the batch is full.
  void queue(std::span<const std::uint8_t> bytes, const wireguard::endpoint& to);
  /// A slot to seal into directly (no copy); commit with its length.
  std::span<std::uint8_t> next_slot();
  void commit_slot(std::size_t len, const wireguard::endpoint& to);
  void flush();
  std::uint64_t send_errors() const { return send_errors_; }

 private:
  udp_socket() = default;
  static constexpr std::size_t slot_size = 65536;

  int fd_ = -1;
  std::vector<std::uint8_t> rx_buffers_, tx_buffers_;
  std::array<mmsghdr, batch> rx_msgs_{}, tx_msgs_{};
  std::array<iovec, batch> rx_iov_{}, tx_iov_{};
  std::array<sockaddr_in6, batch> rx_addr_{}, tx_addr_{};
  std::array<received, batch> rx_out_{};
  std::size_t tx_count_ = 0;
  std::uint64_t send_errors_ = 0;
};

}  // namespace firebreak::udp
