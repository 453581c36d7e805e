// libFuzzer target for the plain-HTTP endpoint (/healthz, /metrics): whoever reaches its port may send
// any bytes. The bytes go through the endpoint's own parsing, limits and routing (answer_for_bytes).
// Beyond "no crash, no sanitizer report":
//   * every answer has a status the endpoint can give (200, 400, 404, 405, 413, 431), never 500;
//   * the handler sees a path that starts with '/', without a query or fragment, and only for a GET
//     or HEAD whose headers fit the 8 KiB limit;
//   * the same bytes get the same answer.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "transport/websocket/http_endpoint.hpp"

namespace ws = firebreak::websocket;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  int handled = 0;
  const ws::http_get_handler route = [&](const std::string& path) -> ws::http_answer {
    ++handled;
    if (path.empty() || path.front() != '/' || path.find_first_of("?#") != std::string::npos) std::abort();
    if (path == "/healthz") return {200, "application/json", "{\"ready\":true}\n"};
    return {404, "text/plain; charset=utf-8", "not found\n"};
  };
  const auto a = ws::answer_for_bytes(bytes, route);
  if (handled > 1) std::abort();
  if (a) {
    switch (a->status) {
      case 200: case 404:
        if (handled != 1) std::abort();
        break;
      case 400: case 405: case 413: case 431:
        if (handled != 0) std::abort();
        break;
      default: std::abort();
    }
    if (size > 9 * 1024 && a->status == 200 && bytes.substr(0, 9 * 1024).find("\r\n\r\n") == std::string_view::npos)
      std::abort();  // headers past the limit were never routed
  }
  const auto again = ws::answer_for_bytes(bytes, route);
  if (a.has_value() != again.has_value() || (a && (a->status != again->status || a->body != again->body))) std::abort();
  return 0;
}
