#include "actors/portal/store_actor.hpp"

#include <set>

#include <spdlog/spdlog.h>

#include "actors/portal/admin_api.hpp"
#include "actors/portal/logger.hpp"
#include "messages/portal_events.hpp"

namespace firebreak::portal {

using namespace messages;

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<nlohmann::json> relays_json(const store_settings& settings, const std::string& peer_id,
                                        std::int64_t now_unix) {
  std::vector<nlohmann::json> out;
  for (const auto& r : settings.relays) {
    relay v;
    v.id = r.id;
    v.addr = r.addr;
    auto creds = mint_turn_credentials(r.secret, peer_id, now_unix, settings.relay_credential_lifetime);
    v.username = creds.username;
    v.password = creds.password;
    v.expires_at = creds.expires_at;
    out.push_back(to_json(v));
  }
  return out;
}

namespace {

using store_self = caf::stateful_actor<store_state>;

std::optional<std::int64_t> to_seconds(const std::optional<std::int64_t>& ms) {
  if (!ms) return std::nullopt;
  return *ms / 1000;
}

caf::error failure(const store_error& e) { return caf::make_error(caf::sec::runtime_error, e.message); }

/// The cache of what flows and refreshes read, loaded on first use after a change.
caf::expected<access_cache*> cached(store_self* self) {
  auto& cache = self->state.cache;
  if (!cache) {
    auto& db = *self->state.db;
    auto policies = db.list_policies();
    auto memberships = db.list_memberships();
    auto gateways = db.list_gateways();
    auto flows = db.list_flows();
    auto resources = db.list_resources();
    auto clients = db.list_clients();
    if (!policies || !memberships || !gateways || !flows || !resources || !clients)
      return caf::make_error(caf::sec::runtime_error, "store read failed");
    cache = access_cache{std::move(*policies), std::move(*memberships), std::move(*gateways), {},
                         std::move(*resources), {}};
    for (const auto& f : *flows) ++cache->gateway_load[f.gateway_id];
    for (auto& c : *clients) cache->clients.emplace(c.id, c);
  }
  return &*cache;
}

/// The access index over the cache, built on first use after a change.
caf::expected<const access_index*> index_of(store_self* self) {
  auto c = cached(self);
  if (!c) return std::move(c.error());
  auto& st = self->state;
  if (!st.index) st.index.emplace((*c)->policies, (*c)->memberships, (*c)->resources, (*c)->clients);
  return &*st.index;
}

/// Drops what was read from the tables; the next reader loads them again.
void forget_cache(store_self* self) {
  self->state.cache.reset();
  self->state.index.reset();
}

/// Access may have moved: each watched client session is pushed what changed for its client.
void tell_clients(store_self* self) {
  auto& st = self->state;
  if (st.watched.empty()) return;
  auto index = index_of(self);
  if (!index) {
    portal_logger()->warn("cannot tell clients about changed access: {}", self->system().render(index.error()));
    return;
  }
  const auto now = unix_ms_now();
  for (auto it = st.watched.begin(); it != st.watched.end();) {
    auto& w = it->second;
    auto now_granted = (*index)->granted(w.client_id, now);
    auto change = (*index)->diff(w.told, now_granted);
    for (auto& description : change.upserted)
      self->send(w.session, push{std::string(client_topic::resource_created_or_updated::event), std::move(description)});
    for (const auto& id : change.deleted_ids)
      self->send(w.session,
                 push{std::string(client_topic::resource_deleted::event), to_json(client_topic::resource_deleted{id}).dump()});
    w.told = std::move(now_granted);
    // A client that may no longer connect hears what it lost, then is disconnected: both from here,
    // so the session sees them in that order.
    if (!(*index)->may_connect(w.client_id)) {
      self->send(w.session, close_session{"this client was disabled or deleted by an administrator"});
      self->demonitor(w.session);
      it = st.watched.erase(it);
    } else {
      ++it;
    }
  }
}

/// A gateway deleted (by itself or with its site) loses its session: it is no longer online, gets no
/// fresh relay credentials and cannot be chosen for a flow.
void close_deleted_gateways(store_self* self) {
  auto& st = self->state;
  if (st.watched_gateways.empty()) return;
  auto c = cached(self);
  if (!c) {
    portal_logger()->warn("cannot check gateway sessions after a change: {}", self->system().render(c.error()));
    return;
  }
  std::set<std::string> existing;
  for (const auto& g : (*c)->gateways) existing.insert(g.id);
  for (auto it = st.watched_gateways.begin(); it != st.watched_gateways.end();) {
    if (existing.count(it->second.gateway_id) == 0) {
      self->send(it->second.session, close_session{"this gateway was deleted by an administrator"});
      self->demonitor(it->second.session);
      it = st.watched_gateways.erase(it);
    } else {
      ++it;
    }
  }
}

caf::result<std::string> join_data(store_self* self, const identity& who) {
  auto& db = *self->state.db;
  const auto now = unix_ms_now();
  nlohmann::json payload;
  if (who.kind == peer_kind::client) {
    auto c = db.get_client(who.id);
    if (!c) return failure(c.error());
    auto index = index_of(self);
    if (!index) return std::move(index.error());
    auto view = (*index)->granted(who.id, now);
    client_topic::init init;
    init.interface = {c->ipv4, c->ipv6};
    payload = to_json(init);
    auto& resources = payload["resources"] = nlohmann::json::array();
    for (const auto& [id, fingerprint] : view) resources.push_back(nlohmann::json::parse((*index)->description(id)));
    // From here on this session hears of every change to what its client may reach.
    if (auto session = caf::actor_cast<caf::actor>(self->current_sender())) {
      self->monitor(session);
      self->state.watched[session.address()] = watched_client{who.id, session, std::move(view)};
    }
  } else {
    auto g = db.get_gateway(who.id);
    if (!g) return failure(g.error());
    auto flows = db.list_flows();
    if (!flows) return failure(flows.error());
    gateway_topic::init init;
    init.interface = {g->ipv4, g->ipv6};
    for (const auto& f : *flows)
      if (f.gateway_id == who.id) init.authorizations.push_back({f.client_id, f.resource_id, to_seconds(f.expires_at_ms)});
    payload = to_json(init);
    if (auto session = caf::actor_cast<caf::actor>(self->current_sender())) {
      self->monitor(session);
      self->state.watched_gateways[session.address()] = watched_gateway{who.id, session};
    }
  }
  payload["relays"] = relays_json(self->state.settings, who.id, now / 1000);
  return payload.dump();
}

caf::result<flow_context> context_for(store_self* self, const std::string& client_id, const std::string& resource_id) {
  auto& db = *self->state.db;
  flow_context ctx;
  if (auto c = db.get_client(client_id)) ctx.client = *c;
  auto r = db.get_resource(resource_id);
  if (!r) {
    if (r.error().code == error_code::not_found) return ctx;
    return failure(r.error());
  }
  ctx.resource = *r;
  auto loaded = cached(self);
  if (!loaded) return std::move(loaded.error());
  access_cache* cache = *loaded;
  for (const auto& p : cache->policies)
    if (p.resource_id == resource_id) ctx.policies.push_back(p);
  for (const auto& m : cache->memberships)
    if (ctx.client && m.user_id == ctx.client->user_id) ctx.memberships.push_back(m);
  for (const auto& g : cache->gateways)
    if (g.site_id == r->site_id) ctx.site_gateways.push_back(g);
  ctx.gateway_load = cache->gateway_load;
  return ctx;
}

}  // namespace

caf::actor spawn_store_actor(caf::actor_system& sys, store opened, std::shared_ptr<wireguard::random_source> rng,
                             store_settings settings) {
  auto shared_db = std::make_shared<store>(std::move(opened));
  // What the actor starts from goes in as spawn arguments, not captures: CAF 0.17.6 binds a reference
  // through a null pointer when spawning a function without arguments (UBSan reports it).
  auto init = [](store_self* self, std::shared_ptr<store> opened_db, std::shared_ptr<wireguard::random_source> random,
                 store_settings initial) -> caf::behavior {
    // The actor's state owns the store (and the randomness it draws from) from here on.
    self->state.db = std::make_unique<store>(std::move(*opened_db));
    self->state.rng = std::move(random);
    self->state.settings = std::move(initial);
    self->set_down_handler([=](const caf::down_msg& down) {
      self->state.watched.erase(down.source);
      self->state.watched_gateways.erase(down.source);
    });
    return {
        [=](set_coordinator_atom, const caf::actor& coordinator) { self->state.coordinator = coordinator; },
        [=](authenticate_atom, peer_kind kind, const std::string& token,
            const std::string& public_key) -> caf::result<identity> {
          auto& db = *self->state.db;
          identity who;
          who.kind = kind;
          // A key the store will not take (malformed, all zero, another peer's) refuses the connection
          // with its reason: the token was good, so the peer may hear what is wrong with its key.
          auto key_refused = [&](const store_error& e) {
            if (e.code != error_code::invalid && e.code != error_code::conflict) return false;
            who.refused = "WireGuard public key refused: " + e.message;
            return true;
          };
          if (kind == peer_kind::client) {
            auto c = db.authenticate_client(token);
            if (!c) return failure(c.error());
            who.id = c->id;
            who.name = c->name;
            if (!public_key.empty() && c->public_key != public_key) {
              auto updated = db.set_client_public_key(c->id, public_key);
              if (!updated && !key_refused(updated.error())) return failure(updated.error());
            }
          } else {
            auto g = db.authenticate_gateway(token);
            if (!g) return failure(g.error());
            if (!public_key.empty() && g->public_key != public_key) {
              auto updated = db.set_gateway_public_key(g->id, public_key);
              if (!updated && !key_refused(updated.error())) return failure(updated.error());
            }
            forget_cache(self);  // the gateway's public key may be new
            who.id = g->id;
            who.site_id = g->site_id;
            who.name = g->name;
          }
          return who;
        },
        [=](join_data_atom, const identity& who) { return join_data(self, who); },
        [=](flow_context_atom, const std::string& client_id, const std::string& resource_id) {
          return context_for(self, client_id, resource_id);
        },
        [=](record_atom, const flow_record& rec) -> caf::result<bool> {
          flow_changes superseded;
          const auto now = unix_ms_now();
          auto f = self->state.db->record_flow(rec.flow, now, &superseded);
          if (!f) return failure(f.error());
          if (auto& cache = self->state.cache) {
            if (f->created_at_ms == now) ++cache->gateway_load[rec.flow.gateway_id];  // a new row, not one reused
            for (const auto& change : superseded) --cache->gateway_load[change.flow.gateway_id];
          }
          // The gateway the client moved away from drops its grant for this resource.
          if (!superseded.empty() && self->state.coordinator)
            self->send(self->state.coordinator, flow_change_list{std::move(superseded)});
          return true;
        },
        [=](reevaluate_atom) -> caf::result<flow_change_list> {
          auto changes = self->state.db->reevaluate_flows(unix_ms_now());
          if (!changes) return failure(changes.error());
          // A policy that just expired moves access whether or not a flow used it.
          forget_cache(self);
          tell_clients(self);
          return flow_change_list{std::move(*changes)};
        },
        [=](flows_atom) -> caf::result<flow_list> {
          auto flows = self->state.db->list_flows();
          if (!flows) return failure(flows.error());
          return flow_list{std::move(*flows)};
        },
        [=](next_expiry_atom) -> caf::result<std::int64_t> {
          auto at = self->state.db->next_policy_expiry(unix_ms_now());
          if (!at) return failure(at.error());
          return at->value_or(0);
        },
        [=](relays_atom, const identity& who) {
          nlohmann::json payload = to_json(relays_presence{});
          payload["connected"] = relays_json(self->state.settings, who.id, unix_ms_now() / 1000);
          return payload.dump();
        },
        [=](admin_auth_atom, const std::string& token) {
          return static_cast<bool>(self->state.db->authenticate_admin(token));
        },
        [=](const admin_request& request) {
          flow_changes changes;
          auto response = handle_admin(*self->state.db, request, unix_ms_now(), changes);
          // Any successful change may have moved access: the coordinator tells gateways and clients.
          const bool changed = request.method != "GET" && response.status < 300;
          if (changed) forget_cache(self);
          // Gateways first (the coordinator sends reject_access), then the clients' resource lists.
          if ((changed || !changes.empty()) && self->state.coordinator)
            self->send(self->state.coordinator, flow_change_list{std::move(changes)});
          if (changed) {
            tell_clients(self);
            close_deleted_gateways(self);
          }
          return response;
        },
    };
  };
  return sys.spawn(init, std::move(shared_db), std::move(rng), std::move(settings));
}

}  // namespace firebreak::portal
