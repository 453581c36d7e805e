// The admin API: REST over the store. Pure mapping of (method, path, JSON body) to store calls and back;
// the HTTPS server authenticates the caller first and the store actor runs this in its mailbox.
//
//   GET/POST   /v1/sites                      DELETE /v1/sites/{id}
//   GET/POST   /v1/gateways  (POST shows the token once)      DELETE /v1/gateways/{id}
//   GET/POST   /v1/users                      DELETE /v1/users/{id}
//   GET/POST   /v1/groups                     DELETE /v1/groups/{id}
//   POST       /v1/groups/{id}/members        DELETE /v1/groups/{id}/members/{user_id}
//   GET/POST   /v1/clients   (POST shows the token once)      DELETE /v1/clients/{id}
//   PATCH      /v1/clients/{id}  {"disabled": true|false}
//   GET/POST   /v1/resources                  DELETE /v1/resources/{id}
//   GET/POST   /v1/policies                   DELETE /v1/policies/{id}
//   GET        /v1/flows                      DELETE /v1/flows/{id}   (revoke one flow)
//   and GET /v1/<collection>/{id} for one item, GET /v1/groups/{id}/members for a group's user ids.
//
// Bodies are JSON objects; unknown fields are refused (a typo must not pass silently). Answers:
//   201  a create: the item; a gateway or client carries its "token", shown this once
//   200  a list (a JSON array), a get, a PATCH (the client after the change), or a delete:
//        {"id", "deleted": true, "flows_revoked": n, "flows_updated": n} (a membership: group_id, user_id)
//   400  bad input: malformed JSON, a missing or mistyped field (named), a value the store refuses
//   404  an unknown id or route;  405  a known path with another method;  409  a conflict;  500  I/O
// Errors are {"error": "<what to fix>"} and never carry a token (anything token-shaped is redacted).
// Times are unix seconds: policy "expires_at" in (optional; converted to ms) and out (null: never).
// Resource filters: [{"protocol": "tcp"|"udp"|"icmp", "port_range_start": 80, "port_range_end": 443}];
// the end defaults to the start; icmp has no ports.
// DELETE /v1/flows/{id} removes the flow and reports it as a revoke (access_removed); its policy stays,
// so the client may ask again.
#pragma once

#include <cstdint>

#include "actors/portal/store.hpp"
#include "actors/portal/store_actor.hpp"

namespace firebreak::portal {

/// Runs one admin call. Changes to live flows (revokes, expiry updates) are appended to `changes` for the
/// coordinator to announce. (Connected clients hear of resources they gained or lost from the store
/// actor, which compares their access before and after every successful change.) A new policy or membership also reevaluates live flows, so expiry updates it causes land in `changes`.
/// Never throws.
admin_response handle_admin(store& db, const admin_request& request, std::int64_t now_ms, flow_changes& changes);

}  // namespace firebreak::portal
