#include "transport/websocket/wss_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "transport/websocket/client_io.hpp"
#include "transport/websocket/tls_context.hpp"

namespace firebreak::websocket {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace ws = beast::websocket;
using tcp = net::ip::tcp;
using detail::client_clock;

namespace {

/// Bound on the polite close the destructor attempts.
constexpr auto destructor_close_bound = std::chrono::seconds(1);

}  // namespace

struct wss_client::impl {
  net::io_context io{1};
  std::unique_ptr<net::ssl::context> tls;
  std::optional<ws::stream<beast::ssl_stream<beast::tcp_stream>>> stream;

  // The read outlives a receive_text() that timed out: the next call waits for the same read.
  beast::flat_buffer inbound;
  bool read_pending = false;
  bool read_done = false;
  boost::system::error_code read_ec;

  std::optional<client_error> over;  // set once the connection is finished; every later call returns it

  /// The deadline passed or something broke: close the socket and let the aborted operations finish
  /// (their handlers refer to this object).
  void abandon(client_error why) {
    if (!over) over = std::move(why);
    boost::system::error_code ignored;
    beast::get_lowest_layer(*stream).socket().close(ignored);
    io.restart();
    io.run_for(std::chrono::seconds(1));
  }

  /// The error for an operation that failed with `ec`: a close frame if one came, else what broke.
  client_error failure(boost::system::error_code ec) const {
    const auto& received = stream->reason();
    if (ec == ws::error::closed || received.code != ws::close_code::none) {
      client_error e{client_error::kind::closed, "the server closed the WebSocket"};
      e.close_code = received.code == ws::close_code::none ? 1005 : received.code;
      e.close_reason.assign(received.reason.data(), received.reason.size());
      e.message += " (" + std::to_string(e.close_code) + (e.close_reason.empty() ? "" : " " + e.close_reason) + ")";
      return e;
    }
    client_error e{client_error::kind::io, "the WebSocket connection broke: " + ec.message()};
    e.close_code = 1006;
    return e;
  }

  void start_read() {
    read_pending = true;
    stream->async_read(inbound, [this](boost::system::error_code ec, std::size_t) {
      read_pending = false;
      read_done = true;
      read_ec = ec;
    });
  }

  std::optional<client_error> write(std::string_view bytes, bool text, std::chrono::milliseconds timeout) {
    if (over) return over;
    auto deadline = client_clock::now() + timeout;
    bool done = false;
    boost::system::error_code ec;
    stream->text(text);
    stream->async_write(net::buffer(bytes.data(), bytes.size()), [&](boost::system::error_code write_ec, std::size_t) {
      ec = write_ec;
      done = true;
    });
    if (!detail::run_until(io, done, deadline)) {
      abandon({client_error::kind::timeout, "sending took longer than " + std::to_string(timeout.count()) + " ms"});
      return over;
    }
    if (ec) {
      over = failure(ec);
      return over;
    }
    return std::nullopt;
  }
};

wss_client::wss_client(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

wss_client::~wss_client() {
  if (impl_ && !impl_->over) close(1000, {}, destructor_close_bound);
}

wss_connect_result wss_client::connect(const std::string& host, std::uint16_t port, const std::string& target,
                                       const std::filesystem::path& ca_file, std::chrono::milliseconds timeout) {
  const auto deadline = client_clock::now() + timeout;
  auto state = std::make_unique<impl>();
  auto fail = [](client_error::kind kind, std::string message) {
    return wss_connect_result{nullptr, client_error{kind, std::move(message)}};
  };
  std::string why;
  state->tls = detail::make_client_tls_context(ca_file, why);
  if (!state->tls) return fail(client_error::kind::setup, why);
  state->stream.emplace(state->io, *state->tls);
  auto& stream = *state->stream;
  if (!detail::prepare_client_stream(stream.next_layer(), host, why)) return fail(client_error::kind::setup, why);

  auto endpoints = detail::resolve(state->io, host, port, deadline);
  if (endpoints.error) return {nullptr, endpoints.error};

  // Each step: start it, run until done or the deadline; on the deadline close the socket.
  auto step = [&](const char* what, auto start) -> std::optional<boost::system::error_code> {
    bool done = false;
    boost::system::error_code ec;
    start([&](boost::system::error_code step_ec, auto&&...) {
      ec = step_ec;
      done = true;
    });
    if (!detail::run_until(state->io, done, deadline)) {
      state->abandon({client_error::kind::timeout, std::string(what) + " took longer than " +
                                                       std::to_string(timeout.count()) + " ms"});
      return std::nullopt;
    }
    return ec;
  };
  auto timed_out = [&] { return wss_connect_result{nullptr, state->over}; };

  auto connected = step("connecting", [&](auto handler) {
    beast::get_lowest_layer(stream).async_connect(endpoints.endpoints, std::move(handler));
  });
  if (!connected) return timed_out();
  if (*connected) {
    return fail(client_error::kind::connect,
                "cannot connect to " + detail::host_header(host, port) + ": " + connected->message());
  }

  auto tls_done = step("the TLS handshake", [&](auto handler) {
    stream.next_layer().async_handshake(net::ssl::stream_base::client, std::move(handler));
  });
  if (!tls_done) return timed_out();
  if (*tls_done) {
    return fail(client_error::kind::tls, "TLS handshake with " + detail::host_header(host, port) +
                                             " failed: " + tls_done->message());
  }

  stream.set_option(ws::stream_base::decorator(
      [](ws::request_type& request) { request.set(beast::http::field::user_agent, "firebreak"); }));
  ws::response_type response;
  const std::string host_field = detail::host_header(host, port);
  auto upgraded = step("the WebSocket upgrade", [&](auto handler) {
    stream.async_handshake(response, host_field, target, std::move(handler));
  });
  if (!upgraded) return timed_out();
  if (*upgraded) {
    if (*upgraded == ws::error::upgrade_declined && response.result_int() >= 300) {
      std::string body = response.body();
      while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
      client_error e{client_error::kind::refused,
                     "the server refused the upgrade: " + std::to_string(response.result_int()) +
                         (body.empty() ? "" : " " + body)};
      e.http_status = response.result_int();
      return {nullptr, std::move(e)};
    }
    return fail(client_error::kind::io, "WebSocket upgrade failed: " + upgraded->message());
  }
  return {std::unique_ptr<wss_client>(new wss_client(std::move(state))), std::nullopt};
}

std::optional<client_error> wss_client::send_text(std::string_view text, std::chrono::milliseconds timeout) {
  return impl_->write(text, true, timeout);
}

std::optional<client_error> wss_client::send_binary(std::string_view bytes, std::chrono::milliseconds timeout) {
  return impl_->write(bytes, false, timeout);
}

receive_result wss_client::receive_text(std::chrono::milliseconds timeout) {
  auto& state = *impl_;
  if (!state.read_done) {
    if (state.over) return {std::nullopt, state.over};
    if (!state.read_pending) state.start_read();
    if (!detail::run_until(state.io, state.read_done, client_clock::now() + timeout)) return {};
  }
  state.read_done = false;
  if (state.read_ec) {
    if (!state.over) state.over = state.failure(state.read_ec);
    return {std::nullopt, state.over};
  }
  std::string text = beast::buffers_to_string(state.inbound.data());
  state.inbound.clear();
  return {std::move(text), std::nullopt};
}

void wss_client::close(std::uint16_t code, std::string_view reason, std::chrono::milliseconds timeout) {
  auto& state = *impl_;
  if (state.over) return;
  const auto deadline = client_clock::now() + timeout;
  bool done = false;
  state.stream->async_close(ws::close_reason(static_cast<ws::close_code>(code), beast::string_view(reason.data(), reason.size())),
                            [&](boost::system::error_code) { done = true; });
  // A pending read sees the server's close frame and ends too; both refer to this object.
  bool finished = detail::run_until(state.io, done, deadline);
  if (finished && state.read_pending) {
    finished = detail::run_until(state.io, state.read_done, deadline);
  }
  if (!finished) {
    state.abandon({client_error::kind::timeout, "the close handshake did not finish in time"});
    return;
  }
  state.over = client_error{client_error::kind::closed, "closed by this client"};
  state.over->close_code = code;
  state.over->close_reason = std::string(reason);
}

bool wss_client::is_open() const { return !impl_->over; }

}  // namespace firebreak::websocket
