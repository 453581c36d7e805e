// Phoenix Channels v2 framing: frames the `phoenix` JavaScript client sends parse into the right fields
// and serialize back unchanged; replies and pushes carry the refs the protocol pairs them by; and every
// kind of bad input (not JSON, the wrong shape, too big, too deep) is refused with the right kind and a
// sentence a person can act on, without quoting the frame.
#include <doctest/doctest.h>

#include <string>

#include "messages/phoenix_frame.hpp"

using namespace firebreak::messages;
using nlohmann::json;

namespace {

frame parsed(std::string_view text) {
  auto r = parse_frame(text, default_max_frame_bytes);
  INFO("refused: " << (r.error ? r.error->message : ""));
  REQUIRE(r);
  REQUIRE_FALSE(r.error);
  return *r.value;
}

frame_error refused(std::string_view text, std::size_t max_bytes = default_max_frame_bytes) {
  auto r = parse_frame(text, max_bytes);
  REQUIRE_FALSE(r);
  REQUIRE_FALSE(r.value);
  REQUIRE(r.error);
  return *r.error;
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string nested(std::size_t depth, std::string_view open = "[", std::string_view close = "]") {
  std::string out;
  for (std::size_t i = 0; i < depth; ++i) out += open;
  for (std::size_t i = 0; i < depth; ++i) out += close;
  return out;
}

}  // namespace

// ---- good frames -------------------------------------------------------------------------------------

TEST_CASE("a phx_join from the phoenix JavaScript client parses into its five fields") {
  const auto f = parsed(R"(["3","3","client","phx_join",{"token":"abc"}])");
  CHECK(f.join_ref == "3");
  CHECK(f.ref == "3");
  CHECK(f.topic == "client");
  CHECK(f.event == phx_join);
  CHECK(f.payload == json{{"token", "abc"}});
}

TEST_CASE("null refs parse as empty, and a push without refs serializes them as null") {
  const auto f = parsed(R"([null,null,"client","init",{}])");
  CHECK_FALSE(f.join_ref);
  CHECK_FALSE(f.ref);
  CHECK(serialize(f) == R"([null,null,"client","init",{}])");
}

TEST_CASE("serialize then parse gives the same frame back") {
  frame f{"1", "7", "gateway", "flow_authorized", json{{"ref", "r-1"}, {"nested", {{"a", json::array({1, 2.5, "x"})}}}}};
  CHECK(parsed(serialize(f)) == f);
  frame unicode{std::nullopt, "8", "client", "resource_created_or_updated", json{{"name", "Büro \u2014 printer"}}};
  CHECK(parsed(serialize(unicode)) == unicode);
  // And text in, text out, for what the JavaScript client sends.
  const std::string text = R"(["5","6","client","create_flow",{"connected_gateway_ids":["g1"],"resource_id":"r1"}])";
  CHECK(serialize(parsed(text)) == text);
}

TEST_CASE("whitespace around and inside the frame is fine") {
  const auto f = parsed(" [ \"1\" , null ,\n\"phoenix\", \"heartbeat\", { } ] \n");
  CHECK(is_heartbeat(f));
}

TEST_CASE("a heartbeat is event heartbeat on topic phoenix, and nothing else is") {
  CHECK(is_heartbeat(parsed(R"([null,"9","phoenix","heartbeat",{}])")));
  CHECK_FALSE(is_heartbeat(parsed(R"([null,"9","client","heartbeat",{}])")));
  CHECK_FALSE(is_heartbeat(parsed(R"([null,"9","phoenix","phx_join",{}])")));
}

TEST_CASE("a frame of exactly max_bytes is accepted; one byte more is refused") {
  const std::string text = R"([null,null,"phoenix","heartbeat",{}])";
  CHECK(parse_frame(text, text.size()));
  CHECK(refused(text, text.size() - 1).kind == frame_error_kind::too_large);
}

TEST_CASE("nesting up to max_frame_depth is accepted, one deeper is refused") {
  // The frame's array is level 1, the payload level 2.
  const auto at_depth = [](std::size_t depth) {
    return R"([null,null,"t","e",{"a":)" + nested(depth - 2) + "}]";
  };
  CHECK(parse_frame(at_depth(max_frame_depth), default_max_frame_bytes));
  CHECK(refused(at_depth(max_frame_depth + 1)).kind == frame_error_kind::too_deep);
}

TEST_CASE("brackets inside strings do not count as nesting") {
  const std::string brackets(5000, '[');
  const auto f = parsed(R"([null,null,"t","e",{"s":")" + brackets + R"(\"[{"}])");
  CHECK(f.payload["s"] == brackets + "\"[{");
}

// ---- replies and pushes ------------------------------------------------------------------------------

TEST_CASE("reply_ok answers on the request's topic with its join_ref and ref") {
  const auto join = parsed(R"(["4","5","gateway","phx_join",{"token":"t"}])");
  const auto r = reply_ok(join, json{{"ok", true}});
  CHECK(r.event == phx_reply);
  CHECK(r.topic == "gateway");
  CHECK(r.join_ref == "4");
  CHECK(r.ref == "5");
  CHECK(r.payload == json{{"status", "ok"}, {"response", {{"ok", true}}}});
  CHECK(serialize(r) == R"(["4","5","gateway","phx_reply",{"response":{"ok":true},"status":"ok"}])");
}

TEST_CASE("a heartbeat's reply is an ok with an empty response and the heartbeat's ref") {
  const auto hb = parsed(R"([null,"12","phoenix","heartbeat",{}])");
  CHECK(serialize(reply_ok(hb)) == R"([null,"12","phoenix","phx_reply",{"response":{},"status":"ok"}])");
}

TEST_CASE("reply_error carries status error and the reason, with the request's refs") {
  const auto join = parsed(R"(["1","1","client","phx_join",{"token":"bad"}])");
  const auto r = reply_error(join, json{{"reason", "unauthorized"}});
  CHECK(r.join_ref == "1");
  CHECK(r.ref == "1");
  CHECK(r.topic == "client");
  CHECK(r.payload["status"] == "error");
  CHECK(r.payload["response"]["reason"] == "unauthorized");
}

TEST_CASE("read_reply reads what reply_ok and reply_error write, and nothing else") {
  const auto req = parsed(R"(["1","2","client","create_flow",{}])");
  auto ok = read_reply(parsed(serialize(reply_ok(req, json{{"a", 1}}))));
  REQUIRE(ok);
  CHECK(ok->status == reply_status::ok);
  CHECK(ok->response == json{{"a", 1}});
  auto err = read_reply(reply_error(req, json{{"reason", "nope"}}));
  REQUIRE(err);
  CHECK(err->status == reply_status::error);
  CHECK_FALSE(read_reply(req));
  CHECK_FALSE(read_reply(parsed(R"(["1","2","client","phx_reply",{"status":"maybe"}])")));
  CHECK_FALSE(read_reply(parsed(R"(["1","2","client","phx_reply",{"status":1}])")));
  const auto bare = read_reply(parsed(R"(["1","2","client","phx_reply",{"status":"ok"}])"));
  REQUIRE(bare);
  CHECK(bare->response == json::object());
}

TEST_CASE("a push has no ref, and the channel's join_ref when given") {
  const auto p = push_frame("client", "resource_deleted", json{{"id", "r1"}}, "3");
  CHECK(p.join_ref == "3");
  CHECK_FALSE(p.ref);
  CHECK(serialize(p) == R"(["3",null,"client","resource_deleted",{"id":"r1"}])");
  CHECK_FALSE(push_frame("client", "init", json::object()).join_ref);
}

TEST_CASE("serialize never throws on invalid UTF-8: the bad bytes become U+FFFD") {
  frame f{std::nullopt, std::nullopt, "client", "init", json{{"name", std::string("a\xff\xfe" "b")}}};
  std::string text;
  CHECK_NOTHROW(text = serialize(f));
  CHECK(contains(text, "a\xef\xbf\xbd"));
  CHECK(parse_frame(text, default_max_frame_bytes));
}

// ---- bad frames --------------------------------------------------------------------------------------

TEST_CASE("text that is not JSON is malformed_json, with where it went wrong") {
  const auto e = refused("hello");
  CHECK(e.kind == frame_error_kind::malformed_json);
  CHECK(contains(e.message, "not valid JSON"));
  CHECK(contains(e.message, "line 1, column 1"));
}

TEST_CASE("a truncated frame is malformed_json, and the message does not quote the frame") {
  const auto e = refused(R"(["1","1","client","flow_created",{"preshared_key":"Ouvrhn6HDpIPmXev8v0)");
  CHECK(e.kind == frame_error_kind::malformed_json);
  CHECK(contains(e.message, "not valid JSON"));
  CHECK_FALSE(contains(e.message, "Ouvrhn6H"));
}

TEST_CASE("empty text, binary bytes and invalid UTF-8 are malformed_json") {
  CHECK(refused("").kind == frame_error_kind::malformed_json);
  CHECK(refused(std::string("\0\x01\x02[", 4)).kind == frame_error_kind::malformed_json);
  CHECK(refused("[null,null,\"t\",\"\xc3\x28\",{}]").kind == frame_error_kind::malformed_json);
  CHECK(refused(R"([null,null,"t","e",{}] trailing)").kind == frame_error_kind::malformed_json);
}

TEST_CASE("JSON that is not an array is not_an_array, naming what it was") {
  const auto e = refused(R"({"topic":"client"})");
  CHECK(e.kind == frame_error_kind::not_an_array);
  CHECK(e.message ==
        "a frame must be a JSON array of 5 elements: [join_ref, ref, topic, event, payload]; got an object");
  CHECK(refused("42").kind == frame_error_kind::not_an_array);
  CHECK(refused("\"x\"").kind == frame_error_kind::not_an_array);
}

TEST_CASE("3 elements is wrong_arity, and the message says how many") {
  const auto e = refused(R"(["1","1","client"])");
  CHECK(e.kind == frame_error_kind::wrong_arity);
  CHECK(e.message ==
        "a frame must be a JSON array of 5 elements: [join_ref, ref, topic, event, payload]; got 3 elements");
}

TEST_CASE("6 elements, 1 element and none are wrong_arity too") {
  CHECK(refused(R"(["1","1","client","phx_join",{},{}])").message.ends_with("got 6 elements"));
  CHECK(refused(R"([1])").message.ends_with("got 1 element"));
  CHECK(refused("[]").message.ends_with("got 0 elements"));
}

TEST_CASE("a topic that is a number is bad_field, naming the topic") {
  const auto e = refused(R"(["1","1",7,"phx_join",{}])");
  CHECK(e.kind == frame_error_kind::bad_field);
  CHECK(e.message == "topic (element 3 of [join_ref, ref, topic, event, payload]) must be a string; got a number");
}

TEST_CASE("a payload that is not an object is bad_field, naming the payload") {
  const auto e = refused(R"(["1","1","client","phx_join",[1,2]])");
  CHECK(e.kind == frame_error_kind::bad_field);
  CHECK(e.message == "payload (element 5 of [join_ref, ref, topic, event, payload]) must be a JSON object; got an array");
  CHECK(refused(R"(["1","1","client","phx_join",null])").kind == frame_error_kind::bad_field);
}

TEST_CASE("refs that are numbers, or an event that is null, are bad_field naming the element") {
  const auto join_ref = refused(R"([1,"1","client","phx_join",{}])");
  CHECK(join_ref.kind == frame_error_kind::bad_field);
  CHECK(join_ref.message.starts_with("join_ref (element 1"));
  CHECK(contains(join_ref.message, "must be a string or null; got a number"));
  CHECK(refused(R"(["1",2,"client","phx_join",{}])").message.starts_with("ref (element 2"));
  const auto event = refused(R"(["1","1","client",null,{}])");
  CHECK(event.message.starts_with("event (element 4"));
  CHECK(contains(event.message, "must be a string; got null"));
}

TEST_CASE("a 10 MB frame is too_large, refused before it is parsed") {
  std::string big = R"([null,null,"client","init",{"pad":")";
  big.append(10 * 1024 * 1024, 'x');
  big += "\"}]";
  const auto e = refused(big);
  CHECK(e.kind == frame_error_kind::too_large);
  CHECK(e.message == "the frame is " + std::to_string(big.size()) + " bytes; the limit is 1048576 bytes");
  // Not parsed: 10 MB of garbage gets the same answer.
  CHECK(refused(std::string(10 * 1024 * 1024, '[')).kind == frame_error_kind::too_large);
}

TEST_CASE("a depth-1000 nesting is too_deep, arrays or objects") {
  const auto arrays = refused(R"([null,null,"t","e",{"a":)" + nested(1000) + "}]");
  CHECK(arrays.kind == frame_error_kind::too_deep);
  CHECK(arrays.message == "the frame nests arrays and objects more than 32 deep");
  CHECK(refused(nested(1000, "{\"a\":", "}")).kind == frame_error_kind::too_deep);
  // Unclosed, as a bomb usually is.
  CHECK(refused(std::string(100000, '[')).kind == frame_error_kind::too_deep);
}

TEST_CASE("every kind has a name for logs") {
  CHECK(to_string(frame_error_kind::too_large) == "too_large");
  CHECK(to_string(frame_error_kind::too_deep) == "too_deep");
  CHECK(to_string(frame_error_kind::malformed_json) == "malformed_json");
  CHECK(to_string(frame_error_kind::not_an_array) == "not_an_array");
  CHECK(to_string(frame_error_kind::wrong_arity) == "wrong_arity");
  CHECK(to_string(frame_error_kind::bad_field) == "bad_field");
}
