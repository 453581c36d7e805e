// The flow coordinator: policy evaluation on the live path. It turns a client's create_flow into a grant
// on one gateway, and turns every change of access (an admin's delete, a policy's expiry) into what the
// gateways and clients must hear at once.
//
//   flow_request ─> context from the store ─> authorize ─┬─ not_found / forbidden ─> flow_creation_failed
//                                                         └─ choose an online gateway ─┬─ none ─> ... offline
//                                                                                      v
//                        authorize_flow pushed to the gateway, pending[ref] ── 10 s ──> ... offline
//                                                         │ flow_authorized(ref)
//                                                         v
//                                      flow recorded ─> flow_created to the client
//
//   flow_change_list (store, after a change or at a policy's expiry):
//      revoke         ─> reject_access to the gateway (the client's resource_deleted comes from the
//                        store actor's access diff; a disabled or deleted client is also disconnected)
//      expiry_updated ─> access_authorization_expiry_updated to the gateway
//
//   stats_atom ─> {"requested", "granted", "refused": {reason: n}, "pending"} as JSON text (/metrics)
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <caf/all.hpp>

#include "actors/portal/store_actor.hpp"
#include "messages/portal_messages.hpp"
#include "transport/wireguard/crypto.hpp"
#include "transport/wireguard/random.hpp"

namespace firebreak::portal {

struct pending_flow {
  std::string client_id;
  std::string resource_id;
  std::string site_id;
  std::string policy_id;
  std::optional<std::int64_t> expires_at_ms;
  portal::gateway gateway;
  caf::actor gateway_session;  // monitored: if it goes before answering, the client hears offline at once
  caf::actor client_session;
  std::string preshared_key;
  std::string client_ice_user, client_ice_password, gateway_ice_user, gateway_ice_password;
};

struct coordinator_settings {
  /// How long a gateway has to answer authorize_flow before the client hears "offline".
  std::chrono::milliseconds authorize_timeout{10'000};
};

struct coordinator_state {
  caf::actor store;
  caf::actor presence;
  coordinator_settings settings;
  std::shared_ptr<wireguard::random_source> rng;
  wireguard::symmetric_key flow_secret;  // this portal run's key for deriving flow keys; never leaves it
  std::map<std::string, pending_flow> pending;          // by ref
  std::set<std::pair<std::string, std::string>> links;  // (client id, gateway id) with a live flow
  std::uint64_t next_ref = 1;
  std::uint64_t requested = 0, granted = 0;      // flows asked for by clients, and created
  std::map<std::string, std::uint64_t> refused;  // flow_creation_failed, by reason
  std::optional<std::int64_t> expiry_timer_at;  // unix ms of the armed policy-expiry timer
  static inline const char* name = "flow_coordinator";
};

caf::behavior flow_coordinator(caf::stateful_actor<coordinator_state>* self, caf::actor store, caf::actor presence,
                               std::shared_ptr<wireguard::random_source> rng, coordinator_settings settings);

}  // namespace firebreak::portal
