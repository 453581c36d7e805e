// A whole portal in one process: the store, presence and flow-coordinator actors, one session actor per
// WebSocket, the TLS WebSocket server for clients and gateways and the HTTPS admin API beside it.
//
//   start(): open (create, migrate) the store ─> certificates (given, or a private CA made on first
//            start) ─> actors ─> WebSocket server ─> admin server
//   stop():  servers stop accepting and close every session (1001) ─> actors exit
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/portal/flow_coordinator.hpp"
#include "actors/portal/relay_credentials.hpp"
#include "actors/portal/session.hpp"

namespace firebreak::portal {

struct portal_config {
  std::filesystem::path data_dir = "/var/lib/firebreak/portal";  // portal.db, tls/, admin-token
  std::string listen_address = "0.0.0.0";
  std::uint16_t listen_port = 8443;
  std::string admin_address = "127.0.0.1";
  std::uint16_t admin_port = 8444;
  /// Names and addresses clients use to reach the portal: the generated certificate's SANs.
  std::vector<std::string> hostnames = {"localhost", "127.0.0.1"};
  /// A certificate and key of your own; when empty, the portal makes a private CA on first start.
  std::filesystem::path tls_cert, tls_key;
  std::vector<relay_server> relays;
  /// How long minted TURN credentials work; joined peers are sent fresh ones at half this.
  std::chrono::seconds relay_credential_lifetime{std::chrono::hours(24)};
  session_settings sessions;
  coordinator_settings flows;
};

class portal_node {
 public:
  explicit portal_node(portal_config config);
  ~portal_node();
  portal_node(const portal_node&) = delete;
  portal_node& operator=(const portal_node&) = delete;

  /// Starts everything; on failure, a message a person can act on (and nothing left running).
  std::optional<std::string> start();
  void stop();

  std::uint16_t port() const;
  std::uint16_t admin_port() const;
  /// The CA file clients and gateways must trust (the generated one, or empty with your own certificate).
  const std::filesystem::path& ca_file() const;
  /// Written on first start (0600) beside the database; `firebreak admin` reads it by default.
  std::filesystem::path admin_token_file() const;
  /// A fresh admin token was made on this start (and written to admin_token_file()).
  bool admin_token_created() const;
  /// What /healthz and /metrics show: {"ready", "sessions": {"clients", "gateways"}, "flows": {...}}
  /// as JSON; ready is false (with "error") when the actors did not answer within 2 s or the portal
  /// is not started. Blocks up to that long; call from outside the actors.
  std::string stats() const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace firebreak::portal
