// `firebreak client` and `firebreak gateway`: the daemons, their `status` subcommands, and
// `firebreak client sign-out`.
// Settings come from flags, the environment and a TOML file, in that order (config/node_config.hpp).
#pragma once

#include <memory>

#include <CLI/CLI.hpp>

#include "config/node_config.hpp"

namespace firebreak::apps {

struct node_command {
  config::node_role role;
  CLI::App* app = nullptr;
  CLI::App* status = nullptr;
  CLI::App* sign_out = nullptr;  // client only
  CLI::App* trace = nullptr;     // `trace on|off`
  std::string trace_state;
  std::unique_ptr<config::node_config_loader> loader;
  std::string status_socket;  // for `status`
  bool status_json = false;
};

std::shared_ptr<node_command> add_node_command(CLI::App& app, config::node_role role);
/// Runs the daemon (or its status subcommand); returns the process's exit code.
int run_node(node_command& cmd, char** envp);

}  // namespace firebreak::apps
