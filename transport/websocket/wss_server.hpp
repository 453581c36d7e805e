// A TLS WebSocket server on Boost.Beast: the endpoint clients and gateways keep open to the portal.
//
//   accept (within max_connections, and max_unproven_per_source for the address)
//     ─► TLS handshake ─► HTTP upgrade request ─► handler.on_open ─┬─ reject: HTTP status, no session
//   (one deadline, handshake_timeout, for all three)                     └─ accept: 101, session open
//   open: text messages ⇄ on_text / send(); any frame from the peer resets the idle clock
//   close: close() / idle / oversized (1009) / binary (1003) / slow reader (1008) / stop() (1001)
//          ─► queued messages flushed (not for an overflowing queue) ─► close frame ─► the peer's
//          close frame or a bound (handshake_timeout; shutdown_timeout on stop) ─► on_close
//
// Threading: one io_context run by `threads` threads; every session is bound to a strand of its own.
// send() and close() may be called from any thread: they post to the session's strand.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "transport/websocket/wss_handler.hpp"

namespace firebreak::websocket {

struct wss_server_config {
  std::string bind_address = "0.0.0.0";  // "::" listens on IPv6 and IPv4
  std::uint16_t port = 0;                // 0: the system chooses; see wss_server::port()
  std::filesystem::path cert_path;       // PEM, leaf first (tls_bootstrap's server-cert.pem)
  std::filesystem::path key_path;
  std::size_t max_message_bytes = 1 << 20;  // a longer text message closes the session with 1009
  /// From accept to an open session (TLS, upgrade request, 101); also bounds each close handshake.
  /// Short: a socket that says nothing holds a slot until then.
  std::chrono::milliseconds handshake_timeout = std::chrono::seconds(5);
  /// No frame at all from the peer (message, ping, pong) for this long closes the session with
  /// 1001 "idle". Peers keep a session alive by sending: Phoenix clients heartbeat every 30 s.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  /// A session whose unsent messages exceed either bound is closed with 1008 instead of growing.
  std::size_t max_outbound_bytes = 4 << 20;
  std::size_t max_outbound_messages = 4096;
  /// Connections (open or still handshaking) beyond this are closed as soon as they are accepted.
  std::size_t max_connections = 10000;
  /// Connections from one address still in their handshake (not yet upgraded) beyond this are closed
  /// on arrival: one address cannot fill max_connections with sockets that never speak. Open sessions
  /// do not count (many laptops may share one NAT address).
  std::size_t max_unproven_per_source = 256;
  /// stop(): how long open sessions get to flush their queues and finish the close handshake.
  std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(1);
  unsigned threads = 1;
};

class wss_server {
 public:
  /// `handler` must outlive the server. Nothing happens before start().
  wss_server(wss_server_config config, wss_handler& handler);
  ~wss_server();  // stop()
  wss_server(const wss_server&) = delete;
  wss_server& operator=(const wss_server&) = delete;

  /// Loads the certificate, binds, listens and starts the I/O threads. nullopt when listening;
  /// otherwise why not, for a person (naming the address and port, or the certificate file).
  /// A server starts at most once.
  [[nodiscard]] std::optional<std::string> start();

  /// Stops accepting, closes every session with 1001 "shutdown" (queues flushed, bounded by
  /// shutdown_timeout), calls on_close for each, and joins the I/O threads. Idempotent. Must not be
  /// called from a handler callback.
  void stop();

  /// The bound port once start() succeeded, else 0.
  std::uint16_t port() const;

  /// Queues a text message. false when the session is unknown, closing or closed, or when its
  /// outbound queue overflowed (the session is then being closed with 1008). Any thread.
  bool send(session_id id, std::string text);

  /// Flushes what was queued, then closes with `code` (a code one may send; others become 1000) and
  /// `reason` (cut to the 123 bytes a close frame holds). false when unknown or already closing. Any thread.
  bool close(session_id id, std::uint16_t code, std::string reason);

  /// Sessions accepted by on_open and not yet reported to on_close.
  std::size_t open_sessions() const;

  struct core;  // shared with the sessions (wss_session.hpp)

 private:
  std::unique_ptr<core> core_;
};

}  // namespace firebreak::websocket
