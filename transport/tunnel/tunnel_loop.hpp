// A WireGuard interface in one process: the sans-IO engine between a TUN device and a UDP socket, in one
// epoll loop. It owns no policy: the caller builds the engine's device and says when to stop.
//
//   TUN ──read──> encapsulate ──> UDP batch (sendmmsg)      packets are read straight into the send
//   UDP ──recvmmsg──> decapsulate ──> TUN write             batch and sealed in place: no extra copy
//   deadline ──> handle_timeout ──> poll_transmit ──> UDP
//
// With the offloads (a TUN with the virtio header, UDP GSO and GRO; each falls back where the kernel
// refuses it): TCP super-packets from the TUN are cut into packets (vnet_split.hpp) and their sealed
// datagrams leave as one GSO send per run; a GRO buffer from the socket is split into datagrams, and
// the TCP segments opened from it go to the TUN as one super-packet (tcp_coalesce.hpp).
#pragma once

#include <chrono>
#include <memory>

#include <spdlog/logger.h>

#include "transport/tun/tcp_coalesce.hpp"
#include "transport/tun/tun_device_linux.hpp"
#include "transport/tun/vnet_split.hpp"
#include "transport/udp/udp_socket_linux.hpp"
#include "transport/wireguard/device.hpp"

namespace firebreak::tunnel {

/// The clock the loop hands to the engine: monotonic for timers, wall for handshake timestamps.
wireguard::instant clock_now();

class tunnel_loop {
 public:
  tunnel_loop(tun::tun_device tun, udp::udp_socket socket, wireguard::device& engine,
              std::shared_ptr<spdlog::logger> log);
  ~tunnel_loop();

  /// Runs until SIGTERM or SIGINT, and returns that signal (-1 when epoll fails); SIGUSR1 logs the
  /// status of every peer.
  int run();
  void log_status(wireguard::instant now) const;

 private:
  void read_tunnel(wireguard::instant now);
  void read_tunnel_frames(wireguard::instant now);
  void read_network(wireguard::instant now);
  void send_transmits();

  tun::tun_device tun_;
  udp::udp_socket socket_;
  wireguard::device& engine_;
  std::shared_ptr<spdlog::logger> log_;
  int epoll_fd_ = -1;
  int signal_fd_ = -1;
  std::vector<std::uint8_t> open_buffer_, frame_buffer_;
  tun::packet_arena split_, opened_;
  tun::tcp_coalescer coalescer_;
  std::uint64_t tun_malformed_ = 0;
  std::uint64_t tun_read_errors_ = 0;
  std::uint64_t tun_write_errors_ = 0;
};

}  // namespace firebreak::tunnel
