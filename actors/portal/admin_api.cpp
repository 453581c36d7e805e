#include "actors/portal/admin_api.hpp"

#include <algorithm>
#include <cctype>
#include <exception>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "transport/websocket/target.hpp"

namespace firebreak::portal {

namespace {

using json = nlohmann::json;

// ---- errors -----------------------------------------------------------------------------------------------

/// Thrown inside this file only, caught in handle_admin: an answer other than success.
struct api_error {
  int status;
  std::string message;
};

/// Replaces anything shaped like a token ("fbc_", "fbg_" or "fba_" and what follows) with a marker, so
/// that a token pasted into the wrong place (an id, a field name) is never echoed back or logged.
std::string redact_tokens(std::string text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const bool prefix = i + 4 <= text.size() && text[i] == 'f' && text[i + 1] == 'b' &&
                        (text[i + 2] == 'c' || text[i + 2] == 'g' || text[i + 2] == 'a') && text[i + 3] == '_';
    if (!prefix) {
      out += text[i++];
      continue;
    }
    std::size_t end = i + 4;
    while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '-' ||
                                 text[end] == '_'))
      ++end;
    if (end - (i + 4) < 8) {  // too short to be (part of) a token: an ordinary word such as "fba_x"
      out.append(text, i, end - i);
    } else {
      out.append(text, i, 4);
      out += "<redacted>";
    }
    i = end;
  }
  return out;
}

/// Echoed user input, quoted and cut short (as the store quotes it).
std::string echoed(std::string_view text) {
  constexpr std::size_t limit = 64;
  return "'" + std::string(text.substr(0, limit)) + (text.size() > limit ? "...'" : "'");
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

admin_response reply(int status, const json& body) { return {status, dump(body)}; }

admin_response error_reply(int status, const std::string& message) {
  return reply(status, json{{"error", redact_tokens(message)}});
}

int status_of(error_code code) {
  switch (code) {
    case error_code::not_found: return 404;
    case error_code::conflict: return 409;
    case error_code::invalid: return 400;
    case error_code::unauthorized: return 403;
    case error_code::io: return 500;
  }
  return 500;
}

[[noreturn]] void fail(const store_error& e) { throw api_error{status_of(e.code), e.message}; }

template <class T>
T take(result<T>&& r) {
  if (!r) fail(r.error());
  return std::move(r).value();
}

// ---- request bodies ---------------------------------------------------------------------------------------

std::string_view type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a fractional number";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    default: return "something else";
  }
}

/// The body of a POST or PATCH: a JSON object with only the `allowed` fields. `shape` shows a person
/// what the route wants, e.g. {"site_id": "...", "name": "..."}.
json parse_body(const std::string& text, std::initializer_list<std::string_view> allowed, std::string_view shape) {
  const auto wanted = " (expected " + std::string(shape) + ")";
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    throw api_error{400, "the request needs a JSON object body" + wanted};
  json body;
  try {
    body = json::parse(text);
  } catch (const json::parse_error& e) {
    // nlohmann's own message quotes the input it choked on, which may hold a secret: give the position only.
    throw api_error{400, "malformed JSON in the request body near byte " + std::to_string(e.byte) + wanted};
  }
  if (!body.is_object())
    throw api_error{400, "the request body must be a JSON object, not " + std::string(type_name(body)) + wanted};
  for (const auto& [key, value] : body.items()) {
    (void)value;
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      throw api_error{400, "unknown field " + echoed(key) + wanted};
  }
  return body;
}

const json* field(const json& body, std::string_view name) {
  auto it = body.find(std::string(name));
  return it == body.end() ? nullptr : &*it;
}

std::string required_string(const json& body, std::string_view name) {
  const json* v = field(body, name);
  if (!v || v->is_null()) throw api_error{400, "missing field \"" + std::string(name) + "\""};
  if (!v->is_string())
    throw api_error{400, "field \"" + std::string(name) + "\" must be a string, not " + std::string(type_name(*v))};
  return v->get<std::string>();
}

std::string optional_string(const json& body, std::string_view name) {
  const json* v = field(body, name);
  if (!v || v->is_null()) return {};
  if (!v->is_string())
    throw api_error{400, "field \"" + std::string(name) + "\" must be a string, not " + std::string(type_name(*v))};
  return v->get<std::string>();
}

/// An integer field within [lo, hi]; nullopt when absent or null.
std::optional<std::int64_t> optional_integer(const json& body, std::string_view name, std::int64_t lo,
                                             std::int64_t hi, std::string_view meaning) {
  const json* v = field(body, name);
  if (!v || v->is_null()) return std::nullopt;
  const auto range = " between " + std::to_string(lo) + " and " + std::to_string(hi);
  if (v->is_number_unsigned()) {
    const auto u = v->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi))
      throw api_error{400, "field \"" + std::string(name) + "\" must be " + std::string(meaning) + range};
    return static_cast<std::int64_t>(u);
  }
  if (!v->is_number_integer())
    throw api_error{400, "field \"" + std::string(name) + "\" must be " + std::string(meaning) + ", not " +
                             std::string(type_name(*v))};
  const auto i = v->get<std::int64_t>();
  if (i < lo || i > hi)
    throw api_error{400, "field \"" + std::string(name) + "\" must be " + std::string(meaning) + range};
  return i;
}

// ---- entities as JSON -------------------------------------------------------------------------------------

std::int64_t to_seconds(std::int64_t ms) { return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000); }

json seconds_or_null(const std::optional<std::int64_t>& ms) {
  return ms ? json(to_seconds(*ms)) : json(nullptr);
}

json to_json(const site& s) { return {{"id", s.id}, {"name", s.name}}; }

json to_json(const gateway& g) {
  return {{"id", g.id},     {"site_id", g.site_id}, {"name", g.name},
          {"ipv4", g.ipv4}, {"ipv6", g.ipv6},       {"public_key", g.public_key}};
}

json to_json(const user& u) { return {{"id", u.id}, {"name", u.name}, {"email", u.email}}; }

json to_json(const group& g, const std::vector<membership>& memberships) {
  json members = json::array();
  for (const auto& m : memberships)
    if (m.group_id == g.id) members.push_back(m.user_id);
  return {{"id", g.id}, {"name", g.name}, {"members", std::move(members)}};
}

json to_json(const client& c) {
  return {{"id", c.id},     {"user_id", c.user_id}, {"name", c.name},          {"ipv4", c.ipv4},
          {"ipv6", c.ipv6}, {"disabled", c.disabled}, {"public_key", c.public_key}};
}

json to_json(const port_filter& f) {
  json j{{"protocol", f.protocol}};
  if (f.protocol != "icmp") {
    j["port_range_start"] = f.port_start;
    j["port_range_end"] = f.port_end;
  }
  return j;
}

json to_json(const resource& r) {
  json filters = json::array();
  for (const auto& f : r.filters) filters.push_back(to_json(f));
  return {{"id", r.id},           {"site_id", r.site_id}, {"name", r.name},
          {"address", r.address}, {"filters", std::move(filters)}};
}

json to_json(const policy& p) {
  return {{"id", p.id},
          {"group_id", p.group_id},
          {"resource_id", p.resource_id},
          {"expires_at", seconds_or_null(p.expires_at_ms)},
          {"description", p.description}};
}

json to_json(const flow& f) {
  return {{"id", f.id},
          {"client_id", f.client_id},
          {"gateway_id", f.gateway_id},
          {"resource_id", f.resource_id},
          {"policy_id", f.policy_id},
          {"created_at", to_seconds(f.created_at_ms)},
          {"expires_at", seconds_or_null(f.expires_at_ms)}};
}

template <class T>
json list_json(const std::vector<T>& items) {
  json out = json::array();
  for (const auto& item : items) out.push_back(to_json(item));
  return out;
}

/// Appends `more` to `changes` and answers a delete: what went, and what it did to live flows.
json record_changes(flow_changes& changes, flow_changes more, json answer) {
  int revoked = 0, updated = 0;
  for (const auto& c : more) (c.kind == flow_change_kind::revoke ? revoked : updated)++;
  changes.insert(changes.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  answer["flows_revoked"] = revoked;
  answer["flows_updated"] = updated;
  return answer;
}

/// After a change that can only widen access (a policy, a membership): live flows whose grant now lasts
/// longer get an expiry update. The change itself is committed already, so a failure here is not the
/// caller's: the portal's expiry timer and its next start reevaluate again.
void reevaluate_after_grant(store& db, std::int64_t now, flow_changes& changes) {
  if (auto more = db.reevaluate_flows(now))
    changes.insert(changes.end(), std::make_move_iterator(more->begin()), std::make_move_iterator(more->end()));
}

// ---- routing ----------------------------------------------------------------------------------------------

struct route_context {
  store& db;
  const admin_request& request;
  std::int64_t now;
  flow_changes& changes;
};

[[noreturn]] void not_allowed(const std::string& method, const std::string& path, std::string_view allowed) {
  throw api_error{405, "method " + echoed(method) + " is not allowed on " + path + "; use " + std::string(allowed)};
}

json deleted(const std::string& id) { return {{"id", id}, {"deleted", true}}; }

/// The collections and their single-item routes: GET list / POST create; GET one / DELETE one.
admin_response sites(route_context& c, const std::optional<std::string>& id, const std::string& path) {
  const auto& m = c.request.method;
  if (!id) {
    if (m == "GET") return reply(200, list_json(take(c.db.list_sites())));
    if (m == "POST") {
      auto body = parse_body(c.request.body, {"name"}, R"({"name": "..."})");
      return reply(201, to_json(take(c.db.create_site(required_string(body, "name")))));
    }
    not_allowed(m, path, "GET or POST");
  }
  if (m == "GET") return reply(200, to_json(take(c.db.get_site(*id))));
  if (m == "DELETE") return reply(200, record_changes(c.changes, take(c.db.delete_site(*id, c.now)), deleted(*id)));
  not_allowed(m, path, "GET or DELETE");
}

admin_response gateways(route_context& c, const std::optional<std::string>& id, const std::string& path) {
  const auto& m = c.request.method;
  if (!id) {
    if (m == "GET") return reply(200, list_json(take(c.db.list_gateways())));
    if (m == "POST") {
      auto body = parse_body(c.request.body, {"site_id", "name"}, R"({"site_id": "...", "name": "..."})");
      const auto site_id = required_string(body, "site_id");
      const auto name = required_string(body, "name");
      auto made = take(c.db.create_gateway(site_id, name));
      auto out = to_json(made.gateway);
      out["token"] = made.token.reveal();  // shown this once
      return reply(201, out);
    }
    not_allowed(m, path, "GET or POST");
  }
  if (m == "GET") return reply(200, to_json(take(c.db.get_gateway(*id))));
  if (m == "DELETE")
    return reply(200, record_changes(c.changes, take(c.db.delete_gateway(*id, c.now)), deleted(*id)));
  not_allowed(m, path, "GET or DELETE");
}

admin_response users(route_context& c, const std::optional<std::string>& id, const std::string& path) {
  const auto& m = c.request.method;
  if (!id) {
    if (m == "GET") return reply(200, list_json(take(c.db.list_users())));
    if (m == "POST") {
      auto body = parse_body(c.request.body, {"name", "email"}, R"({"name": "...", "email": "..."})");
      const auto name = required_string(body, "name");
      const auto email = required_string(body, "email");
      return reply(201, to_json(take(c.db.create_user(name, email))));
    }
    not_allowed(m, path, "GET or POST");
  }
  if (m == "GET") return reply(200, to_json(take(c.db.get_user(*id))));
  if (m == "DELETE") return reply(200, record_changes(c.changes, take(c.db.delete_user(*id, c.now)), deleted(*id)));
  not_allowed(m, path, "GET or DELETE");
}

admin_response groups(route_context& c, const std::optional<std::string>& id, const std::string& path) {
  const auto& m = c.request.method;
  if (!id) {
    if (m == "GET") {
      const auto all = take(c.db.list_groups());
      const auto memberships = take(c.db.list_memberships());
      json out = json::array();
      for (const auto& g : all) out.push_back(to_json(g, memberships));
      return reply(200, out);
    }
    if (m == "POST") {
      auto body = parse_body(c.request.body, {"name"}, R"({"name": "..."})");
      auto made = take(c.db.create_group(required_string(body, "name")));
      return reply(201, to_json(made, {}));
    }
    not_allowed(m, path, "GET or POST");
  }
  if (m == "GET") {
    auto g = take(c.db.get_group(*id));
    return reply(200, to_json(g, take(c.db.list_memberships())));
  }
  if (m == "DELETE")
    return reply(200, record_changes(c.changes, take(c.db.delete_group(*id, c.now)), deleted(*id)));
  not_allowed(m, path, "GET or DELETE");
}

/// /v1/groups/{id}/members[/{user_id}]
admin_response members(route_context& c, const std::string& group_id, const std::optional<std::string>& user_id,
                       const std::string& path) {
  const auto& m = c.request.method;
  if (!user_id) {
    if (m == "GET") {
      take(c.db.get_group(group_id));  // 404 for an unknown group
      json out = json::array();
      for (const auto& ms : take(c.db.list_memberships()))
        if (ms.group_id == group_id) out.push_back(ms.user_id);
      return reply(200, out);
    }
    if (m == "POST") {
      auto body = parse_body(c.request.body, {"user_id"}, R"({"user_id": "..."})");
      const auto user = required_string(body, "user_id");
      take(c.db.get_group(group_id));  // the group is in the path: unknown means 404, not 400
      auto made = take(c.db.add_membership(group_id, user));
      reevaluate_after_grant(c.db, c.now, c.changes);
      return reply(201, json{{"group_id", made.group_id}, {"user_id", made.user_id}});
    }
    not_allowed(m, path, "GET or POST");
  }
  if (m == "DELETE") {
    auto changes = take(c.db.remove_membership(group_id, *user_id, c.now));
    return reply(200, record_changes(c.changes, std::move(changes),
                                     json{{"group_id", group_id}, {"user_id", *user_id}, {"deleted", true}}));
  }
  not_allowed(m, path, "DELETE");
}

admin_response clients(route_context& c, const std::optional<std::string>& id, const std::string& path) {
  const auto& m = c.request.method;
  if (!id) {
    if (m == "GET") return reply(200, list_json(take(c.db.list_clients())));
    if (m == "POST") {
      auto body = parse_body(c.request.body, {"user_id", "name", "public_key"},
                             R"j({"user_id": "...", "name": "...", "public_key": "... (optional)"})j");
      const auto user_id = required_string(body, "user_id");
      const auto name = required_string(body, "name");
      const auto key = optional_string(body, "public_key");
      auto made = take(c.db.create_client(user_id, name, key));
      auto out = to_json(made.client);
      out["token"] = made.token.reveal();  // shown this once
      return reply(201, out);
    }
    not_allowed(m, path, "GET or POST");
  }
  if (m == "GET") return reply(200, to_json(take(c.db.get_client(*id))));
  if (m == "DELETE")
    return reply(200, record_changes(c.changes, take(c.db.delete_client(*id, c.now)), deleted(*id)));
  if (m == "PATCH") {
    auto body = parse_body(c.request.body, {"disabled"}, R"({"disabled": true|false})");
    const json* v = field(body, "disabled");
    if (!v || v->is_null()) throw api_error{400, R"(missing field "disabled" (true to disable, false to enable))"};
    if (!v->is_boolean())
      throw api_error{400, R"(field "disabled" must be true or false, not )" + std::string(type_name(*v))};
    const bool disable = v->get<bool>();
    auto changes = take(c.db.set_client_disabled(*id, disable, c.now));
    auto out = to_json(take(c.db.get_client(*id)));
    return reply(200, record_changes(c.changes, std::move(changes), std::move(out)));
  }
  not_allowed(m, path, "GET, PATCH or DELETE");
}

port_filter parse_filter(const json& item, std::size_t index) {
  const auto at = "filters[" + std::to_string(index) + "]";
  const auto shape = R"({"protocol": "tcp", "port_range_start": 80, "port_range_end": 443})";
  if (!item.is_object()) throw api_error{400, at + " must be an object like " + shape};
  for (const auto& [key, value] : item.items()) {
    (void)value;
    if (key != "protocol" && key != "port_range_start" && key != "port_range_end")
      throw api_error{400, "unknown field " + echoed(key) + " in " + at + " (expected " + shape + ")"};
  }
  port_filter f;
  try {
    f.protocol = required_string(item, "protocol");
    std::transform(f.protocol.begin(), f.protocol.end(), f.protocol.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    const auto start = optional_integer(item, "port_range_start", 0, 65535, "a port");
    const auto end = optional_integer(item, "port_range_end", 0, 65535, "a port");
    if (f.protocol == "tcp" || f.protocol == "udp") {
      if (!start) throw api_error{400, "missing field \"port_range_start\" (a " + f.protocol + " filter needs ports)"};
      f.port_start = static_cast<int>(*start);
      f.port_end = static_cast<int>(end.value_or(*start));
    } else {
      f.port_start = static_cast<int>(start.value_or(0));
      f.port_end = static_cast<int>(end.value_or(0));
    }
  } catch (api_error& e) {
    e.message = at + ": " + e.message;
    throw;
  }
  return f;
}

admin_response resources(route_context& c, const std::optional<std::string>& id, const std::string& path) {
  const auto& m = c.request.method;
  if (!id) {
    if (m == "GET") return reply(200, list_json(take(c.db.list_resources())));
    if (m == "POST") {
      auto body = parse_body(
          c.request.body, {"site_id", "name", "address", "filters"},
          R"({"site_id": "...", "name": "...", "address": "10.0.0.0/24", "filters": [{"protocol": "tcp", "port_range_start": 80, "port_range_end": 443}]})");
      new_resource draft;
      draft.site_id = required_string(body, "site_id");
      draft.name = required_string(body, "name");
      draft.address = required_string(body, "address");
      if (const json* filters = field(body, "filters"); filters && !filters->is_null()) {
        if (!filters->is_array())
          throw api_error{400, R"(field "filters" must be an array, not )" + std::string(type_name(*filters))};
        for (std::size_t i = 0; i < filters->size(); ++i) draft.filters.push_back(parse_filter((*filters)[i], i));
      }
      auto made = take(c.db.create_resource(draft));
      return reply(201, to_json(made));
    }
    not_allowed(m, path, "GET or POST");
  }
  if (m == "GET") return reply(200, to_json(take(c.db.get_resource(*id))));
  if (m == "DELETE")
    return reply(200, record_changes(c.changes, take(c.db.delete_resource(*id, c.now)), deleted(*id)));
  not_allowed(m, path, "GET or DELETE");
}

// Unix seconds up to the end of year 9999: large enough for any real expiry, small enough for milliseconds.
constexpr std::int64_t max_unix_seconds = 253'402'300'799;

admin_response policies(route_context& c, const std::optional<std::string>& id, const std::string& path) {
  const auto& m = c.request.method;
  if (!id) {
    if (m == "GET") return reply(200, list_json(take(c.db.list_policies())));
    if (m == "POST") {
      auto body = parse_body(
          c.request.body, {"group_id", "resource_id", "expires_at", "description"},
          R"j({"group_id": "...", "resource_id": "...", "expires_at": <unix seconds, optional>, "description": "... (optional)"})j");
      new_policy draft;
      draft.group_id = required_string(body, "group_id");
      draft.resource_id = required_string(body, "resource_id");
      if (auto at = optional_integer(body, "expires_at", 0, max_unix_seconds, "a time in unix seconds"))
        draft.expires_at_ms = *at * 1000;
      draft.description = optional_string(body, "description");
      auto made = take(c.db.create_policy(draft, c.now));
      reevaluate_after_grant(c.db, c.now, c.changes);  // a new policy can lengthen live flows
      return reply(201, to_json(made));
    }
    not_allowed(m, path, "GET or POST");
  }
  if (m == "GET") return reply(200, to_json(take(c.db.get_policy(*id))));
  if (m == "DELETE")
    return reply(200, record_changes(c.changes, take(c.db.delete_policy(*id, c.now)), deleted(*id)));
  not_allowed(m, path, "GET or DELETE");
}

std::optional<flow> find_flow(store& db, const std::string& id) {
  for (auto& f : take(db.list_flows()))
    if (f.id == id) return std::move(f);
  return std::nullopt;
}

admin_response flows(route_context& c, const std::optional<std::string>& id, const std::string& path) {
  const auto& m = c.request.method;
  if (!id) {
    if (m == "GET") return reply(200, list_json(take(c.db.list_flows())));
    not_allowed(m, path, "GET");
  }
  if (m == "GET") {
    auto f = find_flow(c.db, *id);
    if (!f) throw api_error{404, "no flow with id " + echoed(*id)};
    return reply(200, to_json(*f));
  }
  if (m == "DELETE") {
    // The store removes one flow without reevaluating anything: the revoke to announce is built here,
    // from the flow as it was. The policy stays, so the client may ask for (and get) a new flow.
    auto f = find_flow(c.db, *id);
    if (!f) throw api_error{404, "no flow with id " + echoed(*id)};
    if (auto r = c.db.delete_flow(*id); !r) fail(r.error());
    flow_change change;
    change.flow = std::move(*f);
    change.kind = flow_change_kind::revoke;
    change.reason = revoke_reason::access_removed;
    flow_changes one;
    one.push_back(std::move(change));
    return reply(200, record_changes(c.changes, std::move(one), deleted(*id)));
  }
  not_allowed(m, path, "GET or DELETE");
}

constexpr std::string_view known_routes =
    "/v1/sites, /v1/gateways, /v1/users, /v1/groups, /v1/groups/{id}/members, /v1/clients, /v1/resources, "
    "/v1/policies, /v1/flows";

admin_response route(route_context& c) {
  auto parsed = websocket::parse_target(c.request.target);
  if (!parsed.target) throw api_error{400, "bad request target: " + parsed.error.value_or("unreadable")};
  std::string path = parsed.target->path;
  if (path.size() > 1 && path.back() == '/') path.pop_back();
  const std::string shown_path = echoed(path);

  // "/v1/groups/abc/members" -> {"v1", "groups", "abc", "members"}, each segment percent-decoded.
  std::vector<std::string> parts;
  for (std::size_t start = 1; start <= path.size();) {
    auto end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    auto decoded = websocket::percent_decode(std::string_view(path).substr(start, end - start), false);
    if (!decoded) throw api_error{400, "bad percent-escape in the path " + shown_path};
    if (decoded->empty()) throw api_error{404, "no such route: " + shown_path + " (an empty path segment)"};
    parts.push_back(std::move(*decoded));
    start = end + 1;
  }
  const auto unknown = [&]() -> api_error {
    return {404, "no such route: " + c.request.method + " " + shown_path + "; the routes are " +
                     std::string(known_routes)};
  };
  if (parts.size() < 2 || parts[0] != "v1") throw unknown();
  const auto& what = parts[1];
  std::optional<std::string> id;
  if (parts.size() >= 3) id = parts[2];

  if (what == "groups" && parts.size() >= 4) {
    if (parts[3] != "members" || parts.size() > 5) throw unknown();
    std::optional<std::string> user_id;
    if (parts.size() == 5) user_id = parts[4];
    return members(c, *id, user_id, shown_path);
  }
  if (parts.size() > 3) throw unknown();
  if (what == "sites") return sites(c, id, shown_path);
  if (what == "gateways") return gateways(c, id, shown_path);
  if (what == "users") return users(c, id, shown_path);
  if (what == "groups") return groups(c, id, shown_path);
  if (what == "clients") return clients(c, id, shown_path);
  if (what == "resources") return resources(c, id, shown_path);
  if (what == "policies") return policies(c, id, shown_path);
  if (what == "flows") return flows(c, id, shown_path);
  throw unknown();
}

}  // namespace

admin_response handle_admin(store& db, const admin_request& request, std::int64_t now_ms, flow_changes& changes) {
  route_context context{db, request, now_ms, changes};
  try {
    return route(context);
  } catch (const api_error& e) {
    return error_reply(e.status, e.message);
  } catch (const std::exception& e) {
    // A bug or an exhausted resource, not the caller's fault; the message is ours, not theirs.
    return error_reply(500, std::string("internal error in the admin API: ") + e.what());
  }
}

}  // namespace firebreak::portal
