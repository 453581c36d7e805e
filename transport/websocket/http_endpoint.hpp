// A plain-HTTP endpoint for what a supervisor and a scraper poll: a daemon's /healthz and /metrics.
//
// Plain HTTP on purpose: Nomad's and Consul's HTTP checks and Prometheus scrape it as they would any
// exporter, and it serves nothing secret (bind it to loopback or the cluster network). GET and HEAD
// only (405 otherwise); one request per connection (Connection: close); 64 connections at once and 8
// from one address (more are closed on arrival, a line a second logged); a request must arrive within
// request_timeout and fit in 8 KiB of headers (no body): a slow or oversized client is cut off
// without holding up the next. The handler runs on the endpoint's single I/O thread and may block
// briefly (it asks the daemon's actors).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace firebreak::websocket {

struct http_answer {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

/// The request's path (query removed) → the answer.
using http_get_handler = std::function<http_answer(const std::string& path)>;

struct http_endpoint_config {
  std::string bind_address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: the system chooses; see port()
  /// Short: an idle socket holds one of the 64 slots (8 per address) until then.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(2);
};

/// What the endpoint answers to `bytes`, all a client sent before its connection ended: the same
/// parsing, limits and routing as a live connection, without a socket (for the fuzz target and tests).
/// nullopt when nothing is answered (an empty or incomplete request).
std::optional<http_answer> answer_for_bytes(std::string_view bytes, const http_get_handler& handler);

class http_endpoint {
 public:
  http_endpoint(http_endpoint_config config, http_get_handler handler);
  ~http_endpoint();  // stop()
  http_endpoint(const http_endpoint&) = delete;
  http_endpoint& operator=(const http_endpoint&) = delete;

  /// nullopt when listening; otherwise why not, naming the address and port ("address in use").
  [[nodiscard]] std::optional<std::string> start();
  /// Stops listening, drops open connections and joins the I/O thread. Idempotent.
  void stop();
  std::uint16_t port() const;

  struct core;

 private:
  std::unique_ptr<core> core_;
};

}  // namespace firebreak::websocket
