// The portal's state in one SQLite file: sites, gateways, users, groups, clients, resources, policies
// and the flows it granted. Created and migrated on open; a restart loses nothing.
//
// * Every change is one transaction: a failure half-way leaves the file as it was.
// * Errors are values (`result<T>`), with a message a person can act on. Messages never contain a token.
// * Tokens are shown once, on creation (`token`); the file keeps only their SHA-256.
// * Time (`now`, unix ms) and randomness (ids, tokens) come in from outside; the store reads no clock.
// * Changes that can take access away (deletes, disabling a client, removing a membership) evaluate the
//   live flows in the same transaction and return what the portal must tell gateways: revoked flows are
//   gone from the store, updated ones carry their new expiry. `reevaluate_flows(now)` does the same
//   without a change, for the policy-expiry timer, after `create_policy`, and once on start.
//
// Not thread-safe: one owner (the portal's store actor) calls it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "actors/portal/model.hpp"
#include "actors/portal/policy.hpp"
#include "actors/portal/tokens.hpp"
#include "transport/wireguard/random.hpp"

namespace firebreak::portal {

// ---- errors as values -------------------------------------------------------------------------------

enum class error_code {
  not_found,     // the id names nothing
  conflict,      // it exists already (a name, a membership, a public key in use)
  invalid,       // the input is wrong: a bad address, an unknown site, a reversed port range
  unauthorized,  // a token that is malformed, unknown, or belongs to a disabled client
  io,            // the database failed, or is from a newer firebreak
};

std::string_view to_string(error_code code);

struct store_error {
  error_code code = error_code::io;
  std::string message;
};

/// Thrown by `result::value()` when there is no value: reading one without checking is a bug.
class bad_result_access : public std::logic_error {
 public:
  explicit bad_result_access(const store_error& e) : std::logic_error("no value: " + e.message) {}
};

/// A value or a `store_error`. (C++20 has no std::expected.)
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  result(store_error error) : state_(std::in_place_index<1>, std::move(error)) {}

  bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { check(); return std::get<0>(state_); }
  const T& value() const& { check(); return std::get<0>(state_); }
  T&& value() && { check(); return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// Only when `!has_value()`.
  const store_error& error() const { return std::get<1>(state_); }

 private:
  void check() const {
    if (!has_value()) throw bad_result_access(error());
  }
  std::variant<T, store_error> state_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(store_error error) : error_(std::move(error)) {}
  bool has_value() const noexcept { return !error_; }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (error_) throw bad_result_access(*error_);
  }
  const store_error& error() const { return *error_; }

 private:
  std::optional<store_error> error_;
};

// ---- what goes in and comes out ---------------------------------------------------------------------

/// A gateway and its token, shown this once.
struct gateway_with_token {
  portal::gateway gateway;
  portal::token token;
};

/// A client and its token, shown this once.
struct client_with_token {
  portal::client client;
  portal::token token;
};

/// An admin API credential and its token, shown this once.
struct admin_with_token {
  std::string id;
  std::string name;
  portal::token token;
};

struct new_resource {
  std::string site_id;
  std::string name;
  std::string address;  // an IP address or a CIDR prefix without host bits
  std::vector<port_filter> filters;
};

struct new_policy {
  std::string group_id;
  std::string resource_id;
  std::optional<std::int64_t> expires_at_ms;  // must lie after `now`
  std::string description;
};

struct new_flow {
  std::string client_id;
  std::string gateway_id;  // must belong to the resource's site
  std::string resource_id;
  std::string policy_id;
  std::optional<std::int64_t> expires_at_ms;
};

/// What the portal must tell gateways after a change; see `reevaluate` in policy.hpp.
using flow_changes = std::vector<flow_change>;

// ---- the store ----------------------------------------------------------------------------------------

class store {
 public:
  /// The schema version this build writes (`PRAGMA user_version`).
  static int latest_schema_version();

  /// Opens (creating it if needed) and migrates the file at `path`, or ":memory:" for a private
  /// in-memory database. `random` makes ids and tokens and must outlive the store.
  static result<store> open(const std::string& path, wireguard::random_source& random);

  store(store&&) noexcept;
  store& operator=(store&&) noexcept;
  ~store();

  /// The file's schema version as it stands (after `open`, the latest).
  result<int> schema_version();

  // sites: deleting one takes its gateways, resources, their policies and flows with it.
  result<site> create_site(std::string_view name);
  result<std::vector<site>> list_sites();
  result<site> get_site(std::string_view id);
  result<flow_changes> delete_site(std::string_view id, std::int64_t now);

  // gateways: addresses are allocated here; the public key arrives when the gateway first connects.
  result<gateway_with_token> create_gateway(std::string_view site_id, std::string_view name);
  result<std::vector<gateway>> list_gateways();
  result<gateway> get_gateway(std::string_view id);
  result<flow_changes> delete_gateway(std::string_view id, std::int64_t now);
  result<gateway> set_gateway_public_key(std::string_view id, std::string_view public_key);
  result<gateway> authenticate_gateway(std::string_view presented_token);

  // users: deleting one takes its memberships and clients with it.
  result<user> create_user(std::string_view name, std::string_view email);
  result<std::vector<user>> list_users();
  result<user> get_user(std::string_view id);
  result<flow_changes> delete_user(std::string_view id, std::int64_t now);

  // groups: deleting one takes its memberships and policies with it.
  result<group> create_group(std::string_view name);
  result<std::vector<group>> list_groups();
  result<group> get_group(std::string_view id);
  result<flow_changes> delete_group(std::string_view id, std::int64_t now);

  result<membership> add_membership(std::string_view group_id, std::string_view user_id);
  result<flow_changes> remove_membership(std::string_view group_id, std::string_view user_id, std::int64_t now);
  result<std::vector<membership>> list_memberships();

  // clients: one per device of a user. A disabled client keeps its token but is refused and has no access.
  result<client_with_token> create_client(std::string_view user_id, std::string_view name,
                                          std::string_view public_key = {});
  result<std::vector<client>> list_clients();
  result<client> get_client(std::string_view id);
  result<flow_changes> delete_client(std::string_view id, std::int64_t now);
  result<flow_changes> set_client_disabled(std::string_view id, bool disabled, std::int64_t now);
  result<client> set_client_public_key(std::string_view id, std::string_view public_key);
  result<client> authenticate_client(std::string_view presented_token);

  // resources: deleting one takes its policies and flows with it.
  result<resource> create_resource(const new_resource& draft);
  result<std::vector<resource>> list_resources();
  result<resource> get_resource(std::string_view id);
  result<flow_changes> delete_resource(std::string_view id, std::int64_t now);
  /// The resources the client's groups have an active policy for; none for a disabled client.
  result<std::vector<resource>> resources_for_client(std::string_view client_id, std::int64_t now);

  // policies: creating one can lengthen live flows; call `reevaluate_flows(now)` after it.
  result<policy> create_policy(const new_policy& draft, std::int64_t now);
  result<std::vector<policy>> list_policies();
  result<policy> get_policy(std::string_view id);
  result<flow_changes> delete_policy(std::string_view id, std::int64_t now);
  /// The earliest policy expiry after `now`, for the portal's timer.
  result<std::optional<std::int64_t>> next_policy_expiry(std::int64_t now);

  // flows
  /// Records a granted flow. One client reaches one resource through one gateway: a flow of the same
  /// client and resource through another gateway (the client moved, as when its gateway restarted) is
  /// deleted in the same transaction and, with `superseded`, reported there as a revoke (`moved`).
  result<flow> record_flow(const new_flow& draft, std::int64_t now, flow_changes* superseded = nullptr);
  result<std::vector<flow>> list_flows();
  result<void> delete_flow(std::string_view id);
  /// Each returns the flows it removed.
  result<std::vector<flow>> delete_flows_for_client(std::string_view client_id);
  result<std::vector<flow>> delete_flows_for_resource(std::string_view resource_id);
  result<std::vector<flow>> delete_flows_for_gateway(std::string_view gateway_id);
  /// Reevaluates every live flow at `now` and applies the result (see the top of this file).
  result<flow_changes> reevaluate_flows(std::int64_t now);
  /// Everything `reevaluate` needs, read in one transaction.
  result<access_snapshot> snapshot();

  // admin API credentials
  result<admin_with_token> create_admin_token(std::string_view name);
  result<std::string> authenticate_admin(std::string_view presented_token);  // the credential's id
  result<void> delete_admin_token(std::string_view id);

 private:
  struct impl;
  explicit store(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

}  // namespace firebreak::portal
