#include "actors/connection/wireguard_actor.hpp"

#include "actors/trace/trace_point.hpp"
#include "messages/p2p_control.hpp"
#include "transport/wireguard/crypto.hpp"

namespace firebreak::connection {

using namespace messages;
using wg_self = caf::stateful_actor<wireguard_state>;

namespace {

/// The engine wants an endpoint; with ICE the path is the selected pair, whatever its address.
const wireguard::endpoint ice_endpoint = wireguard::endpoint::ipv4({127, 0, 0, 1}, 1);

wireguard::instant now_of(wg_self* self) {
  return {self->clock().now().time_since_epoch(), std::chrono::system_clock::now().time_since_epoch()};
}

constexpr std::size_t max_waiting = 16;

void send_datagram(wg_self* self, std::span<const std::uint8_t> bytes) {
  auto& st = self->state;
  if (st.path) {
    if (!st.path->send(bytes)) ++st.no_path_drops;
    return;
  }
  if (st.waiting.size() >= max_waiting) {
    st.waiting.pop_front();
    ++st.no_path_drops;
  }
  st.waiting.emplace_back(bytes.begin(), bytes.end());
}

/// Handshakes, keepalives and packets that waited for a session.
void flush_transmits(wg_self* self) {
  auto& st = self->state;
  while (auto t = st.device->poll_transmit()) send_datagram(self, t->bytes);
}

/// Tells the connection what changed in the peer's condition, once per change.
void report(wg_self* self) {
  auto& st = self->state;
  auto s = st.device->status(st.peer);
  if (!s) return;
  if (s->has_session && !st.told_session) {
    st.told_session = true;
    self->send(st.connection, wg_status{wg_condition::session_up, {}});
  }
  if (s->handshakes > st.handshakes_told) {
    if (st.sink) self->send(st.sink, handshake_done{st.peer_id, s->handshakes - st.handshakes_told});
    st.handshakes_told = s->handshakes;
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
  auto next = st.device->poll_timeout();
  if (!next) return;
  if (st.timer_at && *st.timer_at <= next->at) return;
  st.timer_at = next->at;
  auto delay = next->at > now.mono ? next->at - now.mono : wireguard::mono_time{0};
  self->delayed_send(self, std::chrono::duration_cast<caf::timespan>(delay), wg_tick{++st.generation});
}

void after_work(wg_self* self, const wireguard::instant& now) {
  flush_transmits(self);
  report(self);
  arm_timer(self, now);
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
  st.device = std::make_unique<wireguard::device>(cfg, *settings.rng, st.log);
  wireguard::peer_config pc;
  std::copy(remote->bytes.begin(), remote->bytes.end(), pc.remote_static.begin());
  if (psk) pc.preshared_key = *psk;
  pc.remote_endpoint = ice_endpoint;
  // Every address: the owner decides which packets go to this connection (and the gateway's
  // authorization which may come in), so the engine routes everything to its one peer.
  static const std::vector<wireguard::ip_prefix> everything = {wireguard::ip_prefix{false, {}, 0},
                                                               wireguard::ip_prefix{true, {}, 0}};
  st.peer = st.device->add_peer(pc, everything, now_of(self));

  return {
      [=](const path_ready& ready) {
        auto& s = self->state;
        trace::trace_in(self, "path_ready", {{}, {}, {}, s.peer_id});
        s.path = ready.path;
        if (!s.path) return;
        for (const auto& d : s.waiting) send_datagram(self, d);
        s.waiting.clear();
        const auto now = now_of(self);
        if (s.controlling) {
          trace::record("wireguard", "wire", "handshake_initiation", {{}, {}, {}, s.peer_id});
          s.device->initiate_handshake(s.peer, now);
        }
        after_work(self, now);
      },
      [=](packet_batch& batch) {
        auto& s = self->state;
        const auto now = now_of(self);
        for (const auto& packet : batch.packets) {
          auto r = s.device->encapsulate(packet, now, s.buffer);
          if (r.what == wireguard::verdict::to_network) send_datagram(self, r.bytes);
        }
        after_work(self, now);
      },
      [=](datagram_batch& batch) {
        auto& s = self->state;
        const auto now = now_of(self);
        packet_batch in{s.peer_id, {}};
        for (const auto& d : batch.datagrams) {
          auto r = s.device->decapsulate(d, ice_endpoint, now, s.buffer);
          if (r.what == wireguard::verdict::to_tunnel) {
            // Authenticated, and not a replay: a goodbye here is the peer's own.
            const auto control = p2p::classify(r.bytes);
            if (control.what == p2p::kind::not_control) {
              in.packets.emplace_back(r.bytes.begin(), r.bytes.end());
            } else if (control.what == p2p::kind::goodbye) {
              if (trace::on() && !s.told_goodbye) {
                const trace::keys k{{}, {}, {}, s.peer_id};
                trace::record("wire", "ice", "goodbye", k, std::to_string(d.size()) + " bytes");
                trace::record("ice", "wireguard", "goodbye", k, "opened: authenticated, not a replay");
              }
              if (!s.told_goodbye) self->send(s.connection, wg_status{wg_condition::goodbye, "the peer said goodbye"});
              s.told_goodbye = true;
            } else {
              ++s.control_drops;
            }
          } else if (r.what == wireguard::verdict::to_network)
            send_datagram(self, r.bytes);
        }
        if (!in.packets.empty() && s.sink) self->send(s.sink, std::move(in));
        after_work(self, now);
      },
      [=](const wg_tick& tick) {
        auto& s = self->state;
        if (tick.generation != s.generation) return;  // superseded by an earlier deadline
        s.timer_at.reset();
        const auto now = now_of(self);
        s.device->handle_timeout(now);
        after_work(self, now);
      },
      [=](counters_atom) {
        auto& s = self->state;
        auto status = s.device->status(s.peer);
        std::uint64_t dropped = s.no_path_drops + s.control_drops;
        for (auto n : s.device->drops()) dropped += n;
        std::int64_t handshake_ms = 0;
        if (status && status->last_handshake_wall)
          handshake_ms = std::chrono::duration_cast<std::chrono::milliseconds>(*status->last_handshake_wall).count();
        return wg_counters{status ? status->tx_bytes : 0, status ? status->rx_bytes : 0, dropped, handshake_ms};
      },
      [=](const close_connection& c) {
        auto& s = self->state;
        if (c.mode == close_mode::goodbye_and_flush && s.told_session && s.path) {
          // After what is queued: the goodbye, sealed in the session like any packet. Best effort: no
          // acknowledgement, no retry.
          flush_transmits(self);
          const auto g = p2p::goodbye();
          auto r = s.device->encapsulate(g, now_of(self), s.buffer);
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
        s.path.reset();
        self->quit();
      },
  };
}

}  // namespace firebreak::connection
