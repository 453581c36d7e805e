// Phoenix Channels v2 JSON framing, sans-IO: WebSocket text in, a typed frame out, and back.
//
//   [join_ref,     ref,          topic,  event,  payload]
//    string|null   string|null   string  string  object
//
// join_ref names the channel join a message belongs to (it is the ref of that channel's phx_join);
// ref pairs a request with its reply. Server pushes carry ref null. A reply is event phx_reply on the
// request's topic, with the request's join_ref and ref, and the payload
// {"status": "ok"|"error", "response": {...}}. Heartbeats are event "heartbeat" on topic "phoenix",
// answered with an ok reply. This is what the official `phoenix` JavaScript client speaks (its
// serializer's vsn "2.0.0").
//
// parse_frame never throws and never crashes, whatever the bytes. In order, it refuses
//   * text longer than max_bytes, before looking at it;
//   * arrays and objects nested deeper than max_frame_depth (a depth bomb), before building anything;
//   * text that is not JSON (the message says where, never quoting the text: a frame may carry keys);
//   * JSON that is not a 5-element array, or whose elements have the wrong types.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace firebreak::messages {

// ---- Phoenix's own names ------------------------------------------------------------------------

inline constexpr std::string_view phoenix_topic = "phoenix";  // heartbeats only
inline constexpr std::string_view heartbeat_event = "heartbeat";
inline constexpr std::string_view phx_join = "phx_join";
inline constexpr std::string_view phx_leave = "phx_leave";
inline constexpr std::string_view phx_reply = "phx_reply";
inline constexpr std::string_view phx_close = "phx_close";  // the server closed the channel
inline constexpr std::string_view phx_error = "phx_error";  // the channel crashed

// ---- limits --------------------------------------------------------------------------------------

/// Deepest nesting of arrays and objects accepted, the frame's own array included. Our payloads need 4.
inline constexpr std::size_t max_frame_depth = 32;
/// A sensible max_bytes for parse_frame: an `init` with a few thousand resources fits.
inline constexpr std::size_t default_max_frame_bytes = 1024 * 1024;

// ---- the frame -----------------------------------------------------------------------------------

struct frame {
  std::optional<std::string> join_ref;  // null: not tied to a join (heartbeats, broadcasts)
  std::optional<std::string> ref;       // null: a push that expects no reply
  std::string topic;
  std::string event;
  nlohmann::json payload = nlohmann::json::object();  // always an object in a parsed frame

  friend bool operator==(const frame&, const frame&) = default;
};

enum class frame_error_kind {
  too_large,       // longer than max_bytes
  too_deep,        // nested deeper than max_frame_depth
  malformed_json,  // not JSON at all (or not UTF-8)
  not_an_array,    // JSON, but not an array
  wrong_arity,     // an array of other than 5 elements
  bad_field,       // an element of the wrong type
};

/// "too_large", "too_deep", ...
std::string_view to_string(frame_error_kind kind);

/// Why a frame was refused. `message` is a sentence for a person (a log line, a close reason); it never
/// quotes the frame's text.
struct frame_error {
  frame_error_kind kind;
  std::string message;
};

/// Exactly one of value and error is set.
struct parsed_frame {
  std::optional<frame> value;
  std::optional<frame_error> error;

  explicit operator bool() const { return value.has_value(); }
  const frame& operator*() const { return *value; }
  const frame* operator->() const { return &*value; }
};

/// Parses one WebSocket text message. Never throws.
parsed_frame parse_frame(std::string_view text, std::size_t max_bytes);

/// The frame as compact JSON text. Never throws: invalid UTF-8 in a string becomes U+FFFD.
std::string serialize(const frame& f);

// ---- building frames -----------------------------------------------------------------------------

/// phx_reply to `request`, on its topic, with its join_ref and ref: {"status":"ok","response":response}.
frame reply_ok(const frame& request, nlohmann::json response = nlohmann::json::object());
/// The same with "status":"error"; Phoenix's convention for the response is {"reason": "..."}.
frame reply_error(const frame& request, nlohmann::json response);
/// A server push: ref null; join_ref the channel's join, when the push belongs to one. (Not named `push`:
/// the actors' catalog has a message of that name in this namespace.)
frame push_frame(std::string topic, std::string event, nlohmann::json payload,
           std::optional<std::string> join_ref = std::nullopt);

// ---- reading frames ------------------------------------------------------------------------------

/// topic "phoenix", event "heartbeat".
bool is_heartbeat(const frame& f);

enum class reply_status { ok, error };

struct reply {
  reply_status status;
  nlohmann::json response;  // as sent; {} when absent
};

/// The status and response of a phx_reply; nullopt for any other event, or a reply whose status is
/// neither "ok" nor "error".
std::optional<reply> read_reply(const frame& f);

}  // namespace firebreak::messages
