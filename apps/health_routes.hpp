// GET /healthz and /metrics, answered alike by every daemon (client, gateway, portal):
//   /healthz  the daemon's health JSON; 200 when its "ready" is true, else 503 (no answer: 503 saying so)
//   /metrics  Prometheus text; 503 when the daemon did not answer (counters sent as zeros would read as
//             a reset to a scraper)
//   anything else 404
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "transport/websocket/http_endpoint.hpp"

namespace firebreak::apps {

struct health_sources {
  std::function<std::optional<std::string>()> health;   // JSON text with "ready"; nullopt: no answer in time
  std::function<std::optional<std::string>()> metrics;  // Prometheus text; nullopt: no answer in time
};

websocket::http_answer health_route(const std::string& path, const health_sources& from);

}  // namespace firebreak::apps
