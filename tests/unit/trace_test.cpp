// The actor trace: the recorder (off by default, rotation, bounded queue) and reading traces back
// (bad lines skipped and counted, merge order across processes, filters, the three renderings).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "actors/trace/trace_recorder.hpp"
#include "apps/trace/render.hpp"
#include "apps/trace/timeline.hpp"

using namespace firebreak;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    char name[] = "/tmp/firebreak-trace-test-XXXXXX";
    path = ::mkdtemp(name);
  }
  ~temp_dir() { fs::remove_all(path); }
};

std::string line(std::uint64_t seq, std::int64_t wall, const std::string& proc, const std::string& role,
                 const std::string& from, const std::string& to, const std::string& type, nlohmann::json extra = {}) {
  nlohmann::json j = {{"v", 1},       {"seq", seq}, {"mono_ns", seq * 1000}, {"wall_us", wall * 1000}, {"role", role},
                      {"proc", proc}, {"from", from}, {"to", to},            {"type", type}};
  if (extra.is_object()) j.update(extra);
  return j.dump();
}


}  // namespace

TEST_CASE("the recorder: off by default, then JSON lines with the keys given, rotated") {
  temp_dir dir;
  auto& r = trace::recorder::instance();
  CHECK_FALSE(trace::on());
  trace::record("a", "b", "ignored", {});  // off: nothing happens
  std::string why;
  r.configure({});
  CHECK_FALSE(r.set_enabled(true, why));  // no file configured
  CHECK(why.find("trace_file") != std::string::npos);

  const auto file = dir.path / "node.trace.jsonl";
  r.configure({.path = file.string(), .max_bytes = 2000, .files = 3, .max_pending = 100000, .role = "gateway",
               .proc = "gw-test"});
  REQUIRE(r.set_enabled(true, why));
  CHECK(trace::on());
  trace::record("authorization", "gateway_tunnel", "client_unauthorized", {"client-1", "", "", "client-1"}, "revoked");
  for (int i = 0; i < 100; ++i) trace::record("x", "y", "filler", {});
  REQUIRE(r.set_enabled(false, why));
  r.shutdown();
  CHECK_FALSE(trace::on());

  // Rotated: the newest file and .1, .2; nothing beyond the configured three.
  CHECK(fs::exists(file));
  CHECK(fs::exists(file.string() + ".1"));
  CHECK(fs::exists(file.string() + ".2"));
  CHECK_FALSE(fs::exists(file.string() + ".3"));
  CHECK(fs::file_size(file) <= 2000);
  CHECK((fs::status(file).permissions() & fs::perms::others_read) == fs::perms::none);
  const auto s = r.stats();
  CHECK(s.recorded == 101);
  CHECK(s.rotations >= 2);

  // The oldest kept file may have lost the first record; the newest holds the last ones, well formed.
  std::ifstream in(file);
  std::string last;
  for (std::string l; std::getline(in, l);) last = l;
  auto j = nlohmann::json::parse(last);
  CHECK(j.at("v") == 1);
  CHECK(j.at("role") == "gateway");
  CHECK(j.at("proc") == "gw-test");
  CHECK(j.at("type") == "filler");
  CHECK_FALSE(j.contains("client"));  // keys that do not apply are left out
}

TEST_CASE("reading traces: corrupt, truncated and other-version lines are skipped and counted") {
  std::stringstream in;
  in << line(0, 1000, "gw", "gateway", "portal", "portal_link", "reject_access") << "\n"
     << "this is not json\n"
     << R"({"v":2,"seq":1,"wall_us":1001000,"mono_ns":1,"from":"a","to":"b","type":"future"})" << "\n"
     << R"({"v":1,"seq":"two","wall_us":1002000,"mono_ns":2,"from":"a","to":"b","type":"bad seq"})" << "\n"
     << line(3, 1003, "gw", "gateway", "authorization", "gateway_tunnel", "client_unauthorized") << "\n"
     << R"({"v":1,"seq":4,"wall_us":10)";  // the writer stopped mid-line
  std::vector<trace_view::event> events;
  trace_view::read_report report;
  trace_view::read_trace(in, events, report);
  REQUIRE(events.size() == 2);
  CHECK(report.corrupt == 2);
  CHECK(report.other_version == 1);
  CHECK(report.truncated == 1);
  CHECK_FALSE(report.clean());
  const auto said = report.describe();
  CHECK(said.find("2 corrupt") != std::string::npos);
  CHECK(said.find("1 truncated") != std::string::npos);
  CHECK(said.find("another trace format version") != std::string::npos);

  trace_view::read_report missing;
  auto none = trace_view::read_files({"/nonexistent/trace.jsonl"}, missing);
  CHECK(none.empty());
  CHECK(missing.unreadable_files.size() == 1);
}

TEST_CASE("merge: by wall clock across processes, by sequence within one even if its clock steps back") {
  std::stringstream gw, cl;
  gw << line(0, 1000, "gw", "gateway", "portal", "portal_link", "reject_access") << "\n"
     << line(1, 1002, "gw", "gateway", "wireguard", "ice", "goodbye") << "\n"
     << line(2, 990, "gw", "gateway", "ice", "wire", "goodbye") << "\n";  // the clock stepped back
  cl << line(0, 1001, "cl", "client", "portal", "portal_link", "resource_deleted") << "\n"
     << line(1, 1003, "cl", "client", "wire", "ice", "goodbye") << "\n";
  std::vector<trace_view::event> events;
  trace_view::read_report report;
  trace_view::read_trace(gw, events, report);
  trace_view::read_trace(cl, events, report);
  trace_view::merge(events);
  std::vector<std::string> order;
  for (const auto& e : events) order.push_back(e.proc + ":" + e.from + ">" + e.to);
  CHECK(order == std::vector<std::string>{"gw:portal>portal_link", "cl:portal>portal_link", "gw:wireguard>ice",
                                          "gw:ice>wire", "cl:wire>ice"});
}

TEST_CASE("filters: by client (named, or the gateway's connection peer), resource and time") {
  std::stringstream in;
  in << line(0, 1000, "gw", "gateway", "supervisor", "authorization", "reject_access",
             {{"client", "c1"}, {"resource", "r1"}})
     << "\n"
     << line(1, 1001, "gw", "gateway", "gateway_tunnel", "connection", "close_connection", {{"conn", "c1"}}) << "\n"
     << line(2, 1002, "gw", "gateway", "gateway_tunnel", "connection", "close_connection", {{"conn", "c2"}}) << "\n"
     << line(3, 1003, "cl", "client", "connection", "client_tunnel", "connection_event", {{"conn", "c1"}}) << "\n";
  std::vector<trace_view::event> events;
  trace_view::read_report report;
  trace_view::read_trace(in, events, report);
  auto count = [&](const trace_view::trace_filter& f) {
    return std::count_if(events.begin(), events.end(), [&](const auto& e) { return f.matches(e); });
  };
  CHECK(count({.client = "c1"}) == 2);  // the client's own trace names gateways, not itself
  CHECK(count({.resource = "r1"}) == 1);
  CHECK(count({.gateway = "c1"}) == 1);  // on the client, the connection's peer is a gateway
  CHECK(count({.from_ms = 1001, .to_ms = 1002}) == 2);
  CHECK(trace_view::parse_time("1795680181309") == 1795680181309);
  CHECK(trace_view::parse_time("2026-11-26T08:03:01.309Z") == 1795680181309);
  CHECK(trace_view::parse_time("2026-11-26T08:03:01") == 1795680181000);
  CHECK_FALSE(trace_view::parse_time("yesterday"));
  CHECK_FALSE(trace_view::parse_time("2026-11-26T08:03:01.309Z trailing"));
}

TEST_CASE("rendering: text, Mermaid and a self-contained HTML page with the goodbye arrow") {
  std::stringstream in;
  in << line(0, 1795680181309, "gw", "gateway", "wireguard", "ice", "goodbye", {{"conn", "c1"}, {"summary", "sealed"}})
     << "\n"
     << line(1, 1795680181310, "gw", "gateway", "ice", "wire", "goodbye", {{"conn", "c1"}}) << "\n"
     << line(0, 1795680181311, "cl", "client", "wire", "ice", "goodbye", {{"conn", "g1"}}) << "\n"
     << line(1, 1795680181312, "cl", "client", "ice", "wireguard", "goodbye",
             {{"conn", "g1"}, {"summary", "<script>alert(1)</script>"}})
     << "\n";
  std::vector<trace_view::event> events;
  trace_view::read_report report;
  trace_view::read_trace(in, events, report);
  trace_view::merge(events);

  std::ostringstream text, mermaid, html;
  trace_view::render_text(events, report, text);
  trace_view::render_mermaid(events, mermaid);
  trace_view::render_html(events, report, html);
  CHECK(text.str().find("08:03:01.309  gateway") != std::string::npos);
  CHECK(text.str().find("wireguard -> ice") != std::string::npos);
  CHECK(text.str().find("4 event(s) from 1 file(s)") != std::string::npos);

  const auto m = mermaid.str();
  CHECK(m.rfind("sequenceDiagram\n", 0) == 0);
  CHECK(m.find("participant p0 as gateway wireguard") != std::string::npos);
  CHECK(m.find("participant p2 as wire") != std::string::npos);  // shared by both processes
  CHECK(m.find("p1->>p2: goodbye") != std::string::npos);
  CHECK(m.find("p2->>p3: goodbye") != std::string::npos);

  const auto h = html.str();
  CHECK(h.find("<svg") != std::string::npos);
  CHECK(h.find("class=\"message goodbye\"") != std::string::npos);
  CHECK(h.find("<script") == std::string::npos);  // escaped, and the page has none of its own
  CHECK(h.find("&lt;script&gt;") != std::string::npos);
  CHECK(h.find(" src=") == std::string::npos);  // nothing to fetch from anywhere
  CHECK(h.find("<link") == std::string::npos);
}
