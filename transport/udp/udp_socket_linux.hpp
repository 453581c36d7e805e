// A dual-stack UDP socket (IPv6 with v4-mapped addresses) with batched receive and send
// (recvmmsg/sendmmsg), so the data path pays one system call per batch rather than per datagram; with
// UDP GRO on receive (a run of datagrams in one buffer, split again here) and UDP GSO on send (a run of
// equal datagrams to one destination in one send, udp_batch.hpp) where the kernel has them.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "transport/udp/udp_batch.hpp"
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
  /// Datagrams (before GRO's splitting) the last receive() took: below `batch`, the socket is drained.
  std::size_t last_receive_messages() const { return rx_messages_; }
  bool gro() const { return gro_; }
  bool gso() const { return sender_.gso(); }

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
  bool gro_ = false;
  batch_sender sender_;
  std::vector<std::uint8_t> rx_buffers_, tx_buffers_;
  std::array<std::array<char, 64>, batch> rx_control_{};
  std::size_t rx_messages_ = 0;
  std::array<mmsghdr, batch> rx_msgs_{}, tx_msgs_{};
  std::array<iovec, batch> rx_iov_{}, tx_iov_{};
  std::array<sockaddr_in6, batch> rx_addr_{}, tx_addr_{};
  std::vector<received> rx_out_;
  std::size_t tx_count_ = 0;
  std::uint64_t send_errors_ = 0;
};

}  // namespace firebreak::udp
