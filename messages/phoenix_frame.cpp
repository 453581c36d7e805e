#include "messages/phoenix_frame.hpp"

#include <string>
#include <utility>

#include "messages/described_type.hpp"

namespace firebreak::messages {

namespace {

using nlohmann::json;

constexpr std::string_view frame_shape = "[join_ref, ref, topic, event, payload]";

/// Whether `text` nests arrays and objects more than `limit` deep, counting brackets outside strings.
/// Exact for valid JSON (outside a string, a quote always opens one and a backslash never appears); for
/// anything else the answer does not matter, since the parser refuses it next. Allocates nothing, so a
/// depth bomb costs one pass over bytes already in memory.
bool nests_deeper_than(std::string_view text, std::size_t limit) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > limit) return true;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return false;
}

/// A SAX handler that builds nothing and keeps the parser's description of the first syntax error.
/// Run only after a parse failed, to say where; the fast path never pays for it.
class syntax_error_finder final : public nlohmann::json_sax<json> {
 public:
  std::string description;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    // what() is "[json.exception.parse_error.101] parse error at line 1, column 9: syntax error while
    // parsing value - invalid literal; last read: '<the text>'". Keep the middle: the last-read part
    // quotes the frame, which may hold a key.
    std::string_view what = ex.what();
    if (const auto end_of_id = what.find("] "); end_of_id != std::string_view::npos) what.remove_prefix(end_of_id + 2);
    if (const auto quote = what.find("; last read"); quote != std::string_view::npos) what = what.substr(0, quote);
    description = std::string(what);
    return false;
  }
};

std::string syntax_error_description(std::string_view text) {
  syntax_error_finder finder;
  // The text was already refused once, so the parser stops at the same place; sax_parse with a handler
  // that returns false from parse_error does not throw.
  json::sax_parse(text.begin(), text.end(), &finder, nlohmann::detail::input_format_t::json, true);
  return finder.description.empty() ? std::string("a syntax error") : finder.description;
}

parsed_frame refused(frame_error_kind kind, std::string message) {
  return {std::nullopt, frame_error{kind, std::move(message)}};
}

/// Element `index` (1-based, as a person counts) must be a string, or null when `nullable`.
bool read_text(const json& element, int index, std::string_view name, bool nullable,
               std::optional<std::string>& out, std::optional<frame_error>& error) {
  if (element.is_string()) {
    out = element.get_ref<const std::string&>();
    return true;
  }
  if (nullable && element.is_null()) {
    out.reset();
    return true;
  }
  error = frame_error{frame_error_kind::bad_field,
                      std::string(name) + " (element " + std::to_string(index) + " of " + std::string(frame_shape) +
                          ") must be a string" + (nullable ? " or null" : "") + "; got " +
                          described_type(element, number_naming::one_kind)};
  return false;
}

frame reply_with(const frame& request, std::string_view status, json response) {
  frame out;
  out.join_ref = request.join_ref;
  out.ref = request.ref;
  out.topic = request.topic;
  out.event = std::string(phx_reply);
  out.payload = json::object();
  out.payload["status"] = status;
  out.payload["response"] = std::move(response);
  return out;
}

json text_or_null(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }

}  // namespace

std::string_view to_string(frame_error_kind kind) {
  switch (kind) {
    case frame_error_kind::too_large: return "too_large";
    case frame_error_kind::too_deep: return "too_deep";
    case frame_error_kind::malformed_json: return "malformed_json";
    case frame_error_kind::not_an_array: return "not_an_array";
    case frame_error_kind::wrong_arity: return "wrong_arity";
    case frame_error_kind::bad_field: return "bad_field";
  }
  return "unknown";
}

parsed_frame parse_frame(std::string_view text, std::size_t max_bytes) {
  if (text.size() > max_bytes)
    return refused(frame_error_kind::too_large, "the frame is " + std::to_string(text.size()) +
                                                    " bytes; the limit is " + std::to_string(max_bytes) + " bytes");
  if (nests_deeper_than(text, max_frame_depth))
    return refused(frame_error_kind::too_deep,
                   "the frame nests arrays and objects more than " + std::to_string(max_frame_depth) + " deep");

  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return refused(frame_error_kind::malformed_json, "the frame is not valid JSON: " + syntax_error_description(text));
  if (!j.is_array())
    return refused(frame_error_kind::not_an_array, "a frame must be a JSON array of 5 elements: " +
                                                       std::string(frame_shape) + "; got " +
                                                       described_type(j, number_naming::one_kind));
  if (j.size() != 5)
    return refused(frame_error_kind::wrong_arity,
                   "a frame must be a JSON array of 5 elements: " + std::string(frame_shape) + "; got " +
                       std::to_string(j.size()) + (j.size() == 1 ? " element" : " elements"));

  frame f;
  std::optional<frame_error> error;
  std::optional<std::string> topic;
  std::optional<std::string> event;
  if (!read_text(j[0], 1, "join_ref", true, f.join_ref, error) || !read_text(j[1], 2, "ref", true, f.ref, error) ||
      !read_text(j[2], 3, "topic", false, topic, error) || !read_text(j[3], 4, "event", false, event, error))
    return {std::nullopt, std::move(error)};
  if (!j[4].is_object())
    return refused(frame_error_kind::bad_field, "payload (element 5 of " + std::string(frame_shape) +
                                                    ") must be a JSON object; got " +
                                                    described_type(j[4], number_naming::one_kind));
  f.topic = std::move(*topic);
  f.event = std::move(*event);
  f.payload = j[4];
  return {std::move(f), std::nullopt};
}

std::string serialize(const frame& f) {
  const json j = json::array({text_or_null(f.join_ref), text_or_null(f.ref), f.topic, f.event, f.payload});
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

frame reply_ok(const frame& request, json response) { return reply_with(request, "ok", std::move(response)); }

frame reply_error(const frame& request, json response) { return reply_with(request, "error", std::move(response)); }

frame push_frame(std::string topic, std::string event, json payload, std::optional<std::string> join_ref) {
  return frame{std::move(join_ref), std::nullopt, std::move(topic), std::move(event), std::move(payload)};
}

bool is_heartbeat(const frame& f) { return f.topic == phoenix_topic && f.event == heartbeat_event; }

std::optional<reply> read_reply(const frame& f) {
  if (f.event != phx_reply || !f.payload.is_object()) return std::nullopt;
  const auto status = f.payload.find("status");
  if (status == f.payload.end() || !status->is_string()) return std::nullopt;
  reply out;
  if (*status == "ok")
    out.status = reply_status::ok;
  else if (*status == "error")
    out.status = reply_status::error;
  else
    return std::nullopt;
  const auto response = f.payload.find("response");
  out.response = response == f.payload.end() ? json::object() : *response;
  return out;
}

}  // namespace firebreak::messages
