// firebreak: one binary, one subcommand per role. Thin: parse the command line, hand over, exit.
#include <CLI/CLI.hpp>

#include "apps/admin_command.hpp"
#include "apps/node_command.hpp"
#include "apps/portal_command.hpp"
#include "apps/trace_command.hpp"
#include "apps/tunnel_command.hpp"

int main(int argc, char** argv, char** envp) {
  CLI::App app{"Firebreak: zero-trust access with connections that close actively."};
  app.require_subcommand(1);
  auto tunnel = firebreak::apps::add_tunnel_command(app);
  auto admin = firebreak::apps::add_admin_command(app);
  auto portal = firebreak::apps::add_portal_command(app);
  auto client = firebreak::apps::add_node_command(app, firebreak::config::node_role::client);
  auto gateway = firebreak::apps::add_node_command(app, firebreak::config::node_role::gateway);
  auto trace = firebreak::apps::add_trace_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints help (exit 0) or the error; usage errors exit 2 like config errors.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (app.got_subcommand("tunnel")) return firebreak::apps::run_tunnel(*tunnel);
  if (app.got_subcommand("admin")) return firebreak::apps::run_admin(*admin);
  if (app.got_subcommand("portal")) return firebreak::apps::run_portal(*portal);
  if (app.got_subcommand("client")) return firebreak::apps::run_node(*client, envp);
  if (app.got_subcommand("gateway")) return firebreak::apps::run_node(*gateway, envp);
  if (app.got_subcommand("trace")) return firebreak::apps::run_trace(*trace);
  return 2;
}
