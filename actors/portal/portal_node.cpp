#include "actors/portal/portal_node.hpp"

#include <algorithm>

#include "actors/portal/logger.hpp"

#include <sys/stat.h>

#include <fstream>
#include <mutex>
#include <unordered_map>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "actors/portal/presence.hpp"
#include "actors/portal/store_actor.hpp"
#include "transport/websocket/https_server.hpp"
#include "transport/websocket/tls_bootstrap.hpp"
#include "transport/websocket/wss_server.hpp"

namespace firebreak::portal {

using namespace messages;

namespace {

constexpr auto request_timeout = std::chrono::seconds(5);

/// Joins the WebSocket server to the actors: a session actor per accepted socket, frames in as messages,
/// pushes out through the server.
class socket_bridge final : public websocket::wss_handler, public socket_port {
 public:
  socket_bridge(caf::actor_system& sys, session_peers peers, session_settings settings)
      : sys_(sys), peers_(std::move(peers)), settings_(settings) {
    // One budget for every session: a client that reconnects keeps what it spent.
    if (!settings_.budget)
      settings_.budget =
          std::make_shared<flow_budget>(settings_.create_flow_per_second, settings_.create_flow_burst);
  }

  void attach(websocket::wss_server* server) { server_ = server; }

  websocket::open_decision on_open(websocket::session_id id, const websocket::request_info& request) override {
    using websocket::open_decision;
    if (request.path != "/socket/websocket")
      return open_decision::reject(404, "no such endpoint: connect to /socket/websocket");
    if (auto vsn = request.query.find("vsn"); vsn != request.query.end() && vsn->second != "2.0.0")
      return open_decision::reject(400, "unsupported serializer version " + vsn->second + ": this portal speaks 2.0.0");
    auto token = request.query.find("token");
    if (token == request.query.end() || token->second.empty())
      return open_decision::reject(401, "missing token: pass ?token=... in the connect parameters");
    peer_kind kind;
    if (token->second.rfind("fbc_", 0) == 0)
      kind = peer_kind::client;
    else if (token->second.rfind("fbg_", 0) == 0)
      kind = peer_kind::gateway;
    else
      return open_decision::reject(403, "invalid token");
    std::string public_key;
    if (auto pk = request.query.find("public_key"); pk != request.query.end()) public_key = pk->second;

    std::optional<identity> who;
    std::string why = "invalid token";
    {
      caf::scoped_actor self{sys_};
      self->request(peers_.store, request_timeout, authenticate_atom::value, kind, token->second, public_key)
          .receive([&](identity& found) { who = std::move(found); },
                   [&](caf::error& err) {
                     // Say no more than needed: which part of the token was wrong helps only an attacker.
                     if (err == caf::sec::request_timeout) why = "the portal is busy; retry";
                   });
    }
    if (!who) return open_decision::reject(403, why);
    if (!who->refused.empty()) return open_decision::reject(409, who->refused);
    auto session = sys_.spawn(session_actor, id, *who, std::shared_ptr<socket_port>(this, [](socket_port*) {}), peers_,
                              settings_);
    std::lock_guard lock(mutex_);
    sessions_[id] = session;
    return open_decision::accept();
  }

  void on_text(websocket::session_id id, std::string text) override {
    if (auto s = find(id)) caf::anon_send(s, socket_text{std::move(text)});
  }

  void on_close(websocket::session_id id, const websocket::close_reason& reason) override {
    caf::actor s;
    {
      std::lock_guard lock(mutex_);
      auto it = sessions_.find(id);
      if (it == sessions_.end()) return;
      s = it->second;
      sessions_.erase(it);
    }
    caf::anon_send(s, socket_closed{reason.reason});
  }

  void send(std::uint64_t socket, std::string text) override {
    if (server_) server_->send(socket, std::move(text));
  }
  void close(std::uint64_t socket, std::uint16_t code, std::string reason) override {
    if (server_) server_->close(socket, code, std::move(reason));
  }

 private:
  caf::actor find(websocket::session_id id) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(id);
    return it == sessions_.end() ? caf::actor{} : it->second;
  }

  caf::actor_system& sys_;
  session_peers peers_;
  session_settings settings_;
  websocket::wss_server* server_ = nullptr;
  std::mutex mutex_;
  std::unordered_map<websocket::session_id, caf::actor> sessions_;
};

}  // namespace

struct portal_node::impl {
  portal_config config;
  std::unique_ptr<caf::actor_system_config> actor_config;
  std::unique_ptr<caf::actor_system> system;
  caf::actor store, presence, coordinator;
  std::unique_ptr<socket_bridge> bridge;
  std::unique_ptr<websocket::wss_server> wss;
  std::unique_ptr<websocket::https_server> admin;
  std::filesystem::path ca_file;
  bool admin_token_created = false;

  websocket::json_response handle_admin(const websocket::json_request& request);
};

websocket::json_response portal_node::impl::handle_admin(const websocket::json_request& request) {
  auto auth = request.headers.find("authorization");
  const std::string prefix = "Bearer ";
  if (auth == request.headers.end() || auth->second.rfind(prefix, 0) != 0)
    return {401, R"({"error":"missing admin token: send Authorization: Bearer <token>"})"};
  caf::scoped_actor self{*system};
  websocket::json_response response{503, R"({"error":"the portal's store did not answer in time"})"};
  // Admin calls go ahead of routine store queries (a refresh of 1,000 sessions must not delay a revoke).
  self->request<caf::message_priority::high>(store, request_timeout, admin_auth_atom::value,
                                             auth->second.substr(prefix.size()))
      .receive(
          [&](bool ok) {
            if (!ok) {
              response = {403, R"({"error":"invalid admin token"})"};
              return;
            }
            self->request<caf::message_priority::high>(store, request_timeout,
                                                       admin_request{request.method, request.target, request.body})
                .receive([&](const admin_response& r) { response = {static_cast<unsigned>(r.status), r.body}; },
                         [&](caf::error&) {});
          },
          [&](caf::error&) {});
  return response;
}

std::string portal_node::stats() const {
  const auto& im = *impl_;
  if (!im.system || !im.wss) return R"({"ready":false,"error":"the portal is not running"})";
  caf::scoped_actor self{*im.system};
  nlohmann::json out = {{"ready", false}};
  const auto ask = [&](const caf::actor& who, const char* key) {
    self->request(who, std::chrono::seconds(2), stats_atom::value)
        .receive([&](const std::string& j) { out[key] = nlohmann::json::parse(j, nullptr, false); },
                 [&](const caf::error&) {});
  };
  ask(im.presence, "sessions");
  ask(im.coordinator, "flows");
  const bool answered = out.contains("sessions") && out.contains("flows");
  out["ready"] = answered;
  if (!answered) out["error"] = "the portal's actors did not answer in time";
  return out.dump();
}

portal_node::portal_node(portal_config config) : impl_(std::make_unique<impl>()) {
  impl_->config = std::move(config);
}

portal_node::~portal_node() { stop(); }

std::optional<std::string> portal_node::start() {
  auto& im = *impl_;
  auto log = portal_logger();
  std::error_code ec;
  std::filesystem::create_directories(im.config.data_dir, ec);
  if (ec) return "cannot create the data directory " + im.config.data_dir.string() + ": " + ec.message();
  ::chmod(im.config.data_dir.c_str(), 0700);

  auto rng = std::make_shared<wireguard::system_random>();
  const auto db_path = (im.config.data_dir / "portal.db").string();
  auto opened = store::open(db_path, *rng);
  if (!opened) return "cannot open the store " + db_path + ": " + opened.error().message;
  store db = std::move(opened).value();

  // The admin token is made once and shown once: written 0600 beside the database.
  const auto token_file = admin_token_file();
  if (!std::filesystem::exists(token_file)) {
    auto admin = db.create_admin_token("portal");
    if (!admin) return "cannot create the admin token: " + admin.error().message;
    auto old_mask = ::umask(077);
    std::ofstream(token_file) << admin->token.reveal() << "\n";
    ::umask(old_mask);
    im.admin_token_created = true;
  }

  std::filesystem::path cert = im.config.tls_cert, key = im.config.tls_key;
  if (cert.empty() != key.empty()) return "give both a TLS certificate and its key, or neither";
  if (cert.empty()) {
    // The certificate always names this host as `firebreak admin` reaches it (127.0.0.1 by default),
    // besides the names clients and gateways use.
    auto names = im.config.hostnames;
    for (const char* local : {"localhost", "127.0.0.1"})
      if (std::find(names.begin(), names.end(), local) == names.end()) names.emplace_back(local);
    auto certs = websocket::ensure_certificates(im.config.data_dir / "tls", names, std::chrono::system_clock::now());
    if (!certs) return "cannot prepare TLS certificates: " + *certs.error;
    cert = certs.server_cert_path;
    key = certs.server_key_path;
    im.ca_file = certs.ca_cert_path;
  }

  im.actor_config = std::make_unique<caf::actor_system_config>();
  register_portal_messages(*im.actor_config);
  im.system = std::make_unique<caf::actor_system>(*im.actor_config);
  store_settings ss;
  ss.relays = im.config.relays;
  ss.relay_credential_lifetime = im.config.relay_credential_lifetime;
  if (!im.config.relays.empty()) im.config.sessions.relay_refresh = im.config.relay_credential_lifetime / 2;
  im.store = spawn_store_actor(*im.system, std::move(db), rng, ss);
  // The logger is passed in (no zero-argument spawn: CAF 0.17.6 binds a reference through a null
  // pointer for those, which UndefinedBehaviorSanitizer rightly reports).
  im.presence = im.system->spawn(presence_actor, portal_logger());
  im.coordinator = im.system->spawn(flow_coordinator, im.store, im.presence, rng, im.config.flows);
  caf::anon_send(im.store, set_coordinator_atom::value, im.coordinator);

  im.bridge = std::make_unique<socket_bridge>(*im.system, session_peers{im.store, im.presence, im.coordinator},
                                              im.config.sessions);
  websocket::wss_server_config wcfg;
  wcfg.bind_address = im.config.listen_address;
  wcfg.port = im.config.listen_port;
  wcfg.cert_path = cert;
  wcfg.key_path = key;
  wcfg.max_message_bytes = im.config.sessions.max_frame_bytes;
  // The session actor enforces the heartbeat; the socket's own idle bound sits safely above it.
  wcfg.idle_timeout = im.config.sessions.heartbeat_timeout * 2;
  im.wss = std::make_unique<websocket::wss_server>(wcfg, *im.bridge);
  im.bridge->attach(im.wss.get());
  if (auto err = im.wss->start()) {
    stop();
    return *err;
  }

  websocket::https_server_config acfg;
  acfg.bind_address = im.config.admin_address;
  acfg.port = im.config.admin_port;
  acfg.cert_path = cert;
  acfg.key_path = key;
  im.admin = std::make_unique<websocket::https_server>(
      acfg, [this](const websocket::json_request& r) { return impl_->handle_admin(r); });
  if (auto err = im.admin->start()) {
    stop();
    return *err;
  }
  log->info("portal listening on {}:{} (clients and gateways), admin API on {}:{}", im.config.listen_address,
            im.wss->port(), im.config.admin_address, im.admin->port());
  if (!im.ca_file.empty()) log->info("clients and gateways must trust the portal's CA: {}", im.ca_file.string());
  if (im.admin_token_created) log->info("admin token written to {} (readable by this user only)", token_file.string());
  return std::nullopt;
}

void portal_node::stop() {
  auto& im = *impl_;
  if (im.admin) im.admin->stop();
  if (im.wss) im.wss->stop();
  if (im.system) {
    for (auto* a : {&im.coordinator, &im.presence, &im.store})
      if (*a) caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
    im.system->await_all_actors_done();
  }
  im.admin.reset();
  im.wss.reset();
  im.bridge.reset();
  im.store = im.presence = im.coordinator = caf::actor{};
  im.system.reset();
  im.actor_config.reset();
}

std::uint16_t portal_node::port() const { return impl_->wss ? impl_->wss->port() : 0; }
std::uint16_t portal_node::admin_port() const { return impl_->admin ? impl_->admin->port() : 0; }
const std::filesystem::path& portal_node::ca_file() const { return impl_->ca_file; }
std::filesystem::path portal_node::admin_token_file() const { return impl_->config.data_dir / "admin-token"; }
bool portal_node::admin_token_created() const { return impl_->admin_token_created; }

}  // namespace firebreak::portal
