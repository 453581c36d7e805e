// A daemon's status (the JSON its status command shows) as Prometheus text exposition format 0.0.4,
// for GET /metrics. Counters are the actors' own monotonic counts; gauges are what holds now.
//
//   firebreak_ready, firebreak_portal_joined                       gauges, 0 or 1
//   firebreak_connections{state}                                  gauge, every state listed
//   firebreak_goodbyes_sent_total{reason}, firebreak_goodbyes_received_total
//   firebreak_flows_requested_total, _granted_total, firebreak_flows_refused_total{reason}
//       (a client's requests include its retries: one every 2 s while a flow is pending)
//   firebreak_handshakes_total                                    WireGuard handshakes completed
//   firebreak_tunnel_packets_total{direction}, firebreak_tunnel_bytes_total{direction}
//   firebreak_dropped_packets_total{reason}
//   firebreak_flow_setup_seconds                                  histogram
//
// A received goodbye carries no reason on the wire (it is byte-compatible with Firezone's), so
// received goodbyes are one counter.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace firebreak::apps {

/// Every metric above, labelled role="client" or "gateway"; fields missing from `status` are 0.
std::string node_metrics_text(const nlohmann::json& status);

/// The portal's stats (portal_node::stats()) as Prometheus text:
///   firebreak_portal_ready                                  gauge, 0 or 1
///   firebreak_portal_sessions{kind="client"|"gateway"}      gauge, joined now (every sample role="portal")
///   firebreak_portal_flows_requested_total, _granted_total  counters
///   firebreak_portal_flows_refused_total{reason}            counter (not_found, offline, forbidden)
///   firebreak_portal_flows_pending                          gauge, authorize_flow sent, not answered yet
std::string portal_metrics_text(const nlohmann::json& stats);

/// Escapes a label value (backslash, double quote, newline) as the text format wants it.
std::string escape_label(const std::string& value);

}  // namespace firebreak::apps
