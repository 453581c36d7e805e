#include "actors/connection/ice_actor.hpp"

#include <charconv>

#include "actors/trace/trace_point.hpp"

namespace firebreak::connection {

using namespace messages;
using ice_self = caf::stateful_actor<ice_actor_state>;

namespace {

/// The selected pair as the WireGuard sub-actor sees it: somewhere to send datagrams.
class agent_path final : public datagram_path {
 public:
  explicit agent_path(std::shared_ptr<ice::agent> agent) : agent_(std::move(agent)) {}
  bool send(std::span<const std::uint8_t> datagram) override { return agent_->send(datagram); }

 private:
  std::shared_ptr<ice::agent> agent_;
};

/// "host:port" or "[v6]:port"; false when it is neither.
bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return false;
  host = text.substr(0, colon);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const auto digits = std::string_view(text).substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  return ec == std::errc{} && end == digits.data() + digits.size() && port != 0;
}

ice_phase phase_of(ice::agent_state s) {
  switch (s) {
    case ice::agent_state::gathering: return ice_phase::gathering;
    case ice::agent_state::connecting: return ice_phase::connecting;
    case ice::agent_state::connected: return ice_phase::connected;
    case ice::agent_state::failed: return ice_phase::failed;
  }
  return ice_phase::failed;
}

/// Sends from the loop thread as the ICE actor (so the receiver, and the actor trace, know who spoke),
/// without the callbacks keeping either actor alive.
template <class Message>
void tell(const caf::actor_addr& from, const caf::actor_addr& to, Message&& m) {
  auto dest = caf::actor_cast<caf::actor>(to);
  if (!dest) return;
  if (auto src = caf::actor_cast<caf::actor>(from))
    caf::send_as(src, dest, std::forward<Message>(m));
  else
    caf::anon_send(dest, std::forward<Message>(m));
}

}  // namespace

caf::behavior ice_actor(ice_self* self, caf::actor connection, caf::actor wireguard, connection_spec spec,
                        ice_settings settings) {
  auto& st = self->state;
  st.peer_id = spec.peer_id;
  st.fast = spec.fast;
  st.log = settings.log ? settings.log : spdlog::default_logger();

  ice::agent_config cfg;
  cfg.controlling = spec.controlling;
  cfg.local = {spec.local_ice_ufrag, spec.local_ice_password};
  cfg.remote = {spec.remote_ice_ufrag, spec.remote_ice_password};
  cfg.relay_only = spec.relay_only;
  cfg.local_addresses = spec.local_addresses;
  for (const auto& s : spec.stun_servers) {
    ice::stun_server server;
    if (split_host_port(s, server.host, server.port))
      cfg.stun = server;  // libnice takes one STUN server
    else
      st.log->warn("[peer {}] ignoring STUN server '{}': not host:port", st.peer_id, s);
  }
  for (const auto& r : spec.relays) cfg.turn.push_back({r.host, r.port, r.username, r.password});

  const auto conn = connection.address();
  const auto wg = wireguard.address();
  const auto ice_addr = self->address();
  const auto peer_id = spec.peer_id;
  auto path_holder = std::make_shared<std::weak_ptr<ice::agent>>();
  ice::agent_events events;
  events.local_candidate = [ice_addr, conn, peer_id](std::string c) {
    tell(ice_addr, conn, local_candidates{peer_id, {std::move(c)}});
  };
  events.gathering_done = [ice_addr, conn](const ice::gathering_result& r) {
    tell(ice_addr, conn, ice_gathered{r.candidates, r.relayed, r.warnings});
  };
  events.state = [ice_addr, conn](ice::agent_state s) { tell(ice_addr, conn, ice_status{phase_of(s), {}}); };
  auto fast = spec.fast;
  events.selected = [ice_addr, conn, wg, path_holder, fast](const ice::selected_pair& p) {
    tell(ice_addr, conn, ice_path{p.relayed(), std::string(to_string(p.local)) + " " + p.local_address,
                        std::string(to_string(p.remote)) + " " + p.remote_address});
    // Bulk data leaves on the selected pair's socket directly; through libnice when this side relays.
    if (fast) fast->set_direct(p.socket_fd, reinterpret_cast<const sockaddr*>(&p.remote_sockaddr), p.remote_sockaddr_len);
    if (auto agent = path_holder->lock()) tell(ice_addr, wg, path_ready{std::make_shared<agent_path>(agent)});
  };
  // Bulk data is not traced: the batches go anonymously, without taking a reference to this actor each.
  // Transport data the fast path can open goes straight to the node's data plane; the rest to the actor.
  events.datagrams = [wg, fast](std::vector<ice::datagram>&& batch) {
    if (fast) fast->receive(batch, {std::chrono::steady_clock::now().time_since_epoch(),
                                    std::chrono::system_clock::now().time_since_epoch()});
    if (!batch.empty()) tell({}, wg, datagram_batch{std::move(batch)});
  };

  std::string error;
  st.agent = ice::agent::start(*settings.loop, std::move(cfg), std::move(events), error);
  if (!st.agent) {
    st.log->warn("[peer {}] ICE cannot start: {}", st.peer_id, error);
    self->send(connection, ice_status{ice_phase::failed, "ICE cannot start: " + error});
  } else {
    *path_holder = st.agent;
  }

  return {
      [=](const remote_candidates& rc) {
        auto& s = self->state;
        trace::trace_in(self, "remote_candidates", {{}, {}, {}, s.peer_id}, std::to_string(rc.candidates.size()));
        if (!s.agent) return;
        for (const auto& c : rc.candidates) {
          std::string why;
          const bool ok = rc.invalidated ? s.agent->remove_remote_candidate(c, why) : s.agent->add_remote_candidate(c, why);
          if (!ok) {
            ++s.bad_candidates;
            s.log->warn("[peer {}] dropped a remote candidate ({}): {} bad so far", s.peer_id, why, s.bad_candidates);
          }
        }
      },
      [=](const close_connection& c) {
        auto& s = self->state;
        trace::trace_in(self, "close_connection", {{}, {}, {}, s.peer_id}, c.reason);
        if (s.closing) return;
        s.closing = true;
        // Before libnice closes its sockets: nothing may be sent on a copy of one from now on.
        if (s.fast) s.fast->clear_direct();
        if (!s.agent) {
          self->quit();
          return;
        }
        // Quit once libnice has released the TURN allocations; the agent then holds nothing.
        auto me = caf::actor_cast<caf::actor>(self);
        s.log->debug("[peer {}] closing the ICE agent", s.peer_id);
        s.agent->close([me] { caf::anon_send(me, ice_closed_atom::value); });
      },
      [=](ice_closed_atom) {
        self->state.log->debug("[peer {}] ICE agent closed", self->state.peer_id);
        self->state.agent.reset();
        self->quit();
      },
  };
}

}  // namespace firebreak::connection
