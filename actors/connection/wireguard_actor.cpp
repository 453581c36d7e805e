#include "actors/connection/wireguard_actor.hpp"

#include "actors/trace/trace_point.hpp"
#include "messages/p2p_control.hpp"
#include "transport/wireguard/crypto.hpp"

namespace firebreak::connection {

using namespace messages;
using wg_self = caf::stateful_actor<wireguard_state>;

namespace {

wireguard::instant now_of(wg_self* self) {
  return {self->clock().now().time_since_epoch(), std::chrono::system_clock::now().time_since_epoch()};
}

constexpr std::size_t max_waiting = 16;

/// While the link is locked, datagrams wait in the outbox; they leave once it is released.
void send_datagram(wg_self* self, std::span<const std::uint8_t> bytes) {
  self->state.outbox.emplace_back(bytes.begin(), bytes.end());
}

void drain_outbox(wg_self* self) {
  auto& st = self->state;
  for (auto& bytes : st.outbox) {
    if (st.path) {
      if (!st.path->send(bytes)) ++st.no_path_drops;
      continue;
    }
    if (st.waiting.size() >= max_waiting) {
      st.waiting.pop_front();
      ++st.no_path_drops;
    }
    st.waiting.push_back(std::move(bytes));
  }
  st.outbox.clear();
}

/// The engine, locked for one handler; the datagrams it produced are sent after unlocking.
class engine_lock {
 public:
  explicit engine_lock(wg_self* self) : self_(self), lock_(self->state.link->mu) {}
  ~engine_lock() {
    lock_.unlock();
    drain_outbox(self_);
  }
  engine_lock(const engine_lock&) = delete;
  engine_lock& operator=(const engine_lock&) = delete;

 private:
  wg_self* self_;
  std::unique_lock<std::mutex> lock_;
};

wireguard::device& engine(wg_self* self) { return *self->state.link->device; }

/// Handshakes, keepalives and packets that waited for a session.
void flush_transmits(wg_self* self) {
  while (auto t = engine(self).poll_transmit()) send_datagram(self, t->bytes);
}

/// Bulk packets may take the fast path while a session and a path exist and nothing is closing.
void update_open(wg_self* self, bool closing = false) {
  auto& st = self->state;
  st.link->open = !closing && st.told_session && st.path != nullptr;
}

/// Tells the connection what changed in the peer's condition, once per change.
void report(wg_self* self) {
  auto& st = self->state;
  auto s = engine(self).status(st.peer);
  if (!s) return;
  if (s->has_session && !st.told_session) {
    st.told_session = true;
    update_open(self);
    self->send(st.connection, wg_status{wg_condition::session_up, {}});
  }
  if (s->handshakes > st.link->handshakes_reported) {
    if (st.sink) self->send(st.sink, handshake_done{st.peer_id, s->handshakes - st.link->handshakes_reported});
    st.link->handshakes_reported = s->handshakes;
  }
  if (s->unanswered > 0 && !st.told_unanswered) {
    st.told_unanswered = true;
    self->send(st.connection, wg_status{wg_condition::unanswered, "no authenticated packet 15 s after sending data"});
  } else if (s->unanswered == 0) {
    st.told_unanswered = false;
  }
  if (s->gave_up && !st.told_gave_up) {
    st.told_gave_up = true;
    self->send(st.connection, wg_status{wg_condition::gave_up, "handshake attempts ran out after 90 s"});
  } else if (!s->gave_up) {
    st.told_gave_up = false;
  }
}

/// Keeps one delayed wg_tick for the engine's next deadline; a newer one supersedes it.
void arm_timer(wg_self* self, const wireguard::instant& now) {
  auto& st = self->state;
  auto next = engine(self).poll_timeout();
  if (!next) return;
  auto& armed = st.link->timer_at;
  if (armed && *armed <= next->at) return;
  armed = next->at;
  auto delay = next->at > now.mono ? next->at - now.mono : wireguard::mono_time{0};
  self->delayed_send(self, std::chrono::duration_cast<caf::timespan>(delay), wg_tick{++st.generation});
}

void after_work(wg_self* self, const wireguard::instant& now) {
  flush_transmits(self);
  report(self);
  arm_timer(self, now);
}

/// A decrypted control packet (authenticated, not a replay): a goodbye here is the peer's own.
void on_control(wg_self* self, std::span<const std::uint8_t> packet, std::size_t datagram_size) {
  auto& s = self->state;
  const auto control = p2p::classify(packet);
  if (control.what == p2p::kind::goodbye) {
    if (trace::on() && !s.told_goodbye) {
      const trace::keys k{{}, {}, {}, s.peer_id};
      trace::record("wire", "ice", "goodbye", k, std::to_string(datagram_size) + " bytes");
      trace::record("ice", "wireguard", "goodbye", k, "opened: authenticated, not a replay");
    }
    if (!s.told_goodbye) self->send(s.connection, wg_status{wg_condition::goodbye, "the peer said goodbye"});
    s.told_goodbye = true;
  } else {
    ++s.control_drops;
  }
}

}  // namespace

caf::behavior wireguard_actor(wg_self* self, caf::actor connection, connection_spec spec,
                              wireguard_settings settings) {
  auto& st = self->state;
  st.connection = std::move(connection);
  st.sink = settings.packet_sink;
  st.peer_id = spec.peer_id;
  st.controlling = spec.controlling;
  st.log = settings.log ? settings.log : spdlog::default_logger();
  st.buffer.resize(65536);

  auto remote = wireguard::key_from_base64(spec.remote_public_key);
  std::optional<wireguard::secret<32>> psk;
  if (!spec.preshared_key.empty()) psk = wireguard::key_from_base64(spec.preshared_key);
  if (!remote || (!spec.preshared_key.empty() && !psk)) {
    // Say which key, never its value.
    std::string which = !remote ? "the remote public key" : "the preshared key";
    st.log->warn("[peer {}] {} is not 32 bytes of base64: the connection cannot start", st.peer_id, which);
    self->send(st.connection, wg_status{wg_condition::bad_keys, which + " is not 32 bytes of base64"});
    return {
        [=](const close_connection&) { self->quit(); },
        [=](counters_atom) { return wg_counters{0, 0, 0, 0}; },
    };
  }
  wireguard::device_config cfg;
  cfg.local_private_key = settings.local_key;
  cfg.mtu = settings.mtu;
  st.link = spec.fast ? spec.fast : std::make_shared<fast_link>(spec.peer_id);
  std::unique_lock setup(st.link->mu);
  st.link->device = std::make_unique<wireguard::device>(cfg, *settings.rng, st.log);
  wireguard::peer_config pc;
  std::copy(remote->bytes.begin(), remote->bytes.end(), pc.remote_static.begin());
  if (psk) pc.preshared_key = *psk;
  pc.remote_endpoint = ice_endpoint;
  // Every address: the owner decides which packets go to this connection (and the gateway's
  // authorization which may come in), so the engine routes everything to its one peer.
  static const std::vector<wireguard::ip_prefix> everything = {wireguard::ip_prefix{false, {}, 0},
                                                               wireguard::ip_prefix{true, {}, 0}};
  st.peer = st.link->device->add_peer(pc, everything, now_of(self));
  st.link->peer = st.peer;
  // The data threads reach this actor without a reference that would keep it alive.
  const auto me = self->address();
  st.link->kick = [me] {
    if (auto a = caf::actor_cast<caf::actor>(me)) caf::anon_send(a, wg_kick_atom::value);
  };
  st.link->control_to_actor = [me](std::vector<std::vector<std::uint8_t>>&& packets, std::vector<std::size_t>&& sizes) {
    if (auto a = caf::actor_cast<caf::actor>(me)) caf::anon_send(a, opened_control{std::move(packets), std::move(sizes)});
  };
  if (st.sink) {
    const auto sink = st.sink.address();
    const auto peer_id = st.peer_id;
    st.link->refused_to_tunnel = [sink, peer_id](std::vector<std::vector<std::uint8_t>>&& packets) {
      if (auto a = caf::actor_cast<caf::actor>(sink)) caf::anon_send(a, packet_batch{peer_id, std::move(packets)});
    };
  }
  setup.unlock();

  return {
      [=](const path_ready& ready) {
        auto& s = self->state;
        trace::trace_in(self, "path_ready", {{}, {}, {}, s.peer_id});
        s.path = ready.path;
        if (!s.path) {
          std::lock_guard lock(s.link->mu);
          update_open(self);
          return;
        }
        s.outbox.insert(s.outbox.begin(), std::make_move_iterator(s.waiting.begin()),
                        std::make_move_iterator(s.waiting.end()));
        s.waiting.clear();
        engine_lock lock(self);
        const auto now = now_of(self);
        if (s.controlling) {
          trace::record("wireguard", "wire", "handshake_initiation", {{}, {}, {}, s.peer_id});
          engine(self).initiate_handshake(s.peer, now);
        }
        update_open(self);
        after_work(self, now);
      },
      [=](packet_batch& batch) {
        auto& s = self->state;
        engine_lock lock(self);
        const auto now = now_of(self);
        for (const auto& packet : batch.packets) {
          auto r = engine(self).encapsulate(packet, now, s.buffer);
          if (r.what == wireguard::verdict::to_network) send_datagram(self, r.bytes);
        }
        after_work(self, now);
      },
      [=](datagram_batch& batch) {
        auto& s = self->state;
        packet_batch in{s.peer_id, {}};
        {
          engine_lock lock(self);
          const auto now = now_of(self);
          for (const auto& d : batch.datagrams) {
            auto r = engine(self).decapsulate(d, ice_endpoint, now, s.buffer);
            if (r.what == wireguard::verdict::to_tunnel) {
              if (p2p::classify(r.bytes).what == p2p::kind::not_control)
                in.packets.emplace_back(r.bytes.begin(), r.bytes.end());
              else
                on_control(self, r.bytes, d.size());
            } else if (r.what == wireguard::verdict::to_network)
              send_datagram(self, r.bytes);
          }
          after_work(self, now);
        }
        if (!in.packets.empty() && s.sink) self->send(s.sink, std::move(in));
      },
      [=](const opened_control& c) {
        for (std::size_t i = 0; i < c.packets.size(); ++i)
          on_control(self, c.packets[i], i < c.datagram_sizes.size() ? c.datagram_sizes[i] : 0);
      },
      [=](wg_kick_atom) {
        self->state.link->kick_pending.store(false, std::memory_order_release);
        engine_lock lock(self);
        after_work(self, now_of(self));
      },
      [=](const wg_tick& tick) {
        auto& s = self->state;
        if (tick.generation != s.generation) return;  // superseded by an earlier deadline
        engine_lock lock(self);
        s.link->timer_at.reset();
        const auto now = now_of(self);
        engine(self).handle_timeout(now);
        after_work(self, now);
      },
      [=](counters_atom) {
        auto& s = self->state;
        std::lock_guard lock(s.link->mu);
        auto status = engine(self).status(s.peer);
        std::uint64_t dropped = s.no_path_drops + s.control_drops;
        for (auto n : engine(self).drops()) dropped += n;
        std::int64_t handshake_ms = 0;
        if (status && status->last_handshake_wall)
          handshake_ms = std::chrono::duration_cast<std::chrono::milliseconds>(*status->last_handshake_wall).count();
        return wg_counters{status ? status->tx_bytes : 0, status ? status->rx_bytes : 0, dropped, handshake_ms};
      },
      [=](const close_connection& c) {
        auto& s = self->state;
        {
          engine_lock lock(self);
          update_open(self, true);  // from here on, every packet takes the slow way (and finds no connection)
          if (c.mode == close_mode::goodbye_and_flush && s.told_session && s.path) {
            // After what is queued: the goodbye, sealed in the session like any packet. Best effort: no
            // acknowledgement, no retry.
            flush_transmits(self);
            const auto g = p2p::goodbye();
            auto r = engine(self).encapsulate(g, now_of(self), s.buffer);
            if (r.what == wireguard::verdict::to_network) {
              if (trace::on()) {
                const trace::keys k{{}, {}, {}, s.peer_id};
                trace::trace_in(self, "close_connection", k, "goodbye_and_flush: " + c.reason);
                trace::record("wireguard", "ice", "goodbye", k, "sealed, " + std::to_string(r.bytes.size()) + " bytes");
                trace::record("ice", "wire", "goodbye", k, "sent on the selected pair");
              }
              send_datagram(self, r.bytes);
            }
            flush_transmits(self);
            s.log->info("[peer {}] goodbye sent ({})", s.peer_id, c.reason);
          }
        }
        s.path.reset();
        self->quit();
      },
  };
}

}  // namespace firebreak::connection
