// The store actor: the one owner of the portal's SQLite file. Every read and write goes through its
// mailbox, so the database sees one caller at a time and a slow query delays only store requests.
//
//   (authenticate_atom, peer_kind, token, public_key) -> identity       (sets the peer's WireGuard key)
//   (join_data_atom, identity)                        -> std::string     (the init payload, JSON)
//   (flow_context_atom, client_id, resource_id)       -> flow_context
//   (record_atom, flow_record)                        -> bool
//   (reevaluate_atom)                                 -> flow_change_list (applied: revoked flows gone)
//   (flows_atom)                                      -> flow_list
//   (next_expiry_atom)                                -> std::int64_t    (earliest policy expiry, unix ms; 0: none)
//   (admin_auth_atom, token)                          -> bool
//   (relays_atom, identity)                           -> std::string     (relays_presence payload, fresh credentials)
//   admin_request                                     -> admin_response; changes that touch live flows
//                                                        are sent on to the coordinator as flow_change_list
//
// The store actor also keeps every joined client session up to date with the resources it may reach:
// the session that asked for a client's join data is watched (monitored), and after any change that can
// move access (a successful admin change, a reevaluation at a policy's expiry) each watched session is
// pushed only the difference (see access_index.hpp). A gateway session is watched the same way: when
// its gateway is deleted (by itself or with its site) the session is closed, so a gateway that no longer
// exists is neither online nor handed relay credentials.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/portal/access_index.hpp"
#include "actors/portal/relay_credentials.hpp"
#include "actors/portal/store.hpp"
#include "messages/portal_messages.hpp"

namespace firebreak::portal {

using flow_context_atom = caf::atom_constant<caf::atom("flowctx")>;
using record_atom = caf::atom_constant<caf::atom("record")>;
using reevaluate_atom = caf::atom_constant<caf::atom("reeval")>;
using next_expiry_atom = caf::atom_constant<caf::atom("nextexp")>;
using admin_auth_atom = caf::atom_constant<caf::atom("adminauth")>;

/// What the coordinator needs to decide one create_flow, read in one go.
struct flow_context {
  std::optional<portal::client> client;
  std::optional<portal::resource> resource;
  std::vector<portal::policy> policies;        // those for the resource
  std::vector<portal::membership> memberships;  // those of the client's user
  std::vector<portal::gateway> site_gateways;   // the resource's site
  std::map<std::string, int> gateway_load;      // live flows per gateway of the site
};

/// A granted flow to record, with what the coordinator needs to answer the client.
struct flow_record {
  new_flow flow;
};

struct flow_change_list {
  std::vector<flow_change> changes;
};

struct flow_list {
  std::vector<portal::flow> flows;
};

/// An admin API call, as the HTTPS server received it (authenticated already).
struct admin_request {
  std::string method;
  std::string target;  // path and query
  std::string body;    // JSON text
};

struct admin_response {
  int status = 200;
  std::string body;  // JSON text
};

struct store_settings {
  std::vector<relay_server> relays;
  std::chrono::seconds relay_credential_lifetime{std::chrono::hours(24)};
};

/// What every create_flow reads, kept between admin changes so a flow costs no table scan.
struct access_cache {
  std::vector<portal::policy> policies;
  std::vector<portal::membership> memberships;
  std::vector<portal::gateway> gateways;
  std::map<std::string, int> gateway_load;
  std::vector<portal::resource> resources;
  std::map<std::string, portal::client> clients;  // by id
};

/// A joined client session and the resources its client was last told about.
struct watched_client {
  std::string client_id;
  caf::actor session;
  resource_view told;
};

/// A joined gateway session.
struct watched_gateway {
  std::string gateway_id;
  caf::actor session;
};

struct store_state {
  std::unique_ptr<store> db;
  std::optional<access_cache> cache;  // dropped on every change that could alter it
  std::optional<access_index> index;  // built from the cache, dropped with it
  std::map<caf::actor_addr, watched_client> watched;
  std::map<caf::actor_addr, watched_gateway> watched_gateways;
  std::shared_ptr<wireguard::random_source> rng;  // the store draws ids and tokens from it
  store_settings settings;
  caf::actor coordinator;
  static inline const char* name = "store";
};

/// Wall-clock unix milliseconds: the store's notion of `now` for expiry.
std::int64_t unix_ms_now();

/// Spawns the store actor over an opened store. The coordinator is set later (it is spawned after).
caf::actor spawn_store_actor(caf::actor_system& sys, store db, std::shared_ptr<wireguard::random_source> rng,
                             store_settings settings);

using set_coordinator_atom = caf::atom_constant<caf::atom("setcoord")>;

/// The relays block of an init payload for `peer_id`, with fresh credentials.
std::vector<nlohmann::json> relays_json(const store_settings& settings, const std::string& peer_id, std::int64_t now_unix);

}  // namespace firebreak::portal

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::portal::flow_context)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::portal::flow_record)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::portal::flow_change_list)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::portal::flow_list)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::portal::admin_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::portal::admin_response)
