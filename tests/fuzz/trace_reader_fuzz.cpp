// libFuzzer target for `firebreak trace`'s reader and renderers: a trace file is read back from
// wherever it was copied, so its bytes are untrusted. Beyond "no crash, no sanitizer report":
//   * every line is either an event or counted as skipped (corrupt, truncated, other version);
//   * the HTML page never carries a '<script', whatever the events say (their text is escaped, and
//     the page has no script of its own).
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "apps/trace/render.hpp"
#include "apps/trace/timeline.hpp"

namespace tv = firebreak::trace_view;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::stringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::vector<tv::event> events;
  tv::read_report report;
  tv::read_trace(in, events, report);
  if (report.events + report.corrupt + report.truncated + report.other_version != report.lines) std::abort();
  tv::merge(events);
  std::ostringstream text, mermaid, html;
  tv::render_text(events, report, text);
  tv::render_mermaid(events, mermaid);
  tv::render_html(events, report, html);
  const auto page = html.str();
  if (page.find("<script") != std::string::npos) std::abort();
  return 0;
}
