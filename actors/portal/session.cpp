#include "actors/portal/session.hpp"
#include "actors/portal/logger.hpp"

#include <spdlog/spdlog.h>

#include "messages/phoenix_frame.hpp"
#include "messages/portal_events.hpp"

namespace firebreak::portal {

using namespace messages;
using clock = std::chrono::steady_clock;

namespace {

using session = caf::stateful_actor<session_state>;

// WebSocket close codes: 1000 normal, 1007 data the endpoint cannot accept, 1008 policy violation.
constexpr std::uint16_t close_normal = 1000;
constexpr std::uint16_t close_bad_data = 1007;
constexpr std::uint16_t close_policy = 1008;

std::string_view topic_of(peer_kind kind) { return kind == peer_kind::gateway ? "gateway" : "client"; }

void send_frame(session* self, const frame& f) { self->state.port->send(self->state.socket, serialize(f)); }

void reply_error(session* self, const frame& request, const std::string& reason) {
  send_frame(self, messages::reply_error(request, {{"reason", reason}}));
}

/// Ends the session: the socket closes with `reason`, the actor quits, presence sees it go.
void end(session* self, std::uint16_t code, const std::string& reason) {
  // A close reason is at most 123 bytes on the wire.
  self->state.port->close(self->state.socket, code, reason.substr(0, 120));
  self->quit();
}

bool take_flow_token(session* self) {
  auto& st = self->state;
  return st.settings.budget->take(st.who.id, clock::now());
}

void join(session* self, const frame& f) {
  auto& st = self->state;
  if (f.topic != topic_of(st.who.kind)) {
    // Phoenix's own answer for a topic no channel serves; a client token cannot join "gateway".
    reply_error(self, f, "unmatched topic");
    return;
  }
  if (st.join_ref) {
    reply_error(self, f, "already joined");
    return;
  }
  st.join_ref = f.join_ref ? *f.join_ref : std::string{};
  send_frame(self, reply_ok(f));
  self->send(st.peers.presence, session_joined{st.who, self});
  if (st.settings.relay_refresh.count() > 0) self->delayed_send(self, st.settings.relay_refresh, relays_atom::value);
  self->request(st.peers.store, std::chrono::seconds(10), join_data_atom::value, st.who)
      .then([=](const std::string& init_payload) { self->send(self, push{"init", init_payload}); },
            [=](const caf::error& err) {
              portal_logger()->warn("[{} {}] cannot build init: {}", topic_of(self->state.who.kind),
                                          self->state.who.id, self->system().render(err));
              end(self, close_normal, "the portal could not load this peer's state; reconnect");
            });
}

/// Both topics take an event alike: decoded into one side's `Variant` of events and handed to
/// `on_event`; one that does not decode is answered with an error naming why, and goes no further.
template <class Variant, class OnEvent>
void decode_and_visit(session* self, const frame& f, OnEvent&& on_event) {
  auto event = decode_event<Variant>(f.event, f.payload);
  if (!event) {
    reply_error(self, f, event.error->message);
    return;
  }
  std::visit(std::forward<OnEvent>(on_event), *event.value);
}

void client_event(session* self, const frame& f) {
  auto& st = self->state;
  decode_and_visit<client_topic::to_portal>(
      self, f, [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, client_topic::create_flow>) {
          if (!take_flow_token(self)) {
            reply_error(self, f, "rate_limited: too many create_flow requests; retry later");
            return;
          }
          send_frame(self, reply_ok(f));
          self->send(st.peers.coordinator, flow_request{st.who.id, e.resource_id, e.connected_gateway_ids, self});
        } else {
          constexpr bool invalidated = std::is_same_v<T, client_topic::broadcast_invalidated_ice_candidates>;
          send_frame(self, reply_ok(f));
          self->send(st.peers.coordinator,
                     candidates_relay{peer_kind::client, st.who.id, e.gateway_ids, e.candidates, invalidated});
        }
      });
}

void gateway_event(session* self, const frame& f) {
  auto& st = self->state;
  decode_and_visit<gateway_topic::to_portal>(
      self, f, [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        send_frame(self, reply_ok(f));
        if constexpr (std::is_same_v<T, gateway_topic::flow_authorized>) {
          self->send(st.peers.coordinator, messages::flow_authorized{st.who.id, e.ref});
        } else {
          constexpr bool invalidated = std::is_same_v<T, gateway_topic::broadcast_invalidated_ice_candidates>;
          self->send(st.peers.coordinator,
                     candidates_relay{peer_kind::gateway, st.who.id, e.client_ids, e.candidates, invalidated});
        }
      });
}

void on_text(session* self, const std::string& text) {
  auto& st = self->state;
  auto parsed = parse_frame(text, st.settings.max_frame_bytes);
  if (!parsed) {
    // Without a well-formed frame there is no ref to reply to: close, saying why.
    end(self, close_bad_data, parsed.error->message);
    return;
  }
  const frame& f = *parsed;
  if (is_heartbeat(f)) {
    st.last_heartbeat = clock::now();
    send_frame(self, reply_ok(f));
    return;
  }
  if (f.event == phx_join) {
    join(self, f);
    return;
  }
  if (f.topic == phoenix_topic || f.topic != topic_of(st.who.kind)) {
    reply_error(self, f, "unmatched topic");
    return;
  }
  if (!st.join_ref) {
    reply_error(self, f, "join the channel first");
    return;
  }
  if (f.event == phx_leave) {
    send_frame(self, reply_ok(f));
    end(self, close_normal, "left");
    return;
  }
  if (st.who.kind == peer_kind::client)
    client_event(self, f);
  else
    gateway_event(self, f);
}

}  // namespace

caf::behavior session_actor(session* self, std::uint64_t socket, identity who, std::shared_ptr<socket_port> port,
                            session_peers peers, session_settings settings) {
  auto& st = self->state;
  st.socket = socket;
  st.who = std::move(who);
  st.port = std::move(port);
  st.peers = std::move(peers);
  st.settings = settings;
  st.last_heartbeat = clock::now();
  if (!st.settings.budget)
    st.settings.budget = std::make_shared<flow_budget>(settings.create_flow_per_second, settings.create_flow_burst);
  self->delayed_send(self, settings.heartbeat_timeout / 4, tick_atom::value);
  return {
      [=](const socket_text& in) { on_text(self, in.text); },
      [=](const push& out) {
        auto& s = self->state;
        if (!s.join_ref) return;  // nothing is pushed before the join
        auto payload = nlohmann::json::parse(out.payload, nullptr, false);
        send_frame(self, push_frame(std::string(topic_of(s.who.kind)), out.event, payload, s.join_ref));
      },
      [=](relays_atom) {
        // TURN credentials run out: before they do, the peer gets fresh ones for every relay.
        auto& s = self->state;
        self->request(s.peers.store, std::chrono::seconds(10), relays_atom::value, s.who)
            .then([=](const std::string& payload) { self->send(self, push{"relays_presence", payload}); });
        self->delayed_send(self, s.settings.relay_refresh, relays_atom::value);
      },
      [=](const close_session& c) { end(self, close_policy, c.reason); },
      [=](const socket_closed&) { self->quit(); },
      [=](tick_atom) {
        auto& s = self->state;
        if (clock::now() - s.last_heartbeat > s.settings.heartbeat_timeout) {
          portal_logger()->info("[{} {}] no heartbeat for {} ms: closing", topic_of(s.who.kind), s.who.id,
                                      s.settings.heartbeat_timeout.count());
          end(self, close_policy, "heartbeat timeout");
          return;
        }
        self->delayed_send(self, s.settings.heartbeat_timeout / 4, tick_atom::value);
      },
  };
}

}  // namespace firebreak::portal
