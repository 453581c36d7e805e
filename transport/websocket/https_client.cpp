#include "transport/websocket/https_client.hpp"

#include <algorithm>

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "transport/websocket/client_io.hpp"
#include "transport/websocket/tls_context.hpp"

namespace firebreak::websocket {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using detail::client_clock;

namespace {

constexpr std::size_t max_response_body = 16 << 20;
/// The TLS close at the end is a courtesy; it may not hold the caller up for long.
constexpr auto shutdown_bound = std::chrono::milliseconds(500);

}  // namespace

https_result https_request(const std::string& host, std::uint16_t port, const std::string& method,
                           const std::string& target, const std::map<std::string, std::string>& headers,
                           const std::string& body, const std::filesystem::path& ca_file,
                           std::chrono::milliseconds timeout) {
  const auto deadline = client_clock::now() + timeout;
  https_result result;
  auto fail = [&](client_error::kind kind, std::string message) {
    result.error = client_error{kind, std::move(message)};
    return result;
  };

  std::string why;
  auto tls = detail::make_client_tls_context(ca_file, why);
  if (!tls) return fail(client_error::kind::setup, why);
  net::io_context io{1};
  beast::ssl_stream<beast::tcp_stream> stream(io, *tls);
  if (!detail::prepare_client_stream(stream, host, why)) return fail(client_error::kind::setup, why);
  auto endpoints = detail::resolve(io, host, port, deadline);
  if (endpoints.error) {
    result.error = endpoints.error;
    return result;
  }

  // Beast's stream deadline covers every step below: an expired one fails the step with timeout.
  beast::get_lowest_layer(stream).expires_at(deadline);
  auto step = [&](auto start) {
    boost::system::error_code ec;
    start([&](boost::system::error_code step_ec, auto&&...) { ec = step_ec; });
    io.restart();
    io.run();
    return ec;
  };
  auto error_kind = [](boost::system::error_code ec, client_error::kind otherwise) {
    return ec == beast::error::timeout ? client_error::kind::timeout : otherwise;
  };
  const std::string where = detail::host_header(host, port);

  if (auto ec = step([&](auto h) { beast::get_lowest_layer(stream).async_connect(endpoints.endpoints, std::move(h)); })) {
    return fail(error_kind(ec, client_error::kind::connect), "cannot connect to " + where + ": " + ec.message());
  }
  if (auto ec = step([&](auto h) { stream.async_handshake(net::ssl::stream_base::client, std::move(h)); })) {
    return fail(error_kind(ec, client_error::kind::tls), "TLS handshake with " + where + " failed: " + ec.message());
  }

  http::request<http::string_body> request;
  request.version(11);
  if (auto verb = http::string_to_verb(method); verb != http::verb::unknown) {
    request.method(verb);
  } else {
    request.method_string(method);
  }
  request.target(target);
  request.set(http::field::host, where);
  request.set(http::field::user_agent, "firebreak");
  for (const auto& [name, value] : headers) request.set(name, value);
  request.keep_alive(false);
  request.body() = body;
  request.prepare_payload();
  if (auto ec = step([&](auto h) { http::async_write(stream, request, std::move(h)); })) {
    return fail(error_kind(ec, client_error::kind::io), "sending the request to " + where + " failed: " + ec.message());
  }

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_response_body);
  if (auto ec = step([&](auto h) { http::async_read(stream, buffer, parser, std::move(h)); })) {
    return fail(error_kind(ec, client_error::kind::io), "reading the response from " + where + " failed: " + ec.message());
  }
  auto response = parser.release();
  result.status = response.result_int();
  result.body = std::move(response.body());
  for (const auto& field : response) {
    std::string name(field.name_string().data(), field.name_string().size());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    result.headers[name] = std::string(field.value().data(), field.value().size());
  }

  beast::get_lowest_layer(stream).expires_after(shutdown_bound);
  step([&](auto h) { stream.async_shutdown(std::move(h)); });  // the answer is in hand: errors do not matter
  return result;
}

}  // namespace firebreak::websocket
