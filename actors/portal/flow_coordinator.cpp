#include "actors/portal/flow_coordinator.hpp"
#include "actors/portal/logger.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/portal/access_index.hpp"
#include "actors/portal/policy.hpp"
#include "messages/portal_events.hpp"
#include "transport/wireguard/crypto.hpp"

namespace firebreak::portal {

using namespace messages;
using client_topic::flow_created;
using client_topic::flow_creation_failed;
using client_topic::flow_failure_reason;
using gateway_topic::access_authorization_expiry_updated;
using gateway_topic::authorize_flow;
using gateway_topic::reject_access;
using coordinator = caf::stateful_actor<coordinator_state>;

namespace {

constexpr auto store_timeout = std::chrono::seconds(10);

std::shared_ptr<spdlog::logger> log() { return portal_logger(); }

/// ICE usernames and passwords from an alphabet every ICE stack accepts: 8 + 24 characters of one
/// 32-byte key.
std::pair<std::string, std::string> ice_text(const wireguard::hash32& key) {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string all(key.size(), '\0');
  for (std::size_t i = 0; i < key.size(); ++i) all[i] = alphabet[key[i] % (sizeof alphabet - 1)];
  return {all.substr(0, 8), all.substr(8)};
}

/// A flow's keys are derived from the pair of sessions it joins: every flow between the same client
/// session and gateway session gets the same preshared key and ICE credentials, so both sides can
/// tell a flow that joins their existing connection (same credentials: kept) from one after a
/// restart of either side (new credentials: the connection is replaced).
void derive_flow_keys(const wireguard::symmetric_key& secret, const std::string& client_id,
                      const caf::actor& client_session, const std::string& gateway_id,
                      const caf::actor& gateway_session, pending_flow& p) {
  const std::string pair = client_id + '\n' + std::to_string(client_session ? client_session.id() : 0) + '\n' +
                           gateway_id + '\n' + std::to_string(gateway_session ? gateway_session.id() : 0);
  auto derive = [&](std::string_view label) {
    const std::string input = std::string(label) + '\n' + pair;
    return wireguard::hmac({secret.bytes.data(), secret.bytes.size()},
                           {reinterpret_cast<const std::uint8_t*>(input.data()), input.size()});
  };
  p.preshared_key = wireguard::to_base64(derive("preshared key"));
  std::tie(p.client_ice_user, p.client_ice_password) = ice_text(derive("client ice"));
  std::tie(p.gateway_ice_user, p.gateway_ice_password) = ice_text(derive("gateway ice"));
}

std::optional<std::int64_t> to_seconds(const std::optional<std::int64_t>& ms) {
  if (!ms) return std::nullopt;
  return *ms / 1000;
}

void push_to(coordinator* self, const caf::actor& session, std::string_view event, const nlohmann::json& payload) {
  if (session) self->send(session, push{std::string(event), payload.dump()});
}

void fail(coordinator* self, const flow_request& req, flow_failure_reason reason) {
  flow_creation_failed failed{req.resource_id, reason};
  ++self->state.refused[std::string(messages::to_string(reason))];
  log()->info("flow for client {} to resource {} refused: {}", req.client_id, req.resource_id,
              to_json(failed)["reason"].get<std::string>());
  push_to(self, req.client_session, flow_creation_failed::event, to_json(failed));
}

/// Picks among the online gateways of the site: one the client is already connected to, else the least loaded.
std::optional<gateway> choose_gateway(const flow_context& ctx, const std::vector<std::string>& online,
                                      const std::vector<std::string>& preferred) {
  std::vector<const gateway*> candidates;
  for (const auto& g : ctx.site_gateways)
    if (std::find(online.begin(), online.end(), g.id) != online.end()) candidates.push_back(&g);
  if (candidates.empty()) return std::nullopt;
  for (const auto* g : candidates)
    if (std::find(preferred.begin(), preferred.end(), g->id) != preferred.end()) return *g;
  auto load = [&](const gateway* g) {
    auto it = ctx.gateway_load.find(g->id);
    return it == ctx.gateway_load.end() ? 0 : it->second;
  };
  return **std::min_element(candidates.begin(), candidates.end(),
                            [&](const gateway* a, const gateway* b) { return load(a) < load(b); });
}

void authorize_on(coordinator* self, const flow_request& req, std::shared_ptr<flow_context> ctx,
                  const decision& d, const gateway& chosen, const caf::actor& gateway_session) {
  auto& st = self->state;
  const std::string ref = std::to_string(st.next_ref++);
  pending_flow p;
  p.client_id = req.client_id;
  p.resource_id = req.resource_id;
  p.site_id = ctx->resource->site_id;
  p.policy_id = d.policy_id;
  p.expires_at_ms = d.expires_at_ms;
  p.gateway = chosen;
  p.gateway_session = gateway_session;
  p.client_session = req.client_session;
  derive_flow_keys(st.flow_secret, req.client_id, req.client_session, chosen.id, gateway_session, p);

  authorize_flow msg;
  msg.ref = ref;
  msg.client = {ctx->client->id, ctx->client->public_key, p.preshared_key, ctx->client->ipv4, ctx->client->ipv6};
  msg.client_ice_credentials = {p.client_ice_user, p.client_ice_password};
  msg.gateway_ice_credentials = {p.gateway_ice_user, p.gateway_ice_password};
  msg.resource = describe(*ctx->resource);
  msg.expires_at = to_seconds(d.expires_at_ms);
  st.pending.emplace(ref, std::move(p));
  // Presence may not have seen this session end yet; watching it closes that gap (a session already
  // gone is reported at once).
  self->monitor(gateway_session);
  push_to(self, gateway_session, authorize_flow::event, to_json(msg));
  self->delayed_send(self, st.settings.authorize_timeout, timeout_atom::value, ref);
  log()->info("authorize_flow {} sent to gateway {} for client {} and resource {}", ref, chosen.id, req.client_id,
              req.resource_id);
}

void on_flow_request(coordinator* self, const flow_request& req) {
  auto& st = self->state;
  ++st.requested;
  self->request(st.store, store_timeout, flow_context_atom::value, req.client_id, req.resource_id)
      .then(
          [=](const flow_context& raw) {
            auto ctx = std::make_shared<flow_context>(raw);
            if (!ctx->resource) return fail(self, req, flow_failure_reason::not_found);
            if (!ctx->client) return fail(self, req, flow_failure_reason::forbidden);
            auto d = authorize(*ctx->client, *ctx->resource, ctx->policies, ctx->memberships, unix_ms_now());
            if (!d.allowed) return fail(self, req, flow_failure_reason::forbidden);
            self->request(self->state.presence, store_timeout, online_atom::value, ctx->resource->site_id)
                .then([=](std::vector<std::string> online) {
                  auto chosen = choose_gateway(*ctx, online, req.connected_gateway_ids);
                  if (!chosen) return fail(self, req, flow_failure_reason::offline);
                  self->request(self->state.presence, store_timeout, session_atom::value, peer_kind::gateway,
                                chosen->id)
                      .then([=](caf::actor gateway_session) {
                        if (!gateway_session) return fail(self, req, flow_failure_reason::offline);
                        authorize_on(self, req, ctx, d, *chosen, gateway_session);
                      });
                });
          },
          [=](const caf::error& err) {
            log()->warn("cannot read the store for a flow request: {}", self->system().render(err));
            fail(self, req, flow_failure_reason::offline);
          });
}

void on_flow_authorized(coordinator* self, const messages::flow_authorized& ok) {
  auto& st = self->state;
  auto it = st.pending.find(ok.ref);
  if (it == st.pending.end() || it->second.gateway.id != ok.gateway_id) {
    log()->info("flow_authorized {} from gateway {} matches no pending flow (late or foreign); ignored", ok.ref,
                ok.gateway_id);
    return;
  }
  auto p = std::make_shared<pending_flow>(std::move(it->second));
  st.pending.erase(it);
  flow_record rec{new_flow{p->client_id, p->gateway.id, p->resource_id, p->policy_id, p->expires_at_ms}};
  self->request(st.store, store_timeout, record_atom::value, rec)
      .then(
          [=](bool) {
            self->state.links.emplace(p->client_id, p->gateway.id);
            flow_created created;
            created.resource_id = p->resource_id;
            created.gateway_id = p->gateway.id;
            created.site_id = p->site_id;
            created.gateway_public_key = p->gateway.public_key;
            created.gateway_ipv4 = p->gateway.ipv4;
            created.gateway_ipv6 = p->gateway.ipv6;
            created.preshared_key = p->preshared_key;
            created.client_ice_credentials = {p->client_ice_user, p->client_ice_password};
            created.gateway_ice_credentials = {p->gateway_ice_user, p->gateway_ice_password};
            created.expires_at = to_seconds(p->expires_at_ms);
            push_to(self, p->client_session, flow_created::event, to_json(created));
            ++self->state.granted;
            log()->info("flow granted: client {} -> resource {} via gateway {}", p->client_id, p->resource_id,
                        p->gateway.id);
            self->send(self, next_expiry_atom::value);
          },
          [=](const caf::error& err) {
            log()->warn("cannot record a granted flow: {}", self->system().render(err));
            flow_request req{p->client_id, p->resource_id, {}, p->client_session};
            fail(self, req, flow_failure_reason::offline);
          });
}

void rebuild_links(coordinator* self) {
  self->request(self->state.store, store_timeout, flows_atom::value).then([=](const flow_list& flows) {
    self->state.links.clear();
    for (const auto& f : flows.flows) self->state.links.emplace(f.client_id, f.gateway_id);
  });
}

void announce(coordinator* self, const flow_change_list& list) {
  for (const auto& change : list.changes) {
    const auto& f = change.flow;
    self->request(self->state.presence, store_timeout, session_atom::value, peer_kind::gateway, f.gateway_id)
        .then([=](const caf::actor& gateway_session) {
          if (change.kind == flow_change_kind::revoke) {
            log()->info("revoking flow {} (client {}, resource {}, gateway {}): {}", f.id, f.client_id, f.resource_id,
                        f.gateway_id, to_string(change.reason));
            push_to(self, gateway_session, reject_access::event, to_json(reject_access{f.client_id, f.resource_id}));
          } else {
            push_to(self, gateway_session, access_authorization_expiry_updated::event,
                    to_json(access_authorization_expiry_updated{f.client_id, f.resource_id,
                                                                to_seconds(change.new_expires_at_ms)}));
          }
        });
    // Clients hear resource_deleted (and, when disabled or deleted, the end of their session) from the
    // store actor's access diff, which also closes the session of a deleted gateway; a flow alone going,
    // as with DELETE /v1/flows/{id}, takes no resource away.
  }
  if (!list.changes.empty()) rebuild_links(self);
}

/// Arms the timer for the earliest policy expiry, so a grant ends on time without anyone asking.
void arm_expiry_timer(coordinator* self) {
  self->request(self->state.store, store_timeout, next_expiry_atom::value).then([=](std::int64_t at_ms) {
    auto& st = self->state;
    if (at_ms <= 0 || (st.expiry_timer_at && *st.expiry_timer_at <= at_ms)) return;
    st.expiry_timer_at = at_ms;
    auto delay = std::chrono::milliseconds(std::max<std::int64_t>(0, at_ms - unix_ms_now()));
    self->delayed_send(self, delay, tick_atom::value, at_ms);
  });
}

}  // namespace

caf::behavior flow_coordinator(coordinator* self, caf::actor store, caf::actor presence,
                               std::shared_ptr<wireguard::random_source> rng, coordinator_settings settings) {
  auto& st = self->state;
  st.store = std::move(store);
  st.presence = std::move(presence);
  st.rng = std::move(rng);
  st.rng->fill(st.flow_secret.bytes);
  st.settings = settings;
  self->set_down_handler([=](caf::down_msg& down) {
    auto& pending = self->state.pending;
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->second.gateway_session.address() == down.source) {
        log()->info("gateway {} went away before answering authorize_flow {}", it->second.gateway.id, it->first);
        flow_request req{it->second.client_id, it->second.resource_id, {}, it->second.client_session};
        it = pending.erase(it);
        fail(self, req, flow_failure_reason::offline);
      } else {
        ++it;
      }
    }
  });
  // On start: apply whatever expired while the portal was down, then learn the live flows.
  self->request(st.store, store_timeout, reevaluate_atom::value).then([=](const flow_change_list& list) {
    announce(self, list);
    rebuild_links(self);
    arm_expiry_timer(self);
  });
  return {
      [=](const flow_request& req) { on_flow_request(self, req); },
      [=](stats_atom) {
        const auto& s = self->state;
        return nlohmann::json{{"requested", s.requested}, {"granted", s.granted}, {"refused", s.refused},
                              {"pending", s.pending.size()}}
            .dump();
      },
      [=](const messages::flow_authorized& ok) { on_flow_authorized(self, ok); },
      [=](timeout_atom, const std::string& ref) {
        auto it = self->state.pending.find(ref);
        if (it == self->state.pending.end()) return;
        log()->info("gateway {} did not answer authorize_flow {} in time", it->second.gateway.id, ref);
        flow_request req{it->second.client_id, it->second.resource_id, {}, it->second.client_session};
        self->state.pending.erase(it);
        fail(self, req, flow_failure_reason::offline);
      },
      [=](const flow_change_list& list) {
        announce(self, list);
        arm_expiry_timer(self);
      },
      [=](next_expiry_atom) { arm_expiry_timer(self); },
      [=](tick_atom, std::int64_t at_ms) {
        if (self->state.expiry_timer_at == at_ms) self->state.expiry_timer_at.reset();
        self->request(self->state.store, store_timeout, reevaluate_atom::value).then([=](const flow_change_list& list) {
          announce(self, list);
          arm_expiry_timer(self);
        });
      },
      [=](const candidates_relay& relay) {
        // Candidates go only to the other side of a flow this peer has (or is being granted).
        candidates_relay allowed = relay;
        allowed.to_ids.clear();
        for (const auto& to : relay.to_ids) {
          const auto link = relay.from_kind == peer_kind::client ? std::make_pair(relay.from_id, to)
                                                                 : std::make_pair(to, relay.from_id);
          bool pending = std::any_of(self->state.pending.begin(), self->state.pending.end(), [&](const auto& e) {
            return e.second.client_id == link.first && e.second.gateway.id == link.second;
          });
          if (pending || self->state.links.count(link)) allowed.to_ids.push_back(to);
        }
        if (!allowed.to_ids.empty()) self->send(self->state.presence, allowed);
      },
  };
}

}  // namespace firebreak::portal
