// Who may reach what right now, computed from the store actor's cached tables, and what a connected
// client must be told when that changes. Plain data in, plain data out: the caller passes `now`.
//
// The store actor keeps, for every joined client session, the resources that client was last told
// about. After any change that can move access (an admin call, a policy expiring) it asks the index
// for each of them again and pushes only the difference — resource_created_or_updated for what is new
// or changed, resource_deleted for what is gone — without a query per client.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/portal/model.hpp"
#include "messages/portal_events.hpp"

namespace firebreak::portal {

/// A resource as clients and gateways see it on the wire.
messages::resource_description describe(const resource& r);

/// What a client may reach: resource id -> a fingerprint of its description (so a changed address or
/// filter shows up in a diff without keeping a copy of every description per client).
using resource_view = std::map<std::string, std::size_t>;

/// What changed between two views, as the client should hear it.
struct access_change {
  std::vector<std::string> upserted;    // descriptions (JSON text) new or different
  std::vector<std::string> deleted_ids;
  bool empty() const { return upserted.empty() && deleted_ids.empty(); }
};

class access_index {
 public:
  access_index(const std::vector<policy>& policies, const std::vector<membership>& memberships,
               const std::vector<resource>& resources, const std::map<std::string, client>& clients);

  /// The resources `client_id` may reach at `now_ms`: none for an unknown or disabled client.
  resource_view granted(const std::string& client_id, std::int64_t now_ms) const;

  /// False for a client that is disabled or no longer exists: its session must end.
  bool may_connect(const std::string& client_id) const;

  /// A resource's description as JSON text; empty for a resource the index does not know.
  const std::string& description(const std::string& resource_id) const;

  /// What a client told `before` must now hear to know `after` (both from granted()).
  access_change diff(const resource_view& before, const resource_view& after) const;

 private:
  struct client_entry {
    std::string user_id;
    bool disabled = false;
  };
  std::unordered_map<std::string, client_entry> clients_;
  std::unordered_map<std::string, std::vector<std::string>> groups_of_user_;
  std::unordered_map<std::string, std::vector<policy>> policies_of_group_;
  struct described {
    std::string json;
    std::size_t fingerprint = 0;
  };
  std::unordered_map<std::string, described> descriptions_;  // by resource id
};

}  // namespace firebreak::portal
