#include "apps/trace/render.hpp"

#include <ctime>
#include <iomanip>
#include <map>
#include <sstream>

namespace firebreak::trace_view {

namespace {

std::string clock_of(std::int64_t wall_ms) {
  const std::time_t s = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(wall_ms % 1000));
  return buf;
}

std::string short_id(const std::string& id) { return id.size() > 8 ? id.substr(0, 8) : id; }

std::string ids_of(const event& e) {
  std::string out;
  auto add = [&](const char* name, const std::string& v) {
    if (!v.empty()) out += (out.empty() ? "" : " ") + std::string(name) + "=" + short_id(v);
  };
  add("client", e.client);
  add("gateway", e.gateway);
  add("resource", e.resource);
  if (e.conn != e.client && e.conn != e.gateway) add("conn", e.conn);
  return out;
}

/// Who appears in the diagram, in order of appearance.
class cast {
 public:
  struct member {
    std::string label;
  };
  std::size_t of(const event& e, const std::string& actor) {
    const bool shared = actor == "wire" || actor == "portal";
    const auto key = shared ? actor : e.proc + "/" + actor;
    if (auto it = index_.find(key); it != index_.end()) return it->second;
    members.push_back({shared ? actor : process_label(e) + " " + actor});
    index_[key] = members.size() - 1;
    return members.size() - 1;
  }
  std::string process_label(const event& e) {
    if (auto it = procs_.find(e.proc); it != procs_.end()) return it->second;
    const auto role = e.role.empty() ? std::string("process") : e.role;
    const int n = ++per_role_[role];
    return procs_[e.proc] = n == 1 ? role : role + " " + std::to_string(n);
  }
  std::vector<member> members;

 private:
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> procs_;
  std::map<std::string, int> per_role_;
};

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

/// Mermaid's message and alias text: no characters it treats as syntax.
std::string mermaid_text(const std::string& s) {
  std::string out;
  for (char c : s) out += (c == ';' || c == '#' || c == '\n' || c == '\r' || c == '%') ? ',' : c;
  return out;
}

std::string label_of(const event& e) {
  std::string l = e.type;
  if (!e.summary.empty()) l += ": " + e.summary;
  return l;
}

bool is_goodbye(const event& e) {
  return e.type == "goodbye" || e.summary.find("goodbye") != std::string::npos;
}

}  // namespace

void render_text(const std::vector<event>& events, const read_report& report, std::ostream& out) {
  cast who;
  for (const auto& e : events) {
    std::ostringstream line;
    line << clock_of(e.wall_ms()) << "  " << std::left << std::setw(10) << who.process_label(e) << "  "
         << std::setw(34) << (e.from + " -> " + e.to) << "  " << std::setw(26) << e.type;
    const auto ids = ids_of(e);
    if (!ids.empty()) line << "  [" << ids << "]";
    if (!e.summary.empty()) line << "  " << e.summary;
    out << line.str() << "\n";
  }
  out << "-- " << report.describe() << "\n";
}

void render_mermaid(const std::vector<event>& events, std::ostream& out) {
  cast who;
  std::ostringstream body;
  for (const auto& e : events) {
    const auto from = who.of(e, e.from), to = who.of(e, e.to);
    std::string text = label_of(e);
    const auto ids = ids_of(e);
    if (!ids.empty()) text += " (" + ids + ")";
    body << "    p" << from << "->>p" << to << ": " << mermaid_text(text) << "\n";
  }
  out << "sequenceDiagram\n";
  for (std::size_t i = 0; i < who.members.size(); ++i)
    out << "    participant p" << i << " as " << mermaid_text(who.members[i].label) << "\n";
  out << body.str();
}

void render_html(const std::vector<event>& events, const read_report& report, std::ostream& out) {
  cast who;
  struct arrow {
    std::size_t from, to;
    const event* e;
  };
  std::vector<arrow> arrows;
  for (const auto& e : events) {
    const auto from = who.of(e, e.from), to = who.of(e, e.to);
    arrows.push_back({from, to, &e});
  }
  constexpr int left = 110, column = 180, head = 70, row = 34;
  const int width = left + static_cast<int>(who.members.size()) * column + 20;
  const int height = head + static_cast<int>(arrows.size()) * row + 30;
  auto x_of = [&](std::size_t i) { return left + static_cast<int>(i) * column + column / 2; };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"sequence\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height << "\">\n"
      << "<defs><marker id=\"head\" markerWidth=\"10\" markerHeight=\"8\" refX=\"9\" refY=\"4\" orient=\"auto\">"
         "<path d=\"M0,0 L10,4 L0,8 z\" fill=\"#333\"/></marker>"
         "<marker id=\"head-bye\" markerWidth=\"10\" markerHeight=\"8\" refX=\"9\" refY=\"4\" orient=\"auto\">"
         "<path d=\"M0,0 L10,4 L0,8 z\" fill=\"#c0392b\"/></marker></defs>\n";
  for (std::size_t i = 0; i < who.members.size(); ++i) {
    const int x = x_of(i);
    svg << "<g class=\"participant\"><rect x=\"" << x - column / 2 + 6 << "\" y=\"10\" width=\"" << column - 12
        << "\" height=\"40\" rx=\"6\"/><text x=\"" << x << "\" y=\"35\">" << escape_html(who.members[i].label)
        << "</text><line class=\"life\" x1=\"" << x << "\" y1=\"50\" x2=\"" << x << "\" y2=\"" << height - 10
        << "\"/></g>\n";
  }
  for (std::size_t i = 0; i < arrows.size(); ++i) {
    const auto& a = arrows[i];
    const int y = head + static_cast<int>(i) * row + 20;
    const bool bye = is_goodbye(*a.e);
    const std::string label = label_of(*a.e);
    svg << "<g class=\"message" << (bye ? " goodbye" : "") << "\" data-type=\"" << escape_html(a.e->type)
        << "\" data-from=\"" << escape_html(who.members[a.from].label) << "\" data-to=\""
        << escape_html(who.members[a.to].label) << "\"><title>" << escape_html(clock_of(a.e->wall_ms()) + " " + label + " " + ids_of(*a.e))
        << "</title><text class=\"time\" x=\"8\" y=\"" << y + 4 << "\">" << clock_of(a.e->wall_ms()) << "</text>";
    const int x1 = x_of(a.from), x2 = x_of(a.to);
    const char* marker = bye ? "url(#head-bye)" : "url(#head)";
    if (a.from == a.to) {
      svg << "<path d=\"M" << x1 << "," << y - 6 << " h30 v12 h-28\" fill=\"none\" marker-end=\"" << marker << "\"/>";
      svg << "<text class=\"label\" x=\"" << x1 + 36 << "\" y=\"" << y + 4 << "\" text-anchor=\"start\">";
    } else {
      svg << "<line x1=\"" << x1 << "\" y1=\"" << y << "\" x2=\"" << x2 + (x2 > x1 ? -2 : 2) << "\" y2=\"" << y
          << "\" marker-end=\"" << marker << "\"/>";
      svg << "<text class=\"label\" x=\"" << (x1 + x2) / 2 << "\" y=\"" << y - 5 << "\">";
    }
    svg << escape_html(label.size() > 48 ? label.substr(0, 45) + "..." : label) << "</text></g>\n";
  }
  svg << "</svg>\n";

  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>Firebreak actor trace</title>\n"
      << "<style>\n"
         "body{font-family:sans-serif;margin:16px;color:#222}\n"
         "svg text{font-size:12px;text-anchor:middle;fill:#222}\n"
         "svg text.time{text-anchor:start;fill:#777;font-family:monospace}\n"
         ".participant rect{fill:#eef3fb;stroke:#4a6fa5}\n"
         ".participant .life{stroke:#aab;stroke-dasharray:4 4}\n"
         ".message line,.message path{stroke:#333;stroke-width:1.4}\n"
         ".message.goodbye line,.message.goodbye path{stroke:#c0392b;stroke-width:2.2}\n"
         ".message.goodbye text.label{fill:#c0392b;font-weight:bold}\n"
         "table{border-collapse:collapse;font-size:12px;margin-top:16px}\n"
         "td,th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left;font-family:monospace}\n"
         "tr.goodbye td{color:#c0392b}\n"
         "</style></head><body>\n"
      << "<h1>Firebreak actor trace</h1>\n<p id=\"summary\">" << escape_html(report.describe()) << ". Times are UTC.</p>\n"
      << "<div id=\"diagram\">\n" << svg.str() << "</div>\n<table id=\"timeline\"><tr><th>time</th><th>process</th>"
      << "<th>from</th><th>to</th><th>message</th><th>ids</th><th>summary</th></tr>\n";
  cast rows;
  for (const auto& e : events)
    out << "<tr" << (is_goodbye(e) ? " class=\"goodbye\"" : "") << "><td>" << clock_of(e.wall_ms()) << "</td><td>"
        << escape_html(rows.process_label(e)) << "</td><td>" << escape_html(e.from) << "</td><td>" << escape_html(e.to)
        << "</td><td>" << escape_html(e.type) << "</td><td>" << escape_html(ids_of(e)) << "</td><td>"
        << escape_html(e.summary) << "</td></tr>\n";
  std::ostringstream mermaid;
  render_mermaid(events, mermaid);
  out << "</table>\n<details><summary>Mermaid source</summary><pre id=\"mermaid\">" << escape_html(mermaid.str())
      << "</pre></details>\n</body></html>\n";
}

}  // namespace firebreak::trace_view
