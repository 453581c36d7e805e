// A whole portal in the test process, and peers of our own that speak to it over its real TLS WebSocket:
//
//   portal_harness  a temporary data directory (removed at the end) and a portal_node on 127.0.0.1 with
//                   ports chosen by the system; restart() brings up a new node on the same directory.
//   admin_client    the HTTPS admin API with the admin token the portal wrote: create sites, gateways,
//                   users, groups, memberships, clients, resources and policies; list and delete.
//   phoenix_peer    a Phoenix Channels v2 client over wss_client: join(), heartbeat(), push() waiting for
//                   the reply, next_push() waiting for one event (frames that arrive meanwhile are kept
//                   for later calls, never answered).
//
// Helpers check with doctest's REQUIRE, so a failure names what was expected and what came instead.
// Waits are upper bounds (a working portal answers at once); nothing sleeps to let time pass, except
// where a test is about time itself.
#pragma once

#include <doctest/doctest.h>

#include <stdlib.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/portal/logger.hpp"
#include "actors/portal/portal_node.hpp"
#include "messages/phoenix_frame.hpp"
#include "messages/portal_events.hpp"
#include "tests/support/local_machine.hpp"
#include "transport/websocket/target.hpp"
#include "transport/websocket/https_client.hpp"
#include "transport/websocket/logger.hpp"
#include "transport/websocket/wss_client.hpp"
#include "transport/wireguard/crypto.hpp"
#include "transport/wireguard/random.hpp"

namespace firebreak::portal_test {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

/// How long a test waits for something a working portal does at once.
inline constexpr auto patience = 5s;

/// Warnings and errors only, unless FIREBREAK_TEST_VERBOSE is set: an info line per session and per flow
/// would bury a failure.
inline const bool quiet_logs = [] {
  const auto level = ::getenv("FIREBREAK_TEST_VERBOSE") ? spdlog::level::info : spdlog::level::warn;
  portal::portal_logger()->set_level(level);
  websocket::logger()->set_level(level);
  return true;
}();

inline std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// A fresh WireGuard public key (base64), as `wg genkey | wg pubkey` would print.
inline std::string new_public_key() {
  wireguard::system_random rng;
  wireguard::private_key priv;
  rng.fill(priv.bytes);
  const auto pub = wireguard::x25519_public(priv);
  return wireguard::to_base64(pub);
}


inline std::string describe(const websocket::client_error& e) {
  std::ostringstream out;
  out << "client error kind " << static_cast<int>(e.what) << ": " << e.message;
  if (e.what == websocket::client_error::kind::refused) out << " (HTTP " << e.http_status << ")";
  if (e.what == websocket::client_error::kind::closed) out << " (close " << e.close_code << " '" << e.close_reason << "')";
  return out.str();
}

// ---- the admin API ----------------------------------------------------------------------------------------

struct admin_answer {
  unsigned status = 0;
  json body;
};

struct issued {  // a gateway or a client: its id, its token (shown once) and the rest of what POST returned
  std::string id;
  std::string token;
  json item;
};

class admin_client {
 public:
  admin_client(std::uint16_t port, fs::path ca_file, std::string token)
      : port_(port), ca_file_(std::move(ca_file)), token_(std::move(token)) {}

  /// One call; the body is parsed as JSON (null when empty or not JSON). Transport errors fail the test.
  admin_answer call(const std::string& method, const std::string& target, const json& body = nullptr) const {
    std::map<std::string, std::string> headers{{"Authorization", "Bearer " + token_}};
    std::string text;
    if (!body.is_null()) {
      headers["Content-Type"] = "application/json";
      text = body.dump();
    }
    auto r = websocket::https_request("127.0.0.1", port_, method, target, headers, text, ca_file_, patience);
    REQUIRE_MESSAGE(!r.error, method << " " << target << ": " << (r.error ? describe(*r.error) : ""));
    admin_answer out;
    out.status = r.status;
    out.body = json::parse(r.body, nullptr, false);
    if (out.body.is_discarded()) out.body = nullptr;
    return out;
  }

  /// A call that must answer `status`; its body.
  json expect(unsigned status, const std::string& method, const std::string& target, const json& body = nullptr) const {
    auto a = call(method, target, body);
    REQUIRE_MESSAGE(a.status == status, method << " " << target << " answered " << a.status << ": " << a.body.dump());
    return a.body;
  }

  std::string create_site(const std::string& name) const {
    return expect(201, "POST", "/v1/sites", {{"name", name}}).at("id").get<std::string>();
  }
  issued create_gateway(const std::string& site_id, const std::string& name) const {
    auto b = expect(201, "POST", "/v1/gateways", {{"site_id", site_id}, {"name", name}});
    return {b.at("id").get<std::string>(), b.at("token").get<std::string>(), b};
  }
  std::string create_user(const std::string& name) const {
    return expect(201, "POST", "/v1/users", {{"name", name}, {"email", name + "@example.test"}})
        .at("id")
        .get<std::string>();
  }
  std::string create_group(const std::string& name) const {
    return expect(201, "POST", "/v1/groups", {{"name", name}}).at("id").get<std::string>();
  }
  void add_member(const std::string& group_id, const std::string& user_id) const {
    expect(201, "POST", "/v1/groups/" + group_id + "/members", {{"user_id", user_id}});
  }
  /// With `public_key`, the client's WireGuard key is known before it first connects.
  issued create_client(const std::string& user_id, const std::string& name,
                       const std::string& public_key = {}) const {
    json body{{"user_id", user_id}, {"name", name}};
    if (!public_key.empty()) body["public_key"] = public_key;
    auto b = expect(201, "POST", "/v1/clients", body);
    return {b.at("id").get<std::string>(), b.at("token").get<std::string>(), b};
  }
  std::string create_resource(const std::string& site_id, const std::string& name, const std::string& address,
                              json filters = json::array()) const {
    return expect(201, "POST", "/v1/resources",
                  {{"site_id", site_id}, {"name", name}, {"address", address}, {"filters", std::move(filters)}})
        .at("id")
        .get<std::string>();
  }
  /// `expires_at` in unix seconds; none: never.
  std::string create_policy(const std::string& group_id, const std::string& resource_id,
                            std::optional<std::int64_t> expires_at = std::nullopt) const {
    json body{{"group_id", group_id}, {"resource_id", resource_id}};
    if (expires_at) body["expires_at"] = *expires_at;
    return expect(201, "POST", "/v1/policies", body).at("id").get<std::string>();
  }
  /// DELETE /v1/<what>/<id>: {"id", "deleted", "flows_revoked", "flows_updated"}.
  json remove(const std::string& what, const std::string& id) const {
    return expect(200, "DELETE", "/v1/" + what + "/" + id);
  }
  json list(const std::string& what) const { return expect(200, "GET", "/v1/" + what); }
  json flows() const { return list("flows"); }

  /// The live flows of one client to one resource.
  std::vector<json> flows_of(const std::string& client_id, const std::string& resource_id) const {
    std::vector<json> out;
    for (const auto& f : flows())
      if (f.at("client_id") == client_id && f.at("resource_id") == resource_id) out.push_back(f);
    return out;
  }

 private:
  std::uint16_t port_;
  fs::path ca_file_;
  std::string token_;
};

// ---- a Phoenix peer -----------------------------------------------------------------------------------------

using messages::frame;

class phoenix_peer {
 public:
  /// `topic`: "client" or "gateway", what join() and push() use.
  phoenix_peer(std::unique_ptr<websocket::wss_client> ws, std::string topic, std::string name)
      : ws_(std::move(ws)), topic_(std::move(topic)), name_(std::move(name)) {}

  const std::string& topic() const { return topic_; }
  websocket::wss_client& socket() { return *ws_; }

  /// Sends raw text (the bad-input tests); the connection must still take it.
  void send_raw(std::string_view text) {
    auto err = ws_->send_text(text, patience);
    REQUIRE_MESSAGE(!err, name_ << ": sending failed: " << describe(*err));
  }

  /// Sends [join_ref, ref, topic, event, payload]; returns the ref.
  std::string send(const std::string& topic, const std::string& event, const json& payload,
                   std::optional<std::string> join_ref) {
    frame f;
    f.join_ref = std::move(join_ref);
    f.ref = std::to_string(next_ref_++);
    f.topic = topic;
    f.event = event;
    f.payload = payload;
    send_raw(messages::serialize(f));
    return *f.ref;
  }

  /// The phx_reply to `ref`; pushes and other replies that arrive first are kept.
  messages::reply wait_reply(const std::string& ref, std::chrono::milliseconds timeout = patience) {
    auto f = wait_for([&](const frame& x) { return x.event == messages::phx_reply && x.ref == ref; }, timeout,
                      "the reply to ref " + ref);
    auto r = messages::read_reply(f);
    REQUIRE_MESSAGE(r.has_value(), name_ << ": unreadable reply " << messages::serialize(f));
    return *r;
  }

  /// phx_join on `topic` (default: the peer's own); the reply.
  messages::reply join(std::optional<std::string> topic = std::nullopt) {
    const auto t = topic.value_or(topic_);
    const std::string jr = std::to_string(next_ref_);
    auto ref = send(t, std::string(messages::phx_join), json::object(), jr);
    auto r = wait_reply(ref);
    if (r.status == messages::reply_status::ok && t == topic_) join_ref_ = jr;
    return r;
  }

  /// Joins the peer's own topic, requiring ok; then the init push.
  json join_and_init() {
    auto r = join();
    REQUIRE_MESSAGE(r.status == messages::reply_status::ok, name_ << ": join refused: " << r.response.dump());
    return next_push("init").payload;
  }

  messages::reply heartbeat() {
    auto ref = send(std::string(messages::phoenix_topic), std::string(messages::heartbeat_event), json::object(),
                    std::nullopt);
    return wait_reply(ref);
  }

  /// An event on the peer's channel; the reply.
  messages::reply push(const std::string& event, const json& payload) {
    return wait_reply(send_event(event, payload));
  }
  /// The same without waiting for the reply; the ref.
  std::string send_event(const std::string& event, const json& payload) {
    return send(topic_, event, payload, join_ref_);
  }

  /// The next push of `event` on the peer's topic (an unread one first). Frames of other events are kept
  /// for later; when none comes within `timeout` the test fails, listing what came instead.
  frame next_push(const std::string& event, std::chrono::milliseconds timeout = patience) {
    return wait_for([&](const frame& x) { return x.event == event && !x.ref; }, timeout, "a push of " + event);
  }

  /// Frames read but not yet taken, oldest first.
  const std::deque<frame>& unread() const { return unread_; }
  bool has_unread(const std::string& event) const {
    for (const auto& f : unread_)
      if (f.event == event) return true;
    return false;
  }
  std::string unread_summary() const {
    std::string out;
    for (const auto& f : unread_) out += (out.empty() ? "" : ", ") + f.event;
    return out.empty() ? "nothing" : out;
  }

  /// Reads until the connection ends; what ended it (kind::closed with the close code and reason).
  /// Frames that arrive first are kept.
  websocket::client_error wait_closed(std::chrono::milliseconds timeout = patience) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      REQUIRE_MESSAGE(left.count() > 0, name_ << ": still open after " << timeout.count() << " ms; read "
                                              << unread_summary());
      auto r = ws_->receive_text(left);
      if (r.error) return *r.error;
      if (r.text) keep(*r.text);
    }
  }

  /// Closes the socket from our side (close handshake).
  void close() { ws_->close(1000, "bye", patience); }

 private:
  void keep(const std::string& text) {
    auto parsed = messages::parse_frame(text, 64 << 20);
    REQUIRE_MESSAGE(parsed, name_ << ": the portal sent a frame we cannot parse: " << parsed.error->message);
    unread_.push_back(*parsed);
  }

  frame wait_for(const std::function<bool(const frame&)>& match, std::chrono::milliseconds timeout,
                 const std::string& what) {
    for (auto it = unread_.begin(); it != unread_.end(); ++it) {
      if (match(*it)) {
        frame f = std::move(*it);
        unread_.erase(it);
        return f;
      }
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      REQUIRE_MESSAGE(left.count() > 0, name_ << ": waited " << timeout.count() << " ms for " << what
                                              << "; came instead: " << unread_summary());
      auto r = ws_->receive_text(left);
      REQUIRE_MESSAGE(!r.error, name_ << ": waiting for " << what << ", the connection ended: " << describe(*r.error)
                                      << "; read before: " << unread_summary());
      if (!r.text) continue;
      keep(*r.text);
      if (match(unread_.back())) {
        frame f = std::move(unread_.back());
        unread_.pop_back();
        return f;
      }
    }
  }

  std::unique_ptr<websocket::wss_client> ws_;
  std::string topic_;
  std::string name_;
  std::optional<std::string> join_ref_;
  std::uint64_t next_ref_ = 1;
  std::deque<frame> unread_;
};

// ---- the portal ------------------------------------------------------------------------------------------

class portal_harness {
 public:
  /// `tune` adjusts the configuration (heartbeat timeout, authorize timeout) before the first start.
  explicit portal_harness(const std::function<void(portal::portal_config&)>& tune = {}) {
    config_.data_dir = dir_.path() / "portal";
    config_.listen_address = "127.0.0.1";
    config_.listen_port = 0;
    config_.admin_address = "127.0.0.1";
    config_.admin_port = 0;
    if (tune) tune(config_);
    start();
  }
  ~portal_harness() { stop(); }
  portal_harness(const portal_harness&) = delete;
  portal_harness& operator=(const portal_harness&) = delete;

  portal::portal_node& node() { return *node_; }
  const fs::path& data_dir() const { return config_.data_dir; }
  const admin_client& admin() const { return *admin_; }
  std::uint16_t port() const { return node_->port(); }
  const fs::path& ca_file() const { return node_->ca_file(); }

  /// Stops the node (every session closes) and starts a new one on the same data directory.
  void restart() {
    stop();
    start();
  }
  void stop() {
    admin_.reset();
    if (node_) node_->stop();
    node_.reset();
  }

  /// The upgrade itself: a socket or the error the portal answered with.
  websocket::wss_connect_result connect_raw(const std::string& target) const {
    return websocket::wss_client::connect("127.0.0.1", port(), target, ca_file(), patience);
  }

  static std::string socket_target(const std::string& token, const std::string& public_key) {
    std::string t = "/socket/websocket?token=" + websocket::percent_encode(token) + "&vsn=2.0.0";
    if (!public_key.empty()) t += "&public_key=" + websocket::percent_encode(public_key);
    return t;
  }

  /// A connected (not yet joined) peer with this token and WireGuard key.
  std::unique_ptr<phoenix_peer> connect(const std::string& token, const std::string& public_key,
                                        const std::string& topic, const std::string& name) const {
    auto c = connect_raw(socket_target(token, public_key));
    REQUIRE_MESSAGE(!c.error, name << ": connect failed: " << (c.error ? describe(*c.error) : ""));
    return std::make_unique<phoenix_peer>(std::move(c.client), topic, name);
  }

 private:
  void start() {
    node_ = std::make_unique<portal::portal_node>(config_);
    auto err = node_->start();
    REQUIRE_MESSAGE(!err, "the portal did not start: " << err.value_or(""));
    REQUIRE(node_->port() != 0);
    REQUIRE(node_->admin_port() != 0);
    REQUIRE(fs::exists(node_->ca_file()));
    std::ifstream in(node_->admin_token_file());
    std::string token;
    std::getline(in, token);
    REQUIRE_MESSAGE(!token.empty(), "no admin token in " << node_->admin_token_file());
    admin_ = std::make_unique<admin_client>(node_->admin_port(), node_->ca_file(), token);
  }

  test::temp_directory dir_;
  portal::portal_config config_;
  std::unique_ptr<portal::portal_node> node_;
  std::unique_ptr<admin_client> admin_;
};

// ---- a small world: one site, its gateway, a user in a group, a client, a resource the group may reach ----

struct world {
  std::string site_id;
  issued gateway;
  std::string gateway_key;
  std::string user_id;
  std::string group_id;
  issued client;
  std::string client_key;
  std::string resource_id;
  std::string policy_id;

  explicit world(const admin_client& admin, const std::string& tag = "w") {
    site_id = admin.create_site(tag + "-site");
    gateway = admin.create_gateway(site_id, tag + "-gw");
    gateway_key = new_public_key();
    user_id = admin.create_user(tag + "-alice");
    group_id = admin.create_group(tag + "-engineering");
    admin.add_member(group_id, user_id);
    client = admin.create_client(user_id, tag + "-laptop");
    client_key = new_public_key();
    resource_id = admin.create_resource(site_id, tag + "-wiki", "10.20.0.0/24",
                                        json::array({{{"protocol", "tcp"}, {"port_range_start", 443}}}));
    policy_id = admin.create_policy(group_id, resource_id);
  }
};

/// A joined peer whose init has been read.
struct joined_peer {
  std::unique_ptr<phoenix_peer> peer;
  json init;
  phoenix_peer* operator->() { return peer.get(); }
};

inline joined_peer join_gateway(const portal_harness& p, const world& w, const std::string& name = "gateway") {
  joined_peer out{p.connect(w.gateway.token, w.gateway_key, "gateway", name), {}};
  out.init = out.peer->join_and_init();
  return out;
}

inline joined_peer join_client(const portal_harness& p, const world& w, const std::string& name = "client") {
  joined_peer out{p.connect(w.client.token, w.client_key, "client", name), {}};
  out.init = out.peer->join_and_init();
  return out;
}

/// The gateway's next authorize_flow, which must be for `client_id`, answered with flow_authorized; the
/// authorize_flow as decoded.
inline messages::gateway_topic::authorize_flow authorize_next(phoenix_peer& gateway, const std::string& client_id) {
  auto f = gateway.next_push("authorize_flow");
  auto decoded = messages::from_json<messages::gateway_topic::authorize_flow>(f.payload);
  REQUIRE_MESSAGE(decoded, "authorize_flow does not decode: " << decoded.error->message);
  REQUIRE_MESSAGE(decoded->client.id == client_id,
                  "authorize_flow for client " << decoded->client.id << ", expected " << client_id);
  auto r = gateway.push("flow_authorized", {{"ref", decoded->ref}});
  REQUIRE_MESSAGE(r.status == messages::reply_status::ok, "flow_authorized refused: " << r.response.dump());
  return *decoded;
}

/// A whole flow: create_flow, the gateway authorizes, the client's flow_created (decoded).
inline messages::client_topic::flow_created create_flow(phoenix_peer& client, phoenix_peer& gateway,
                                                        const std::string& client_id, const std::string& resource_id,
                                                        json connected_gateway_ids = json::array()) {
  auto r = client.push("create_flow", {{"resource_id", resource_id}, {"connected_gateway_ids", connected_gateway_ids}});
  REQUIRE_MESSAGE(r.status == messages::reply_status::ok, "create_flow refused: " << r.response.dump());
  authorize_next(gateway, client_id);
  auto f = client.next_push("flow_created");
  auto created = messages::from_json<messages::client_topic::flow_created>(f.payload);
  REQUIRE_MESSAGE(created, "flow_created does not decode: " << created.error->message);
  return *created;
}

/// create_flow that must fail; the reason as sent ("not_found", "offline", "forbidden").
inline std::string create_flow_failure(phoenix_peer& client, const std::string& resource_id,
                                       std::chrono::milliseconds timeout = patience) {
  auto r = client.push("create_flow", {{"resource_id", resource_id}, {"connected_gateway_ids", json::array()}});
  REQUIRE_MESSAGE(r.status == messages::reply_status::ok, "create_flow refused: " << r.response.dump());
  auto f = client.next_push("flow_creation_failed", timeout);
  auto failed = messages::from_json<messages::client_topic::flow_creation_failed>(f.payload);
  REQUIRE_MESSAGE(failed, "flow_creation_failed does not decode: " << failed.error->message);
  CHECK(failed->resource_id == resource_id);
  return f.payload.at("reason").get<std::string>();
}

}  // namespace firebreak::portal_test
