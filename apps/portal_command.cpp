#include "apps/portal_command.hpp"

#include <signal.h>

#include <fstream>
#include <iostream>

#include "apps/health_routes.hpp"
#include "apps/logging.hpp"
#include "apps/metrics_text.hpp"
#include "config/node_config.hpp"
#include "transport/websocket/http_endpoint.hpp"

namespace firebreak::apps {

std::shared_ptr<portal_options> add_portal_command(CLI::App& app) {
  auto o = std::make_shared<portal_options>();
  auto* cmd = app.add_subcommand(
      "portal",
      "Run the portal: the policy store (SQLite), the WebSocket API clients and gateways join, and the admin API.\n"
      "Every option can also come from the environment (shown as ENV) or from a TOML file given with --config.\n"
      "On first start it creates its database, a private TLS CA (unless --tls-cert/--tls-key are given) and an\n"
      "admin token, all in --data-dir, and says where the CA file and the token are.");
  cmd->set_config("--config", "", "a TOML file with the options below (flags and environment win over it)");
  cmd->add_option("--data-dir", o->config.data_dir, "where portal.db, tls/ and admin-token live")
      ->envname("FIREBREAK_PORTAL_DATA_DIR")
      ->capture_default_str();
  cmd->add_option("--listen", o->listen, "address:port for clients and gateways (TLS WebSocket)")
      ->envname("FIREBREAK_PORTAL_LISTEN")
      ->capture_default_str();
  cmd->add_option("--admin-listen", o->admin_listen, "address:port of the admin API (HTTPS, admin token)")
      ->envname("FIREBREAK_PORTAL_ADMIN_LISTEN")
      ->capture_default_str();
  cmd->add_option("--health-listen", o->health_listen,
                  "ADDRESS:PORT for plain HTTP GET /healthz (200 when serving, else 503) and /metrics (Prometheus); "
                  "off when unset")
      ->envname("FIREBREAK_PORTAL_HEALTH_LISTEN");
  cmd->add_option("--hostname", o->config.hostnames,
                  "a DNS name or IP address clients use to reach the portal (repeatable): the SANs of the "
                  "generated certificate, which always names localhost and 127.0.0.1 too")
      ->envname("FIREBREAK_PORTAL_HOSTNAMES")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--tls-cert", o->config.tls_cert, "your own certificate chain (PEM); with --tls-key")
      ->envname("FIREBREAK_PORTAL_TLS_CERT");
  cmd->add_option("--tls-key", o->config.tls_key, "the key of --tls-cert (PEM)")->envname("FIREBREAK_PORTAL_TLS_KEY");
  cmd->add_option("--relay", o->relays, "a coturn relay as id=host:port (repeatable)")
      ->envname("FIREBREAK_PORTAL_RELAYS")
      ->delimiter(',');
  cmd->add_option("--relay-secret-file", o->relay_secret_file,
                  "file holding coturn's static-auth-secret (use-auth-secret), for TURN credentials")
      ->envname("FIREBREAK_PORTAL_RELAY_SECRET_FILE");
  cmd->add_option("--relay-credential-hours", o->relay_credential_hours,
                  "how long TURN credentials stay valid; connected peers get fresh ones at half that")
      ->envname("FIREBREAK_PORTAL_RELAY_CREDENTIAL_HOURS")
      ->check(CLI::Range(0.01, 24.0 * 30))
      ->capture_default_str();
  cmd->add_option("--heartbeat-timeout", o->heartbeat_timeout_s,
                  "seconds without a heartbeat before a session is closed and its peer offline")
      ->envname("FIREBREAK_PORTAL_HEARTBEAT_TIMEOUT")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("--authorize-timeout", o->authorize_timeout_s,
                  "seconds a gateway has to accept a flow before the client hears 'offline'")
      ->envname("FIREBREAK_PORTAL_AUTHORIZE_TIMEOUT")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  cmd->add_option("--log-level", o->log_level, "trace, debug, info, warn or error")
      ->envname("FIREBREAK_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  return o;
}

namespace {

/// "host:port" (or "[v6]:port") into its parts; false when it is not that.
bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return false;
  host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    auto p = std::stoul(text.substr(colon + 1));
    if (p > 65535) return false;
    port = static_cast<std::uint16_t>(p);
  } catch (...) {
    return false;
  }
  return !host.empty();
}

int config_error(const std::string& what) {
  std::cerr << "firebreak portal: " << what << "\n";
  return 2;
}

}  // namespace

int run_portal(portal_options& o) {
  setup_logging(o.log_level);
  auto& cfg = o.config;
  if (!split_host_port(o.listen, cfg.listen_address, cfg.listen_port))
    return config_error("--listen: expected address:port, got '" + o.listen + "'");
  if (!split_host_port(o.admin_listen, cfg.admin_address, cfg.admin_port))
    return config_error("--admin-listen: expected address:port, got '" + o.admin_listen + "'");
  if (!o.relays.empty()) {
    if (o.relay_secret_file.empty()) return config_error("--relay needs --relay-secret-file (coturn's static-auth-secret)");
    std::ifstream in(o.relay_secret_file);
    std::string secret;
    if (!in || !std::getline(in, secret) || secret.empty())
      return config_error("--relay-secret-file: cannot read a secret from " + o.relay_secret_file);
    for (const auto& r : o.relays) {
      auto eq = r.find('=');
      if (eq == std::string::npos || eq == 0) return config_error("--relay: expected id=host:port, got '" + r + "'");
      std::string host;
      std::uint16_t port = 0;
      if (!split_host_port(r.substr(eq + 1), host, port)) return config_error("--relay: bad address in '" + r + "'");
      cfg.relays.push_back({r.substr(0, eq), r.substr(eq + 1), secret});
    }
  }
  cfg.relay_credential_lifetime = std::chrono::seconds(static_cast<long>(o.relay_credential_hours * 3600));
  cfg.sessions.heartbeat_timeout = std::chrono::milliseconds(static_cast<long>(o.heartbeat_timeout_s * 1000));
  cfg.flows.authorize_timeout = std::chrono::milliseconds(static_cast<long>(o.authorize_timeout_s * 1000));

  // Signals are waited for on this thread; block them before any other thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::optional<std::pair<std::string, std::uint16_t>> health_at;
  if (!o.health_listen.empty()) {
    health_at = config::parse_listen(o.health_listen);
    if (!health_at)
      return config_error("--health-listen: expected ADDRESS:PORT (IPv4, or [IPv6]; port 1-65535), got '" +
                          o.health_listen + "'");
  }

  portal::portal_node node(cfg);
  if (auto err = node.start()) {
    std::cerr << "firebreak portal: " << *err << "\n";
    return 1;
  }
  std::optional<websocket::http_endpoint> health;
  if (health_at) {
    health.emplace(websocket::http_endpoint_config{health_at->first, health_at->second}, [&node](const std::string& path) {
      return health_route(path, {[&] { return std::optional(node.stats()); },
                                 [&]() -> std::optional<std::string> {
                                   const auto j = nlohmann::json::parse(node.stats(), nullptr, false);
                                   if (!j.is_object() || !j.value("ready", false)) return std::nullopt;
                                   return portal_metrics_text(j);
                                 }});
    });
    if (auto e = health->start()) {
      std::cerr << "firebreak portal: cannot serve /healthz and /metrics: " << *e
                << "; choose another with --health-listen or FIREBREAK_PORTAL_HEALTH_LISTEN\n";
      node.stop();
      return 1;
    }
    component_logger("portal")->info("health and metrics: http://{}/healthz and /metrics", o.health_listen);
  }
  int sig = 0;
  sigwait(&signals, &sig);
  component_logger("portal")->info("received {}; closing every session and stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  health.reset();
  node.stop();
  return 0;
}

}  // namespace firebreak::apps
