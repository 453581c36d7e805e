// `firebreak portal`: the control plane. Configuration from a file, the environment (FIREBREAK_PORTAL_*)
// and flags, flags winning.
#pragma once

#include <memory>

#include <CLI/CLI.hpp>

#include "actors/portal/portal_node.hpp"

namespace firebreak::apps {

struct portal_options {
  portal::portal_config config;
  std::string listen = "0.0.0.0:8443";
  std::string admin_listen = "127.0.0.1:8444";
  std::string health_listen;  // empty: no /healthz and /metrics
  std::vector<std::string> relays;  // "id=host:port"
  std::string relay_secret_file;
  double heartbeat_timeout_s = 60;
  double relay_credential_hours = 24;
  double authorize_timeout_s = 10;
  std::string log_level = "info";
};

std::shared_ptr<portal_options> add_portal_command(CLI::App& app);
int run_portal(portal_options& options);

}  // namespace firebreak::apps
