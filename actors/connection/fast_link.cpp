#include "actors/connection/fast_link.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "messages/p2p_control.hpp"
#include "transport/wireguard/constants.hpp"
#include "transport/wireguard/messages.hpp"

namespace firebreak::connection {

namespace {

/// Room for one sealed packet: the header, the tag and up to 15 bytes of padding.
constexpr std::size_t seal_room = wireguard::transport_overhead + 16;

// What a data thread seals into or opens into, and still reads after unlocking: its own, shared by all
// the connections it serves (several TUN readers may seal for one connection at once), so a connection
// holds no batch-sized buffer of its own.
thread_local std::vector<std::uint8_t> seal_buffer, open_buffer;
thread_local std::vector<iovec> seal_iov;

}  // namespace

direct_socket::direct_socket(int dup_fd, const sockaddr* addr, socklen_t len) : fd(dup_fd), to_len(len) {
  std::memcpy(&to, addr, std::min<std::size_t>(len, sizeof to));
}

direct_socket::~direct_socket() {
  if (fd >= 0) ::close(fd);
}

fast_link::fast_link(std::string id) : peer_id(std::move(id)) {}

void fast_link::set_direct(int fd, const sockaddr* to, socklen_t len) {
  std::shared_ptr<direct_socket> d;
  if (fd >= 0 && to != nullptr && len <= sizeof(sockaddr_storage)) {
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy >= 0) d = std::make_shared<direct_socket>(copy, to, len);
  }
  std::lock_guard lock(mu);
  direct_ = std::move(d);
}

void fast_link::clear_direct() {
  std::shared_ptr<direct_socket> old;
  std::lock_guard lock(mu);
  old.swap(direct_);
}

bool fast_link::has_direct() const {
  std::lock_guard lock(const_cast<std::mutex&>(mu));
  return static_cast<bool>(direct_);
}

bool fast_link::actor_must_look() const {
  if (device->has_transmits()) return true;
  if (auto next = device->poll_timeout(); next && (!timer_at || next->at < *timer_at)) return true;
  if (auto s = device->status(peer); s && s->handshakes != handshakes_reported) return true;
  return false;
}

void fast_link::kick_actor() {
  if (kick && !kick_pending.exchange(true, std::memory_order_acq_rel)) kick();
}

bool fast_link::send(std::span<const std::span<const std::uint8_t>> packets, const wireguard::instant& now) {
  std::shared_ptr<direct_socket> d;
  bool look = false;
  {
    std::lock_guard lock(mu);
    if (!open || !direct_ || !device) return false;
    d = direct_;
    std::size_t need = 0;
    for (const auto& p : packets) need += p.size() + seal_room;
    if (seal_buffer.size() < need) seal_buffer.resize(need);
    seal_iov.clear();
    std::size_t at = 0;
    for (const auto& p : packets) {
      auto r = device->encapsulate(p, now, {seal_buffer.data() + at, p.size() + seal_room});
      if (r.what != wireguard::verdict::to_network) continue;  // staged for a handshake, or dropped and counted
      seal_iov.push_back({r.bytes.data(), r.bytes.size()});
      at += r.bytes.size();
    }
    look = actor_must_look();
  }
  // After unlocking: the socket is our own descriptor, alive as long as `d`, whatever ICE does meanwhile.
  if (!seal_iov.empty()) {
    const auto before = d->sender.errors();
    d->sender.send(d->fd, reinterpret_cast<const sockaddr*>(&d->to), d->to_len, seal_iov);
    counters_.sealed.fetch_add(seal_iov.size(), std::memory_order_relaxed);
    counters_.send_errors.fetch_add(d->sender.errors() - before, std::memory_order_relaxed);
  }
  if (look) kick_actor();
  return true;
}

void fast_link::receive(packet_list& batch, const wireguard::instant& now) {
  if (!sink) return;
  struct span_at {
    std::size_t at, size;
  };
  std::vector<span_at> ready;
  packet_list control;
  std::vector<std::size_t> control_sizes;
  bool look = false;
  {
    std::lock_guard lock(mu);
    if (!open || !device) return;
    std::size_t need = 0;
    for (const auto& d : batch) need += d.size();
    if (open_buffer.size() < need) open_buffer.resize(need);
    std::size_t keep = 0, at = 0;
    ready.reserve(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto& d = batch[i];
      const bool transport = d.size() >= wireguard::transport_overhead &&
                             wireguard::load_le32(d.data()) ==
                                 static_cast<std::uint32_t>(wireguard::message_type::transport_data);
      if (!transport) {
        if (keep != i) batch[keep] = std::move(d);
        ++keep;
        continue;
      }
      auto r = device->decapsulate(d, ice_endpoint, now, {open_buffer.data() + at, d.size()});
      if (r.what != wireguard::verdict::to_tunnel || r.bytes.empty()) continue;  // keepalive, or counted drop
      if (messages::p2p::classify(r.bytes).what != messages::p2p::kind::not_control) {
        control.emplace_back(r.bytes.begin(), r.bytes.end());
        control_sizes.push_back(d.size());
        continue;
      }
      ready.push_back({at, r.bytes.size()});
      at += r.bytes.size();
    }
    batch.resize(keep);
    look = actor_must_look();
  }
  std::vector<std::span<const std::uint8_t>> packets;
  packets.reserve(ready.size());
  for (const auto& r : ready) packets.emplace_back(open_buffer.data() + r.at, r.size);
  std::vector<std::size_t> refused_at;
  if (!packets.empty()) sink->deliver(peer_id, packets, refused_at);
  packet_list refused;
  for (auto i : refused_at) refused.emplace_back(packets[i].begin(), packets[i].end());
  counters_.opened.fetch_add(ready.size() - refused.size(), std::memory_order_relaxed);
  if (!refused.empty() && refused_to_tunnel) refused_to_tunnel(std::move(refused));
  if (!control.empty() && control_to_actor) control_to_actor(std::move(control), std::move(control_sizes));
  if (look) kick_actor();
}

}  // namespace firebreak::connection
