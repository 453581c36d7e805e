#include "apps/metrics_text.hpp"

#include <charconv>
#include <cstdint>
#include <map>
#include <sstream>

namespace firebreak::apps {

using json = nlohmann::json;

namespace {

std::uint64_t number(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return 0;
  const auto& v = j[key];
  return v.is_number_unsigned() || v.is_number_integer() ? v.get<std::uint64_t>() : 0;
}

class writer {
 public:
  explicit writer(std::string role) : role_(std::move(role)) {}

  void family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  /// One sample; `labels` is a list of key="value" pairs without braces (values escaped already).
  void sample(const std::string& name, const std::string& labels, double value) {
    out_ << name << "{role=\"" << role_ << "\"" << (labels.empty() ? "" : ",") << labels << "} ";
    // Counts as integers; anything else as the shortest text that reads back as the same double (no
    // 6-digit rounding of a large sum).
    if (value >= 0 && value < 9007199254740992.0 && value == static_cast<double>(static_cast<std::uint64_t>(value))) {
      out_ << static_cast<std::uint64_t>(value);
    } else {
      char text[64];
      const auto r = std::to_chars(text, text + sizeof text, value);
      out_.write(text, r.ptr - text);
    }
    out_ << "\n";
  }
  /// A counter family labelled by `label` from a JSON object {value: n}, with `always` listed at 0.
  void by_label(const char* name, const char* help, const char* label, const json& counts,
                std::initializer_list<const char*> always) {
    family(name, "counter", help);
    std::map<std::string, std::uint64_t> rows;
    for (const auto* a : always) rows[a] = 0;
    if (counts.is_object())
      for (const auto& [k, v] : counts.items())
        if (v.is_number()) rows[k] = v.get<std::uint64_t>();
    for (const auto& [k, v] : rows) sample(name, std::string(label) + "=\"" + escape_label(k) + "\"", double(v));
  }
  std::string text() const { return out_.str(); }

 private:
  std::string role_;
  std::ostringstream out_;
};

}  // namespace

std::string escape_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string node_metrics_text(const json& s) {
  const auto role = s.is_object() ? s.value("role", std::string("unknown")) : std::string("unknown");
  writer w(escape_label(role));
  const json empty = json::object();
  const auto& health = s.contains("health") ? s["health"] : empty;

  w.family("firebreak_ready", "gauge", "1 when the daemon is joined to the portal and serving (what /healthz says)");
  w.sample("firebreak_ready", "", health.value("ready", false) ? 1 : 0);
  w.family("firebreak_portal_joined", "gauge", "1 while the portal link is joined");
  const bool joined = health.contains("portal") && health["portal"].value("state", "") == "joined";
  w.sample("firebreak_portal_joined", "", joined ? 1 : 0);

  w.family("firebreak_connections", "gauge", "peer connections by state");
  std::map<std::string, std::uint64_t> states{{"connecting", 0}, {"connected", 0}, {"idle", 0}, {"closed", 0}, {"failed", 0}};
  if (s.contains("connections") && s["connections"].is_array())
    for (const auto& c : s["connections"])
      if (c.is_object()) ++states[c.value("state", std::string("unknown"))];
  for (const auto& [state, n] : states) w.sample("firebreak_connections", "state=\"" + escape_label(state) + "\"", double(n));

  const auto& goodbyes = s.contains("goodbyes") ? s["goodbyes"] : empty;
  w.by_label("firebreak_goodbyes_sent_total", "goodbyes this daemon sent through the tunnel, by reason", "reason",
             goodbyes.contains("sent") ? goodbyes["sent"] : empty,
             role == "gateway" ? std::initializer_list<const char*>{"revoked", "expired", "shutdown"}
                               : std::initializer_list<const char*>{"site_removed", "shutdown", "signed_out"});
  w.family("firebreak_goodbyes_received_total", "counter", "goodbyes received from peers (the wire carries no reason)");
  w.sample("firebreak_goodbyes_received_total", "", double(number(goodbyes, "received")));

  const auto& flows = s.contains("flows") ? s["flows"] : empty;
  w.family("firebreak_flows_requested_total", "counter",
           role == "gateway" ? "flows the portal asked this gateway to authorize" : "flows this client asked the portal for");
  w.sample("firebreak_flows_requested_total", "", double(number(flows, "requested")));
  w.family("firebreak_flows_granted_total", "counter", "flows granted");
  w.sample("firebreak_flows_granted_total", "", double(number(flows, "granted")));
  w.by_label("firebreak_flows_refused_total", "flows refused, by reason", "reason",
             flows.contains("refused") ? flows["refused"] : empty, {});
  w.family("firebreak_handshakes_total", "counter", "WireGuard handshakes completed (first sessions and rekeys)");
  w.sample("firebreak_handshakes_total", "", double(number(flows, "handshakes")));

  w.by_label("firebreak_tunnel_packets_total", "IP packets through the tunnel, by direction", "direction",
             s.contains("packets") ? s["packets"] : empty, {});
  w.by_label("firebreak_tunnel_bytes_total", "IP bytes through the tunnel, by direction", "direction",
             s.contains("bytes") ? s["bytes"] : empty, {});
  w.by_label("firebreak_dropped_packets_total", "packets dropped, by reason", "reason",
             s.contains("dropped") ? s["dropped"] : empty, {});

  w.family("firebreak_flow_setup_seconds", "histogram",
           "from the first request of a flow until its connection carries packets");
  const auto& setup = flows.contains("setup") ? flows["setup"] : empty;
  if (setup.contains("bounds_ms") && setup.contains("cumulative") && setup["bounds_ms"].size() == setup["cumulative"].size()) {
    for (std::size_t i = 0; i < setup["bounds_ms"].size(); ++i) {
      std::ostringstream le;
      le << setup["bounds_ms"][i].get<double>() / 1000.0;
      w.sample("firebreak_flow_setup_seconds_bucket", "le=\"" + le.str() + "\"", double(setup["cumulative"][i].get<std::uint64_t>()));
    }
  }
  w.sample("firebreak_flow_setup_seconds_bucket", "le=\"+Inf\"", double(number(setup, "count")));
  w.sample("firebreak_flow_setup_seconds_sum", "", setup.contains("sum_ms") ? setup["sum_ms"].get<double>() / 1000.0 : 0.0);
  w.sample("firebreak_flow_setup_seconds_count", "", double(number(setup, "count")));
  return w.text();
}

std::string portal_metrics_text(const json& stats) {
  writer w("portal");
  const json empty = json::object();
  const bool ready = stats.is_object() && stats.value("ready", false);
  w.family("firebreak_portal_ready", "gauge", "1 when the portal's actors answer (what /healthz says)");
  w.sample("firebreak_portal_ready", "", ready ? 1 : 0);
  const auto& sessions = stats.is_object() && stats.contains("sessions") ? stats["sessions"] : empty;
  w.family("firebreak_portal_sessions", "gauge", "clients and gateways joined now");
  w.sample("firebreak_portal_sessions", "kind=\"client\"", double(number(sessions, "clients")));
  w.sample("firebreak_portal_sessions", "kind=\"gateway\"", double(number(sessions, "gateways")));
  const auto& flows = stats.is_object() && stats.contains("flows") ? stats["flows"] : empty;
  w.family("firebreak_portal_flows_requested_total", "counter", "create_flow requests from clients");
  w.sample("firebreak_portal_flows_requested_total", "", double(number(flows, "requested")));
  w.family("firebreak_portal_flows_granted_total", "counter", "flows created (flow_created sent)");
  w.sample("firebreak_portal_flows_granted_total", "", double(number(flows, "granted")));
  w.by_label("firebreak_portal_flows_refused_total", "flows refused (flow_creation_failed), by reason", "reason",
             flows.contains("refused") ? flows["refused"] : empty, {"not_found", "offline", "forbidden"});
  w.family("firebreak_portal_flows_pending", "gauge", "authorize_flow sent to a gateway, not answered yet");
  w.sample("firebreak_portal_flows_pending", "", double(number(flows, "pending")));
  return w.text();
}

}  // namespace firebreak::apps
