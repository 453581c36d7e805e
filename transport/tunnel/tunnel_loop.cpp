#include "transport/tunnel/tunnel_loop.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace firebreak::tunnel {

using namespace std::chrono_literals;

wireguard::instant clock_now() {
  return {std::chrono::steady_clock::now().time_since_epoch(), std::chrono::system_clock::now().time_since_epoch()};
}

tunnel_loop::tunnel_loop(tun::tun_device tun, udp::udp_socket socket, wireguard::device& engine,
                         std::shared_ptr<spdlog::logger> log)
    : tun_(std::move(tun)), socket_(std::move(socket)), engine_(engine), log_(std::move(log)),
      open_buffer_(65536), frame_buffer_(65536 + tun::vnet_header_size) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_ = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (signal_fd_ < 0 || epoll_fd_ < 0) throw std::runtime_error(std::string("epoll/signalfd: ") + std::strerror(errno));
  for (int fd : {tun_.fd(), socket_.fd(), signal_fd_}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0)
      throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
  }
}

tunnel_loop::~tunnel_loop() {
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

void tunnel_loop::read_tunnel(wireguard::instant now) {
  if (tun_.vnet_header()) {
    read_tunnel_frames(now);
    return;
  }
  // Bounded, so a flood from the tunnel cannot starve the network side.
  for (int i = 0; i < 256; ++i) {
    auto slot = socket_.next_slot();
    // Read the packet where its ciphertext will go: the engine seals it in place.
    auto body = slot.subspan(wireguard::transport_header_size, slot.size() - wireguard::transport_overhead - 16);
    long n = tun_.read(body);
    if (n < 0) {
      // The interface went down or was deleted under us: count it, say so now and then, carry on.
      if (tun_read_errors_++ % 1000 == 0)
        log_->warn("reading from {} failed: {} ({} time(s))", tun_.name(), std::strerror(errno), tun_read_errors_);
      break;
    }
    if (n == 0) break;
    auto r = engine_.encapsulate(body.first(static_cast<std::size_t>(n)), now, slot);
    if (r.what == wireguard::verdict::to_network) socket_.commit_slot(r.bytes.size(), r.to);
  }
  socket_.flush();
}

void tunnel_loop::read_tunnel_frames(wireguard::instant now) {
  // Frames with the virtio header: a TCP super-packet is cut into packets first (vnet_split.hpp).
  for (int i = 0; i < 64; ++i) {
    long n = tun_.read(frame_buffer_);
    if (n < 0) {
      if (tun_read_errors_++ % 1000 == 0)
        log_->warn("reading from {} failed: {} ({} time(s))", tun_.name(), std::strerror(errno), tun_read_errors_);
      break;
    }
    if (n == 0) break;
    split_.clear();
    if (tun::split_frame({frame_buffer_.data(), static_cast<std::size_t>(n)}, split_) != tun::split_error::none) {
      ++tun_malformed_;
      continue;
    }
    for (std::size_t p = 0; p < split_.size(); ++p) {
      auto r = engine_.encapsulate(split_[p], now, socket_.next_slot());
      if (r.what == wireguard::verdict::to_network) socket_.commit_slot(r.bytes.size(), r.to);
    }
  }
  socket_.flush();
}

void tunnel_loop::read_network(wireguard::instant now) {
  const bool coalesce = tun_.vnet_header();
  for (int round = 0; round < 8; ++round) {
    auto batch = socket_.receive();
    if (batch.empty()) break;
    // Opened packets one after another, so TCP segments can go to the TUN as one super-packet.
    opened_.clear();
    for (const auto& d : batch) {
      auto* out = opened_.append(d.bytes.size());
      auto r = engine_.decapsulate(d.bytes, d.from, now, {out, d.bytes.size()});
      if (r.what != wireguard::verdict::to_tunnel || r.bytes.empty()) {
        opened_.drop_last();
        continue;
      }
      if (!coalesce && !tun_.write(r.bytes)) ++tun_write_errors_;
      if (!coalesce) opened_.drop_last();
      else opened_.trim_last(r.bytes.size());
    }
    if (coalesce) {
      for (std::size_t i = 0; i < opened_.size(); ++i) coalescer_.add(opened_[i]);
      coalescer_.finish([&](std::span<const iovec> frame) {
        if (!tun_.write_frame(frame)) ++tun_write_errors_;
      });
    }
    if (socket_.last_receive_messages() < udp::udp_socket::batch) break;
  }
}

void tunnel_loop::send_transmits() {
  bool any = false;
  while (auto t = engine_.poll_transmit()) {
    socket_.queue(t->bytes, t->to);
    any = true;
  }
  if (any) socket_.flush();
}

int tunnel_loop::run() {
  log_->info("interface {} is up; listening on UDP port {}", tun_.name(), socket_.local_port());
  std::array<epoll_event, 8> events;
  for (;;) {
    auto now = clock_now();
    int timeout_ms = -1;
    if (auto d = engine_.poll_timeout()) {
      auto left = d->at - now.mono;
      timeout_ms = left <= 0ns ? 0 : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
    }
    int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      log_->error("epoll_wait failed: {}", std::strerror(errno));
      return -1;
    }
    now = clock_now();
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == signal_fd_) {
        signalfd_siginfo info{};
        while (::read(signal_fd_, &info, sizeof info) == sizeof info) {
          if (info.ssi_signo == SIGUSR1) {
            log_status(now);
          } else {
            log_->info("received {}; closing interface {}", info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT",
                       tun_.name());
            return static_cast<int>(info.ssi_signo);
          }
        }
      } else if (fd == tun_.fd()) {
        read_tunnel(now);
      } else if (fd == socket_.fd()) {
        read_network(now);
      }
    }
    if (auto d = engine_.poll_timeout(); d && d->at <= now.mono) {
      log_->trace("timer: {}", d->reason);
      engine_.handle_timeout(now);
    }
    send_transmits();
  }
}

void tunnel_loop::log_status(wireguard::instant now) const {
  log_->info("interface {}: UDP port {}, {} TUN read error(s), {} TUN write error(s), {} malformed super-packet(s), "
             "{} UDP send error(s); offloads: TUN segmentation {}, UDP GSO {}, UDP GRO {}",
             tun_.name(), socket_.local_port(), tun_read_errors_, tun_write_errors_, tun_malformed_, socket_.send_errors(),
             tun_.segmentation_offload() ? "on" : "off", socket_.gso() ? "on" : "off", socket_.gro() ? "on" : "off");
  for (auto id : engine_.peers()) {
    auto s = engine_.status(id);
    if (!s) continue;
    std::string handshake = "never";
    if (s->last_handshake_wall)
      handshake = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now.wall - *s->last_handshake_wall).count()) + " s ago";
    log_->info("  peer {}: endpoint {}, latest handshake {}, {} handshake(s), rx {} B, tx {} B", id,
               s->remote_endpoint ? s->remote_endpoint->to_string() : "(unknown)", handshake, s->handshakes,
               s->rx_bytes, s->tx_bytes);
  }
  // One line, always the report's last: "dropped: none" or "dropped: cookie_required 812, replayed 3".
  std::string drops;
  for (std::size_t i = 0; i < engine_.drops().size(); ++i)
    if (engine_.drops()[i] > 0)
      drops += (drops.empty() ? "" : ", ") + std::string(wireguard::to_string(static_cast<wireguard::drop_reason>(i))) +
               " " + std::to_string(engine_.drops()[i]);
  log_->info("  dropped: {}", drops.empty() ? "none" : drops);
}

}  // namespace firebreak::tunnel
