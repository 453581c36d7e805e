#include "transport/tunnel/tunnel_loop.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace firebreak::tunnel {

using namespace std::chrono_literals;

wireguard::instant clock_now() {
  return {std::chrono::steady_clock::now().time_since_epoch(), std::chrono::system_clock::now().time_since_epoch()};
}

tunnel_loop::tunnel_loop(tun::tun_device tun, udp::udp_socket socket, wireguard::device& engine,
                         std::shared_ptr<spdlog::logger> log)
    : tun_(std::move(tun)), socket_(std::move(socket)), engine_(engine), log_(std::move(log)),
      open_buffer_(65536) {
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

void tunnel_loop::read_network(wireguard::instant now) {
  for (int round = 0; round < 8; ++round) {
    auto batch = socket_.receive();
    if (batch.empty()) break;
    for (const auto& d : batch) {
      auto r = engine_.decapsulate(d.bytes, d.from, now, open_buffer_);
      if (r.what == wireguard::verdict::to_tunnel && !tun_.write(r.bytes)) ++tun_write_errors_;
    }
    if (batch.size() < udp::udp_socket::batch) break;
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
  log_->info("interface {}: UDP port {}, {} TUN read error(s), {} TUN write error(s), {} UDP send error(s)",
             tun_.name(), socket_.local_port(), tun_read_errors_, tun_write_errors_, socket_.send_errors());
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
  for (std::size_t i = 0; i < engine_.drops().size(); ++i)
    if (engine_.drops()[i] > 0)
      log_->info("  dropped {}: {}", wireguard::to_string(static_cast<wireguard::drop_reason>(i)), engine_.drops()[i]);
}

}  // namespace firebreak::tunnel
