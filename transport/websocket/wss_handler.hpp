// What a wss_server tells its owner about each WebSocket session, and what the owner answers.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace firebreak::websocket {

/// Increasing from 1 in the order connections are accepted; never reused within a server.
using session_id = std::uint64_t;

/// RFC 6455 close codes used here (section 7.4.1).
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;        // server shutdown, idle session
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;  // a binary message
inline constexpr std::uint16_t no_status = 1005;         // the peer's close frame carried no code
inline constexpr std::uint16_t abnormal = 1006;          // no close frame: the connection was lost
inline constexpr std::uint16_t invalid_payload = 1007;   // text that is not UTF-8
inline constexpr std::uint16_t policy_violation = 1008;  // e.g. the outbound queue overflowed
inline constexpr std::uint16_t message_too_big = 1009;
inline constexpr std::uint16_t internal_error = 1011;    // a handler threw

/// True for a code an endpoint may send in a close frame.
constexpr bool sendable(std::uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
}
}  // namespace close_code

/// The HTTP upgrade request as on_open sees it.
struct request_info {
  std::string path;                            // the target before '?', not decoded
  std::map<std::string, std::string> query;    // percent-decoded; a name given twice is refused with 400
  std::map<std::string, std::string> headers;  // names in lower case; repeated fields joined with ", "
  std::string remote_address;                  // the peer's IP address as text
  std::uint16_t remote_port = 0;
};

/// on_open's answer: upgrade to WebSocket, or refuse with an HTTP status (400..599) and a reason that
/// the client receives as a text/plain body. A refused request never becomes a session.
struct open_decision {
  bool accepted = true;
  unsigned status = 0;
  std::string reason;

  static open_decision accept() { return {}; }
  static open_decision reject(unsigned http_status, std::string why) { return {false, http_status, std::move(why)}; }
};

enum class closed_by {
  server,   // this side: close(), idle, oversized or binary message, slow reader, shutdown, a protocol error
  peer,     // the client sent a close frame
  network,  // no close handshake: reset, end of stream, timeout
};

struct close_reason {
  std::uint16_t code = close_code::abnormal;
  std::string reason;  // what the close frame said, or what happened to the connection
  closed_by by = closed_by::network;
};

/// Callbacks run on the server's I/O threads, one at a time per session and in order (on_open, then
/// on_text..., then on_close exactly once for each accepted session); different sessions may run at
/// the same time when the server has more than one thread. They must not block for long, and must not
/// call wss_server::stop(). send() and close() may be called from inside them.
class wss_handler {
 public:
  virtual ~wss_handler() = default;
  /// Before the upgrade: decide from the path, the query (where the token is) and the peer.
  virtual open_decision on_open(session_id id, const request_info& request) = 0;
  /// One complete text message (valid UTF-8: Beast checks), at most max_message_bytes long.
  virtual void on_text(session_id id, std::string text) = 0;
  virtual void on_close(session_id id, const close_reason& reason) = 0;
};

}  // namespace firebreak::websocket
