#include "apps/health_routes.hpp"

#include <nlohmann/json.hpp>

namespace firebreak::apps {

websocket::http_answer health_route(const std::string& path, const health_sources& from) {
  if (path == "/healthz") {
    const auto health = from.health();
    if (!health) return {503, "application/json", R"({"ready":false,"error":"the daemon did not answer in time"})" "\n"};
    const auto j = nlohmann::json::parse(*health, nullptr, false);
    const bool ready = j.is_object() && j.value("ready", false);
    return {ready ? 200u : 503u, "application/json", *health + "\n"};
  }
  if (path == "/metrics") {
    auto text = from.metrics();
    if (!text) return {503, "text/plain; charset=utf-8", "the daemon did not answer in time\n"};
    return {200, "text/plain; version=0.0.4; charset=utf-8", std::move(*text)};
  }
  return {404, "text/plain; charset=utf-8", "not found: this endpoint serves /healthz and /metrics\n"};
}

}  // namespace firebreak::apps
