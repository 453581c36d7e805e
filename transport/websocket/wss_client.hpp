// A blocking TLS WebSocket client with deadlines: for tests, and for daemons that keep one socket to
// the portal on a thread of their own. Every call runs the client's private io_context on the calling
// thread until it is done or its timeout passes; nothing runs in between (so pings are answered only
// while a call is in progress). One thread at a time per client.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "transport/websocket/client_error.hpp"
#include "transport/websocket/https_client.hpp"

namespace firebreak::websocket {

class wss_client;

struct wss_connect_result {
  std::unique_ptr<wss_client> client;  // set exactly when error is not
  std::optional<client_error> error;
};

struct receive_result {
  std::optional<std::string> text;    // a message
  std::optional<client_error> error;  // the connection is over (kind::closed: by a close frame)
  /// Neither: the timeout passed with no message; the client is still usable.
  bool timed_out() const { return !text && !error; }
};

class wss_client {
 public:
  /// Connects to host:port over TLS, trusting only the CA certificates in `ca_file` and checking
  /// that the certificate is for `host` (a DNS name, sent as SNI, or an IP literal), then upgrades
  /// with `target` ("/socket/websocket?token=..."). An upgrade answered with an HTTP error gives
  /// kind::refused with the status and the response body as message. `timeout` bounds the whole.
  static wss_connect_result connect(const std::string& host, std::uint16_t port, const std::string& target,
                                    const std::filesystem::path& ca_file, std::chrono::milliseconds timeout);

  ~wss_client();  // close() with a short bound when still open
  wss_client(const wss_client&) = delete;
  wss_client& operator=(const wss_client&) = delete;

  /// Sends one text message. On error or timeout the connection is over.
  std::optional<client_error> send_text(std::string_view text,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// For tests of servers that must refuse binary messages.
  std::optional<client_error> send_binary(std::string_view bytes,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// The next text message, or nothing within `timeout` (the read stays pending for the next call),
  /// or the end of the connection.
  receive_result receive_text(std::chrono::milliseconds timeout);
  /// Sends a close frame and waits for the server's (bounded by `timeout`); then the socket is closed.
  void close(std::uint16_t code = 1000, std::string_view reason = {},
             std::chrono::milliseconds timeout = std::chrono::seconds(5));
  bool is_open() const;

  struct impl;

 private:
  explicit wss_client(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

}  // namespace firebreak::websocket
