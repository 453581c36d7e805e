// `firebreak trace`: reads actor traces from one or more processes, merges them into one timeline,
// filters it, and renders it for a person (apps/trace/render.hpp).
//
//   firebreak trace FILE... [--client ID] [--gateway ID] [--resource ID] [--connection ID]
//                   [--from TIME] [--to TIME] [--format text|mermaid|html] [--output FILE]
//
// Lines it cannot read (corrupt, cut short, another format version) are skipped, counted and said on
// stderr; the rest is rendered. Exit 0 when something was rendered, 1 when no file could be read, 2
// for a usage error.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace firebreak::apps {

struct trace_command {
  std::vector<std::string> files;
  std::string client, gateway, resource, connection, from, to;
  std::string format = "text";
  std::string output;  // empty: stdout
};

std::shared_ptr<trace_command> add_trace_command(CLI::App& app);
int run_trace(const trace_command& cmd);

}  // namespace firebreak::apps
