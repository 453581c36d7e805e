// `firebreak admin`: the portal's admin API from a shell. Tables for people, `--json` for scripts.
//
//   firebreak admin [--portal host:port] [--token-file F] [--ca-file F] [--json] <entity> <action> ...
//
// The token comes from $FIREBREAK_ADMIN_TOKEN when set (never a flag: it would show in `ps`), otherwise
// from the token file the portal writes on its first start. Exit 0 on success, 1 when the portal refused
// or could not be reached, 2 for a usage error.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

namespace firebreak::apps {

/// One call to the admin API, as the chosen subcommand describes it.
struct admin_call {
  std::string method;
  std::string target;
  std::string body;  // JSON text; empty for GET and DELETE
};

struct admin_options {
  std::string portal = "127.0.0.1:8444";
  std::string token_file = "/var/lib/firebreak/portal/admin-token";
  std::string ca_file;  // empty: <dir of token_file>/tls/ca-cert.pem
  bool json = false;

  /// Set by the chosen leaf subcommand after parsing: builds the call (or a usage error, exit 2) ...
  std::function<bool(admin_call& call, std::string& usage_error)> build;
  /// ... and prints a successful answer for people.
  std::function<void(const std::string& body)> print;
};

std::shared_ptr<admin_options> add_admin_command(CLI::App& app);
int run_admin(const admin_options& options);

}  // namespace firebreak::apps
