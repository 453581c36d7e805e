// A small HTTPS server for JSON requests: the portal's admin API, on a port of its own.
//
// Keep-alive connections; one request at a time per connection; bodies up to max_body_bytes (413
// beyond); every response is application/json. The handler runs on the server's I/O thread(s) and
// may block briefly (a database write); a throw becomes 500 {"error":"internal error"}.
// Log lines carry the method, the path (never the query) and the status.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace firebreak::websocket {

struct json_request {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // as sent, query included (see target.hpp to split it)
  std::map<std::string, std::string> headers;  // names in lower case; repeated fields joined with ", "
  std::string body;
  std::string remote_address;
};

struct json_response {
  unsigned status = 200;
  std::string body;  // JSON text, sent as is
};

using json_handler = std::function<json_response(const json_request&)>;

struct https_server_config {
  std::string bind_address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: the system chooses; see https_server::port()
  std::filesystem::path cert_path;
  std::filesystem::path key_path;
  std::size_t max_body_bytes = 1 << 20;
  /// TLS handshake, and writing one response.
  std::chrono::milliseconds handshake_timeout = std::chrono::seconds(5);
  /// How long a kept-alive connection may wait for (and take to send) its next request.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(10);
  std::size_t max_connections = 1000;
  /// Connections from one address at once (whatever they are doing): an admin tool needs a few, so
  /// one address holding idle sockets cannot lock the others out.
  std::size_t max_unproven_per_source = 64;
  /// stop(): how long a response being written gets to finish.
  std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(1);
  unsigned threads = 1;
};

class https_server {
 public:
  https_server(https_server_config config, json_handler handler);
  ~https_server();  // stop()
  https_server(const https_server&) = delete;
  https_server& operator=(const https_server&) = delete;

  /// nullopt when listening; otherwise why not (naming the address and port, or the certificate).
  [[nodiscard]] std::optional<std::string> start();
  /// Stops accepting, closes idle connections, lets responses being written finish (bounded by
  /// shutdown_timeout), and joins the I/O threads. Idempotent; not from inside the handler.
  void stop();
  std::uint16_t port() const;

  struct core;

 private:
  std::unique_ptr<core> core_;
};

}  // namespace firebreak::websocket
