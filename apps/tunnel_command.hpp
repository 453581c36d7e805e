// `firebreak tunnel`: a WireGuard-compatible interface from a wg-quick style file.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

namespace firebreak::apps {

struct tunnel_options {
  std::string config_file;
  std::string interface;
  std::string log_level = "info";
};

std::shared_ptr<tunnel_options> add_tunnel_command(CLI::App& app);
int run_tunnel(const tunnel_options& options);

}  // namespace firebreak::apps
