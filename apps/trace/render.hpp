// A merged timeline (apps/trace/timeline.hpp) rendered for a person:
//   text     one line per event: time, process, sender → receiver, message, ids, summary
//   mermaid  a Mermaid sequence diagram
//   html     one self-contained page: the sequence diagram drawn as inline SVG (no script, no network),
//            the timeline as a table, and the Mermaid source
//
// Participants are (process, actor) pairs; "wire" and "portal" are shared by every process, so a
// goodbye reads gateway ice → wire → client ice. Processes of one role are told apart by a number in
// order of appearance ("gateway", "gateway 2").
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "apps/trace/timeline.hpp"

namespace firebreak::trace_view {

void render_text(const std::vector<event>& events, const read_report& report, std::ostream& out);
void render_mermaid(const std::vector<event>& events, std::ostream& out);
void render_html(const std::vector<event>& events, const read_report& report, std::ostream& out);

}  // namespace firebreak::trace_view
