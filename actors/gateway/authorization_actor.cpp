#include "actors/gateway/authorization_actor.hpp"

#include <chrono>
#include <set>
#include <variant>

#include "actors/node/tunnel_common.hpp"

namespace firebreak::gateway {

using namespace messages;
using auth_self = caf::stateful_actor<authorization_state>;

namespace {

std::int64_t wall_now(auth_self* self) {
  if (self->state.settings.wall_ms) return self->state.settings.wall_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<std::int64_t> to_ms(const std::optional<std::int64_t>& unix_s) {
  if (!unix_s) return std::nullopt;
  return *unix_s * 1000;
}

/// The tunnel's copy of one client's grants, and the goodbye's seam when none is left.
void publish(auth_self* self, const std::string& client_id, const std::string& why_if_empty) {
  auto& st = self->state;
  const auto* entry = st.grants.entry(client_id);
  client_grants copy = entry ? *entry : client_grants{client_id, {}, {}, {}};
  self->send(st.settings.tunnel, std::move(copy));
  if (!st.grants.has_grants(client_id, wall_now(self)))
    self->send(st.settings.tunnel, client_unauthorized{client_id, why_if_empty});
}

/// One timer, at the earliest expiry; a newer one supersedes it by generation.
void arm(auth_self* self) {
  auto& st = self->state;
  auto next = st.grants.next_expiry();
  if (!next || (st.timer_at && *st.timer_at == *next)) return;
  st.timer_at = next;
  const auto delay = std::max<std::int64_t>(0, *next - wall_now(self));
  self->delayed_send(self, std::chrono::milliseconds(delay), expiry_atom::value, ++st.timer_generation);
}

}  // namespace

caf::behavior authorization_actor(auth_self* self, authorization_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.log = st.settings.log ? st.settings.log : spdlog::default_logger();

  return {
      [=](const gateway_event& in) {
        node::trace_event(self, in.event);
        auto& s = self->state;
        std::visit(
            [&](const auto& e) {
              using T = std::decay_t<decltype(e)>;
              if constexpr (std::is_same_v<T, gateway_topic::init>) {
                for (const auto& a : e.authorizations) {
                  // The resource's description comes with the client's next authorize_flow; until
                  // then, nothing to enforce against.
                  s.log->info("init: client {} holds resource {} (addresses learnt on its next flow)", a.client_id,
                              a.resource_id);
                }
              } else if constexpr (std::is_same_v<T, gateway_topic::authorize_flow>) {
                auto why = s.grants.grant(e.client, e.resource, to_ms(e.expires_at));
                if (!why.empty()) {
                  s.log->warn("[peer {}] flow for resource {} not granted: {}", e.client.id, e.resource.id, why);
                  // The connection is still accepted: the client learns by ICMP that this resource is
                  // refused here, and may reach others.
                } else {
                  s.log->info("[peer {}] granted resource {} ({}) {}", e.client.id, e.resource.id, e.resource.address,
                              e.expires_at ? "until unix " + std::to_string(*e.expires_at) : "until revoked");
                }
                const auto* entry = s.grants.entry(e.client.id);
                if (entry) self->send(s.settings.tunnel, *entry);
                self->send(s.settings.tunnel, accept_flow{e, why.empty()});
                arm(self);
              } else if constexpr (std::is_same_v<T, gateway_topic::reject_access>) {
                if (s.grants.revoke(e.client_id, e.resource_id)) {
                  s.log->info("[peer {}] access to resource {} rejected by the portal", e.client_id, e.resource_id);
                  publish(self, e.client_id, "revoked");
                }
              } else if constexpr (std::is_same_v<T, gateway_topic::access_authorization_expiry_updated>) {
                if (s.grants.update_expiry(e.client_id, e.resource_id, to_ms(e.expires_at))) {
                  s.log->info("[peer {}] resource {} now {}", e.client_id, e.resource_id,
                              e.expires_at ? "expires at unix " + std::to_string(*e.expires_at) : "never expires");
                  s.timer_at.reset();
                  publish(self, e.client_id, "expired");
                  arm(self);
                }
              }
            },
            in.event);
      },
      [=](expiry_atom, std::uint64_t generation) {
        trace::trace_in(self, "expiry");
        auto& s = self->state;
        if (generation != s.timer_generation) return;
        s.timer_at.reset();
        auto gone = s.grants.expire(wall_now(self));
        std::set<std::string> clients;
        for (const auto& [client, resource] : gone) {
          s.log->info("[peer {}] grant for resource {} expired", client, resource);
          clients.insert(client);
        }
        for (const auto& c : clients) publish(self, c, "expired");
        arm(self);
      },
  };
}

}  // namespace firebreak::gateway
