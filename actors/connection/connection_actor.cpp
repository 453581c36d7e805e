#include "actors/connection/connection_actor.hpp"

#include "actors/trace/trace_point.hpp"

namespace firebreak::connection {

using namespace messages;
using conn_self = caf::stateful_actor<connection_data>;

namespace {

void emit(conn_self* self, closed_by by = closed_by::none, std::string reason = {}, close_mode mode = close_mode::silent) {
  auto& st = self->state;
  const bool up = st.state == connection_state::connected || st.state == connection_state::idle;
  connection_event e{st.peer_id, st.state, by, std::move(reason), st.relayed, mode, up ? st.wireguard : caf::actor{}};
  if (st.owner) self->send(st.owner, e);
}

/// Stops both sub-actors; the actor quits when both are down. A goodbye needs the path: WireGuard
/// closes first (sending it), ICE once WireGuard is down.
void wind_down(conn_self* self, close_mode mode, const std::string& reason) {
  auto& st = self->state;
  st.ending = true;
  st.buffered.clear();
  if (mode == close_mode::goodbye_and_flush && st.wireguard) {
    st.ice_close_after_wireguard = reason;
    self->send(st.wireguard, close_connection{reason, mode});
  } else {
    for (const auto& child : {st.wireguard, st.ice})
      if (child) self->send(child, close_connection{reason, mode});
  }
  if (st.children == 0) self->quit();
}

void fail(conn_self* self, const std::string& reason) {
  auto& st = self->state;
  if (st.ending) return;
  st.log->warn("[peer {}] connection failed: {}", st.peer_id, reason);
  st.state = connection_state::failed;
  emit(self, closed_by::liveness, reason);
  wind_down(self, close_mode::silent, reason);
}

void maybe_connected(conn_self* self) {
  auto& st = self->state;
  if (st.ending || st.state != connection_state::connecting || !st.ice_connected || !st.session_up) return;
  st.state = connection_state::connected;
  st.log->info("[peer {}] connected ({}{})", st.peer_id, st.relayed ? "relayed: " : "direct: ", st.path);
  emit(self);
  // Idle is measured from here: the handshake's own bytes do not count as traffic.
  self->request(st.wireguard, std::chrono::seconds(5), counters_atom::value).then([=](const wg_counters& c) {
    self->state.last_counters = c;
  });
  if (!st.buffered.empty()) {
    packet_batch out{st.peer_id, {st.buffered.begin(), st.buffered.end()}};
    st.buffered.clear();
    self->send(st.wireguard, std::move(out));
  }
  self->delayed_send(self, st.settings.idle_after, idle_check_atom::value);
}

}  // namespace

caf::behavior connection_actor(conn_self* self, connection_spec spec, connection_settings settings) {
  auto& st = self->state;
  st.peer_id = spec.peer_id;
  st.controlling = spec.controlling;
  st.owner = settings.owner;
  st.log = settings.log ? settings.log : spdlog::default_logger();
  st.settings = settings;

  // Both sub-actors are monitored (their end is awaited before this actor quits) and linked (a crash
  // in either takes the connection down with it, which the owner sees).
  st.wireguard = self->spawn<caf::linked + caf::monitored>(wireguard_actor, caf::actor_cast<caf::actor>(self), spec,
                                                           settings.wireguard);
  st.ice = settings.make_ice(self, caf::actor_cast<caf::actor>(self), st.wireguard, spec);
  self->monitor(st.ice);
  self->link_to(st.ice);
  st.children = 2;
  self->set_down_handler([=](const caf::down_msg& down) {
    auto& s = self->state;
    if (down.source == s.wireguard.address() || down.source == s.ice.address()) --s.children;
    if (down.source == s.wireguard.address() && s.ice_close_after_wireguard && s.ice) {
      self->send(s.ice, close_connection{*s.ice_close_after_wireguard, close_mode::silent});
      s.ice_close_after_wireguard.reset();
    }
    if (s.children == 0) {
      if (!s.ending) fail(self, "a sub-actor stopped unexpectedly");
      self->quit();
    }
  });
  emit(self);
  self->delayed_send(self, settings.connect_timeout, connect_timeout_atom::value);

  return {
      [=](packet_batch& batch) {
        auto& s = self->state;
        if (s.ending) return;
        if (s.state == connection_state::connected || s.state == connection_state::idle) {
          batch.peer_id = s.peer_id;
          self->send(s.wireguard, std::move(batch));
          return;
        }
        for (auto& p : batch.packets) {
          if (s.buffered.size() >= s.settings.max_buffered_packets) {
            if (s.buffer_drops++ % 1000 == 0)
              s.log->info("[peer {}] still connecting: {} packet(s) dropped beyond the {} held", s.peer_id,
                          s.buffer_drops, s.settings.max_buffered_packets);
            continue;
          }
          s.buffered.push_back(std::move(p));
        }
      },
      [=](const remote_candidates& rc) {
        trace::trace_in(self, "remote_candidates", {{}, {}, {}, self->state.peer_id},
                        std::to_string(rc.candidates.size()) + (rc.invalidated ? " invalidated" : " candidate(s)"));
        if (!self->state.ending) self->send(self->state.ice, rc);
      },
      [=](const local_candidates& lc) {
        trace::trace_in(self, "local_candidates", {{}, {}, {}, self->state.peer_id},
                        std::to_string(lc.candidates.size()) + " candidate(s)");
        if (!self->state.ending && self->state.owner) self->send(self->state.owner, lc);
      },
      [=](const ice_gathered& g) {
        auto& s = self->state;
        trace::trace_in(self, "ice_gathered", {{}, {}, {}, s.peer_id}, std::to_string(g.candidates) + " candidate(s)");
        for (const auto& w : g.warnings) s.log->warn("[peer {}] ICE: {}", s.peer_id, w);
        if (g.candidates == 0)
          fail(self, "no local ICE candidate" + (g.warnings.empty() ? std::string{} : ": " + g.warnings.front()));
      },
      [=](const ice_path& p) {
        auto& s = self->state;
        trace::trace_in(self, "ice_path", {{}, {}, {}, s.peer_id}, p.relayed ? "relayed" : "direct");
        s.relayed = p.relayed;
        s.path = p.local + " -> " + p.remote;
        s.log->info("[peer {}] ICE path {}", s.peer_id, s.path);
      },
      [=](const ice_status& status) {
        auto& s = self->state;
        trace::trace_in(self, "ice_status", {{}, {}, {}, s.peer_id},
                        to_string(status.phase));
        if (status.phase == ice_phase::connected) {
          s.ice_connected = true;
          s.ice_ever_connected = true;
          maybe_connected(self);
        } else if (status.phase == ice_phase::failed) {
          s.ice_connected = false;
          std::string why = s.ice_ever_connected ? "ICE consent lost: the peer stopped answering connectivity checks"
                                                 : "ICE failed: no candidate pair worked";
          if (!status.detail.empty()) why += " (" + status.detail + ")";
          fail(self, why);
        }
      },
      [=](const wg_status& w) {
        auto& s = self->state;
        trace::trace_in(self, "wg_status", {{}, {}, {}, s.peer_id}, w.detail);
        switch (w.condition) {
          case wg_condition::session_up:
            s.session_up = true;
            maybe_connected(self);
            break;
          case wg_condition::unanswered:
            // The side that sends (the client) gives up on a silent peer; the other side waits for
            // ICE consent or the handshake rules, which take longer.
            if (s.controlling) fail(self, "WireGuard: " + w.detail);
            break;
          case wg_condition::gave_up:
          case wg_condition::bad_keys: fail(self, "WireGuard: " + w.detail); break;
          case wg_condition::goodbye:
            if (s.ending) break;
            // The peer closed it: drop everything as on a failure, but say who ended it. No reply.
            s.log->info("[peer {}] the peer said goodbye: connection closed", s.peer_id);
            s.state = connection_state::closed;
            emit(self, closed_by::remote, "remote_goodbye");
            wind_down(self, close_mode::silent, "remote_goodbye");
            break;
        }
      },
      [=](const close_connection& c) {
        auto& s = self->state;
        trace::trace_in(self, "close_connection", {{}, {}, {}, s.peer_id},
                        std::string(to_string(c.mode)) + ": " + c.reason);
        if (s.ending) return;
        const bool up = s.state == connection_state::connected || s.state == connection_state::idle;
        // Without a session there is no one to say goodbye to: a close while connecting is silent.
        const auto mode = up ? c.mode : close_mode::silent;
        s.log->info("[peer {}] closed ({}): {}", s.peer_id, to_string(mode), c.reason);
        s.state = connection_state::closed;
        emit(self, closed_by::local, c.reason, mode);
        wind_down(self, mode, c.reason);
      },
      [=](status_atom) -> caf::result<connection_status> {
        auto& s = self->state;
        connection_status out{s.peer_id, s.state, s.relayed, s.path, 0, 0, 0, 0};
        if (s.ending || !s.wireguard) return out;
        auto rp = self->make_response_promise<connection_status>();
        self->request(s.wireguard, std::chrono::seconds(1), counters_atom::value)
            .then([=](const wg_counters& c) mutable {
              auto o = out;
              o.last_handshake_unix_ms = c.last_handshake_unix_ms;
              o.tx_bytes = c.tx_bytes;
              o.rx_bytes = c.rx_bytes;
              o.dropped = c.dropped;
              rp.deliver(o);
            },
            [=](const caf::error&) mutable { rp.deliver(out); });
        return rp;
      },
      [=](connect_timeout_atom) {
        auto& s = self->state;
        if (s.state == connection_state::connecting) trace::trace_in(self, "connect_timeout", {{}, {}, {}, s.peer_id});
        if (s.state != connection_state::connecting || s.ending) return;
        fail(self, "not connected after " + std::to_string(s.settings.connect_timeout.count()) + " ms" +
                       (s.ice_connected ? " (ICE connected, no WireGuard session)" : " (ICE did not connect)"));
      },
      [=](idle_check_atom) {
        auto& s = self->state;
        if (s.ending) return;
        self->request(s.wireguard, std::chrono::seconds(5), counters_atom::value).then([=](const wg_counters& c) {
          auto& s2 = self->state;
          if (s2.ending) return;
          const bool moved = c.tx_bytes != s2.last_counters.tx_bytes || c.rx_bytes != s2.last_counters.rx_bytes;
          s2.last_counters = c;
          if (!moved && s2.state == connection_state::connected) {
            s2.state = connection_state::idle;
            emit(self);
          } else if (moved && s2.state == connection_state::idle) {
            s2.state = connection_state::connected;
            emit(self);
          }
          self->delayed_send(self, s2.settings.idle_after, idle_check_atom::value);
        });
      },
  };
}

}  // namespace firebreak::connection
