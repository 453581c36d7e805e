#include "apps/trace/timeline.hpp"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "actors/trace/trace_recorder.hpp"

namespace firebreak::trace_view {

namespace {

using json = nlohmann::json;

bool text_field(const json& j, const char* name, std::string& out, bool required) {
  auto it = j.find(name);
  if (it == j.end()) return !required;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

template <class Int>
bool int_field(const json& j, const char* name, Int& out) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_number_integer()) return false;
  out = it->get<Int>();
  return true;
}

}  // namespace

std::string read_report::describe() const {
  std::ostringstream out;
  out << events << " event(s) from " << files << " file(s)";
  if (clean()) return out.str();
  out << "; skipped:";
  if (corrupt) out << " " << corrupt << " corrupt line(s)";
  if (truncated) out << " " << truncated << " truncated line(s)";
  if (other_version) out << " " << other_version << " line(s) of another trace format version";
  for (const auto& f : unreadable_files) out << " " << f << " (unreadable)";
  return out.str();
}

void read_trace(std::istream& in, std::vector<event>& out, read_report& report) {
  ++report.files;
  std::string line;
  while (std::getline(in, line)) {
    const bool last_without_newline = in.eof();
    if (line.empty()) continue;
    ++report.lines;
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      // The last line of a file whose writer stopped mid-line has no newline.
      ++(last_without_newline ? report.truncated : report.corrupt);
      continue;
    }
    int version = 0;
    if (!int_field(j, "v", version)) {
      ++report.corrupt;
      continue;
    }
    if (version != trace::format_version) {
      ++report.other_version;
      continue;
    }
    event e;
    const bool ok = int_field(j, "seq", e.seq) && int_field(j, "wall_us", e.wall_us) &&
                    int_field(j, "mono_ns", e.mono_ns) && text_field(j, "from", e.from, true) &&
                    text_field(j, "to", e.to, true) && text_field(j, "type", e.type, true) &&
                    text_field(j, "role", e.role, false) && text_field(j, "proc", e.proc, false) &&
                    text_field(j, "client", e.client, false) && text_field(j, "gateway", e.gateway, false) &&
                    text_field(j, "resource", e.resource, false) && text_field(j, "conn", e.conn, false) &&
                    text_field(j, "summary", e.summary, false);
    if (!ok) {
      ++report.corrupt;
      continue;
    }
    e.order_us = e.wall_us;
    ++report.events;
    out.push_back(std::move(e));
  }
}

std::vector<event> read_files(const std::vector<std::string>& paths, read_report& report) {
  std::vector<event> out;
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
      report.unreadable_files.push_back(p);
      continue;
    }
    read_trace(in, out, report);
  }
  return out;
}

void merge(std::vector<event>& events) {
  // Within a process: by sequence, with the wall clock never going back.
  std::stable_sort(events.begin(), events.end(), [](const event& a, const event& b) {
    return a.proc != b.proc ? a.proc < b.proc : a.seq < b.seq;
  });
  std::map<std::string, std::int64_t> last;
  for (auto& e : events) {
    auto [it, fresh] = last.try_emplace(e.proc, e.wall_us);
    e.order_us = fresh ? e.wall_us : std::max(it->second, e.wall_us);
    it->second = e.order_us;
  }
  std::stable_sort(events.begin(), events.end(), [](const event& a, const event& b) {
    if (a.order_us != b.order_us) return a.order_us < b.order_us;
    if (a.proc != b.proc) return a.proc < b.proc;
    return a.seq < b.seq;
  });
}

bool trace_filter::matches(const event& e) const {
  if (from_ms && e.wall_ms() < *from_ms) return false;
  if (to_ms && e.wall_ms() > *to_ms) return false;
  if (!client.empty() && e.client != client && !(e.role == "gateway" && e.conn == client)) return false;
  if (!gateway.empty() && e.gateway != gateway && !(e.role == "client" && e.conn == gateway)) return false;
  if (!resource.empty() && e.resource != resource) return false;
  if (!conn.empty() && e.conn != conn) return false;
  return true;
}

std::optional<std::int64_t> parse_time(const std::string& text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::stoll(text);
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (in.fail()) return std::nullopt;
  std::int64_t ms = 0;
  if (in.peek() == '.') {
    in.get();
    std::string digits;
    while (std::isdigit(in.peek())) digits += static_cast<char>(in.get());
    digits = (digits + "000").substr(0, 3);
    ms = std::stoll(digits);
  }
  if (in.peek() == 'Z') in.get();
  if (in.peek() != std::char_traits<char>::eof()) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + ms;
}

}  // namespace firebreak::trace_view
