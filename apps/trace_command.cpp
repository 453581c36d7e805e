#include "apps/trace_command.hpp"

#include <fstream>
#include <iostream>

#include "apps/trace/render.hpp"
#include "apps/trace/timeline.hpp"

namespace firebreak::apps {

std::shared_ptr<trace_command> add_trace_command(CLI::App& app) {
  auto cmd = std::make_shared<trace_command>();
  auto* sub = app.add_subcommand("trace", "merge actor traces from several processes and render them as a text "
                                          "timeline, a Mermaid sequence diagram or an HTML page");
  sub->add_option("files", cmd->files, "trace files (a daemon's trace_file, and its rotated .1, .2, ...)")
      ->required();
  sub->add_option("--client", cmd->client, "only what concerns this client id");
  sub->add_option("--gateway", cmd->gateway, "only what concerns this gateway id");
  sub->add_option("--resource", cmd->resource, "only what concerns this resource id");
  sub->add_option("--connection", cmd->connection, "only this connection (its peer's id)");
  sub->add_option("--from", cmd->from, "from this time: unix milliseconds or 2026-11-26T08:03:01.309Z (UTC)");
  sub->add_option("--to", cmd->to, "up to this time, likewise");
  sub->add_option("--format", cmd->format, "text, mermaid or html")->check(CLI::IsMember({"text", "mermaid", "html"}));
  sub->add_option("--output,-o", cmd->output, "write here instead of to stdout");
  return cmd;
}

int run_trace(const trace_command& cmd) {
  trace_view::trace_filter filter{cmd.client, cmd.gateway, cmd.resource, cmd.connection, {}, {}};
  for (auto [text, into, name] : {std::tuple{&cmd.from, &filter.from_ms, "--from"}, {&cmd.to, &filter.to_ms, "--to"}}) {
    if (text->empty()) continue;
    *into = trace_view::parse_time(*text);
    if (!*into) {
      std::cerr << "firebreak trace: " << name << ": expected unix milliseconds or a UTC time like "
                << "2026-11-26T08:03:01.309Z, got \"" << *text << "\"\n";
      return 2;
    }
  }
  trace_view::read_report report;
  auto events = trace_view::read_files(cmd.files, report);
  if (report.unreadable_files.size() == cmd.files.size()) {
    std::cerr << "firebreak trace: cannot read any of the files given\n";
    return 1;
  }
  trace_view::merge(events);
  std::erase_if(events, [&](const trace_view::event& e) { return !filter.matches(e); });
  if (!report.clean()) std::cerr << "firebreak trace: " << report.describe() << "\n";

  std::ofstream file;
  if (!cmd.output.empty()) {
    file.open(cmd.output, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "firebreak trace: cannot write " << cmd.output << "\n";
      return 1;
    }
  }
  std::ostream& out = cmd.output.empty() ? std::cout : file;
  if (cmd.format == "mermaid")
    trace_view::render_mermaid(events, out);
  else if (cmd.format == "html")
    trace_view::render_html(events, report, out);
  else
    trace_view::render_text(events, report, out);
  return out.good() ? 0 : 1;
}

}  // namespace firebreak::apps
