// /metrics: a daemon's status rendered as Prometheus text, and the flow counters behind it.
#include <doctest/doctest.h>

#include <chrono>
#include <sstream>
#include <string>

#include "actors/node/flow_counters.hpp"
#include "apps/metrics_text.hpp"

using firebreak::apps::escape_label;
using firebreak::apps::node_metrics_text;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l == line) return true;
  return false;
}

}  // namespace

TEST_CASE("the setup histogram is cumulative, in milliseconds, with its sum and count") {
  firebreak::node::latency_histogram h;
  h.observe(3ms);
  h.observe(40ms);
  h.observe(40s);  // beyond the last bound: only in +Inf (the count)
  const auto j = h.to_json();
  CHECK(j["count"] == 3);
  CHECK(j["sum_ms"].get<double>() == doctest::Approx(40043.0));
  const auto& bounds = j["bounds_ms"];
  const auto& cumulative = j["cumulative"];
  REQUIRE(bounds.size() == cumulative.size());
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    const auto b = bounds[i].get<std::int64_t>();
    const std::uint64_t expect = (b >= 3 ? 1 : 0) + (b >= 40 ? 1 : 0);
    CHECK_MESSAGE(cumulative[i].get<std::uint64_t>() == expect, "bound " << b);
  }
}

TEST_CASE("a gateway's status as Prometheus text: every family typed, counters and gauges from the status") {
  firebreak::node::flow_counters flows;
  flows.requested = 3;
  flows.granted = 2;
  flows.refuse("not_granted");
  flows.handshakes = 4;
  flows.setup.observe(20ms);
  const json status = {
      {"role", "gateway"},
      {"health", {{"ready", true}, {"portal", {{"state", "joined"}}}, {"stopping", false}}},
      {"connections", json::array({{{"peer", "c1"}, {"state", "connected"}}, {{"peer", "c2"}, {"state", "connecting"}}})},
      {"goodbyes", {{"sent", {{"revoked", 2}}}, {"received", 1}}},
      {"flows", flows.to_json()},
      {"packets", {{"to_resources", 10}, {"to_clients", 9}}},
      {"bytes", {{"to_resources", 1000}, {"to_clients", 900}}},
      {"dropped", {{"not_granted", 5}, {"spoofed_source", 0}}},
  };
  const auto text = node_metrics_text(status);
  CHECK(has_line(text, "# TYPE firebreak_ready gauge"));
  CHECK(has_line(text, "firebreak_ready{role=\"gateway\"} 1"));
  CHECK(has_line(text, "firebreak_portal_joined{role=\"gateway\"} 1"));
  CHECK(has_line(text, "firebreak_connections{role=\"gateway\",state=\"connected\"} 1"));
  CHECK(has_line(text, "firebreak_connections{role=\"gateway\",state=\"connecting\"} 1"));
  CHECK(has_line(text, "firebreak_connections{role=\"gateway\",state=\"failed\"} 0"));
  CHECK(has_line(text, "firebreak_goodbyes_sent_total{role=\"gateway\",reason=\"revoked\"} 2"));
  CHECK(has_line(text, "firebreak_goodbyes_sent_total{role=\"gateway\",reason=\"shutdown\"} 0"));
  CHECK(has_line(text, "firebreak_goodbyes_received_total{role=\"gateway\"} 1"));
  CHECK(has_line(text, "firebreak_flows_requested_total{role=\"gateway\"} 3"));
  CHECK(has_line(text, "firebreak_flows_granted_total{role=\"gateway\"} 2"));
  CHECK(has_line(text, "firebreak_flows_refused_total{role=\"gateway\",reason=\"not_granted\"} 1"));
  CHECK(has_line(text, "firebreak_handshakes_total{role=\"gateway\"} 4"));
  CHECK(has_line(text, "firebreak_tunnel_bytes_total{role=\"gateway\",direction=\"to_resources\"} 1000"));
  CHECK(has_line(text, "firebreak_dropped_packets_total{role=\"gateway\",reason=\"not_granted\"} 5"));
  CHECK(has_line(text, "# TYPE firebreak_flow_setup_seconds histogram"));
  CHECK(has_line(text, "firebreak_flow_setup_seconds_bucket{role=\"gateway\",le=\"0.01\"} 0"));
  CHECK(has_line(text, "firebreak_flow_setup_seconds_bucket{role=\"gateway\",le=\"0.025\"} 1"));
  CHECK(has_line(text, "firebreak_flow_setup_seconds_bucket{role=\"gateway\",le=\"+Inf\"} 1"));
  CHECK(has_line(text, "firebreak_flow_setup_seconds_sum{role=\"gateway\"} 0.02"));
  CHECK(has_line(text, "firebreak_flow_setup_seconds_count{role=\"gateway\"} 1"));
}

TEST_CASE("a status without the fields (a daemon that did not answer in full) renders zeros, not garbage") {
  for (const auto& status : {json(), json::object(), json{{"role", "client"}}, json{{"flows", "nonsense"}},
                             json{{"connections", 5}, {"goodbyes", json::array()}}}) {
    const auto text = node_metrics_text(status);
    CHECK(has_line(text, "firebreak_ready{role=\"" + (status.is_object() ? status.value("role", std::string("unknown")) : std::string("unknown")) + "\"} 0"));
    CHECK(text.find("nan") == std::string::npos);
    CHECK(text.find("firebreak_flow_setup_seconds_count") != std::string::npos);
  }
}

TEST_CASE("label values are escaped as the text format requires") {
  CHECK(escape_label("plain") == "plain");
  CHECK(escape_label("a\"b") == "a\\\"b");
  CHECK(escape_label("a\\b") == "a\\\\b");
  CHECK(escape_label("a\nb") == "a\\nb");
  const json status = {{"role", "client"}, {"dropped", {{"we\"ird\nreason", 1}}}};
  CHECK(has_line(node_metrics_text(status), "firebreak_dropped_packets_total{role=\"client\",reason=\"we\\\"ird\\nreason\"} 1"));
}

TEST_CASE("the portal's stats as Prometheus text") {
  const json stats = {{"ready", true},
                      {"sessions", {{"clients", 3}, {"gateways", 2}}},
                      {"flows", {{"requested", 7}, {"granted", 5}, {"refused", {{"offline", 2}}}, {"pending", 1}}}};
  const auto text = firebreak::apps::portal_metrics_text(stats);
  CHECK(has_line(text, "firebreak_portal_ready{role=\"portal\"} 1"));
  CHECK(has_line(text, "firebreak_portal_sessions{role=\"portal\",kind=\"client\"} 3"));
  CHECK(has_line(text, "firebreak_portal_sessions{role=\"portal\",kind=\"gateway\"} 2"));
  CHECK(has_line(text, "firebreak_portal_flows_requested_total{role=\"portal\"} 7"));
  CHECK(has_line(text, "firebreak_portal_flows_granted_total{role=\"portal\"} 5"));
  CHECK(has_line(text, "firebreak_portal_flows_refused_total{role=\"portal\",reason=\"offline\"} 2"));
  CHECK(has_line(text, "firebreak_portal_flows_refused_total{role=\"portal\",reason=\"forbidden\"} 0"));
  CHECK(has_line(text, "firebreak_portal_flows_pending{role=\"portal\"} 1"));
  CHECK(has_line(firebreak::apps::portal_metrics_text(json{{"ready", false}, {"error", "x"}}),
                 "firebreak_portal_ready{role=\"portal\"} 0"));
}
