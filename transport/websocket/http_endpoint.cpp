#include "transport/websocket/http_endpoint.hpp"

#include <atomic>
#include <exception>
#include <stdexcept>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "transport/websocket/io_threads.hpp"
#include "transport/websocket/listener.hpp"
#include "transport/websocket/logger.hpp"
#include "transport/websocket/target.hpp"

namespace firebreak::websocket {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {
constexpr std::uint32_t max_header_bytes = 8 * 1024;
/// Connections at once: a health check and a scraper or two need a handful. Beyond this, a new one is
/// closed at once, so a burst cannot take the daemon's descriptors.
constexpr int max_connections = 64;
/// Connections from one address at once: a checker or a scraper needs one or two, so one address
/// holding idle sockets cannot take the health check of the others down.
constexpr std::size_t max_per_source = 8;
}

struct http_endpoint::core {
  core(http_endpoint_config c, http_get_handler h) : config(std::move(c)), handler(std::move(h)) {}
  const http_endpoint_config config;
  const http_get_handler handler;
  bool stopped = false;
  std::atomic<int> live{0};  // exchanges in progress
  detail::admission admit{max_per_source};
  log_limit full_log, per_source_log;
  // Destroyed after the parts below, which run on it.
  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::shared_ptr<detail::listener> listener;
  detail::io_threads threads;
};

namespace {

using request_parser = http::request_parser<http::empty_body>;

void limit(request_parser& parser) {
  parser.header_limit(max_header_bytes);
  parser.body_limit(0);
}

/// The answer to what the parser made of a request (`ec`: how reading it ended); nullopt when the
/// client went away or fell silent, and nothing is answered. `head`: a HEAD request (no body sent).
std::optional<http_answer> decide(boost::system::error_code ec, const request_parser& parser,
                                  const http_get_handler& handler, bool& head) {
  if (ec == http::error::header_limit) return http_answer{431, "text/plain; charset=utf-8", "request header too large\n"};
  if (ec == http::error::body_limit) return http_answer{413, "text/plain; charset=utf-8", "no request body expected\n"};
  if (ec == beast::error::timeout || ec == http::error::end_of_stream || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == net::error::operation_aborted)
    return std::nullopt;
  if (ec) return http_answer{400, "text/plain; charset=utf-8", "malformed HTTP request\n"};
  const auto& request = parser.get();
  head = request.method() == http::verb::head;
  if (request.method() != http::verb::get && !head)
    return http_answer{405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
  const std::string path(path_of(std::string_view(request.target().data(), request.target().size())));
  // Origin-form only ("/healthz"): "*", an absolute URL or stray bytes name nothing served here.
  if (path.empty() || path.front() != '/' || path.find('#') != std::string::npos)
    return http_answer{400, "text/plain; charset=utf-8", "the request target must be a path such as /healthz\n"};
  try {
    return handler(path);
  } catch (const std::exception& e) {
    logger()->error("http endpoint: the handler threw on {}: {}", loggable_path(path), e.what());
    return http_answer{500, "text/plain; charset=utf-8", "internal error\n"};
  }
}

/// One request, one answer, then the connection closes.
class exchange : public std::enable_shared_from_this<exchange> {
 public:
  exchange(http_endpoint::core& core, tcp::socket socket, detail::admission::ticket ticket)
      : core_(core), stream_(std::move(socket)), ticket_(std::move(ticket)) {
    ++core_.live;
  }
  ~exchange() { --core_.live; }

  void start() {
    limit(parser_);
    stream_.expires_after(core_.config.request_timeout);
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_request(ec); });
  }

 private:
  void on_request(boost::system::error_code ec) {
    if (auto out = decide(ec, parser_, core_.handler, head_)) answer(std::move(*out));
  }

  void answer(http_answer out) {
    response_.version(11);
    response_.result(out.status);
    response_.set(http::field::server, "firebreak");
    response_.set(http::field::content_type, out.content_type);
    response_.set(http::field::cache_control, "no-store");
    if (out.status == 405) response_.set(http::field::allow, "GET, HEAD");
    response_.keep_alive(false);
    response_.body() = std::move(out.body);
    response_.prepare_payload();
    if (head_) response_.body().clear();  // Content-Length stays: that of the GET
    stream_.expires_after(core_.config.request_timeout);
    http::async_write(stream_, response_, [self = shared_from_this()](boost::system::error_code, std::size_t) {
      boost::system::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      self->stream_.close();
    });
  }

  http_endpoint::core& core_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  request_parser parser_;
  detail::admission::ticket ticket_;  // counts against the remote address while it lasts
  http::response<http::string_body> response_;
  bool head_ = false;
};

}  // namespace

http_endpoint::http_endpoint(http_endpoint_config config, http_get_handler handler)
    : core_(std::make_unique<core>(std::move(config), std::move(handler))) {}

http_endpoint::~http_endpoint() { stop(); }

std::optional<std::string> http_endpoint::start() {
  if (core_->listener) return "this HTTP endpoint was already started";
  if (!core_->handler) return "the HTTP endpoint has no handler";
  std::string why;
  core* c = core_.get();
  core_->listener = detail::listener::open(
      core_->io, core_->config.bind_address, core_->config.port,
      [c](tcp::socket socket) {
        if (c->live.load() >= max_connections) {
          if (auto n = c->full_log.due(log_limit::clock::now()))
            logger()->warn("http endpoint: {} connections already; closing new ones ({} since the last such line)",
                           max_connections, *n);
          return;  // the socket closes as it goes out of scope
        }
        boost::system::error_code ec;
        const auto remote = socket.remote_endpoint(ec);
        if (ec) return;
        auto ticket = c->admit.admit(remote.address().to_string());
        if (!ticket) {
          if (auto n = c->per_source_log.due(log_limit::clock::now()))
            logger()->warn("http endpoint: {} holds {} connections already; closing new ones from it ({} since "
                           "the last such line)",
                           remote.address().to_string(), max_per_source, *n);
          return;
        }
        std::make_shared<exchange>(*c, std::move(socket), std::move(*ticket))->start();
      },
      why);
  if (!core_->listener) return why;
  core_->work.emplace(net::make_work_guard(core_->io));
  core_->threads.start(core_->io, 1, "fb-http");
  core_->listener->start();
  return std::nullopt;
}

void http_endpoint::stop() {
  if (!core_->listener || core_->stopped) return;
  if (core_->threads.on_this_thread()) throw std::logic_error("http_endpoint::stop() called from its own handler");
  core_->stopped = true;
  core_->listener->stop();
  core_->work.reset();
  core_->io.stop();
  core_->threads.join();
  core_->listener->close_now();
}

std::uint16_t http_endpoint::port() const { return core_->listener ? core_->listener->port() : 0; }

std::optional<http_answer> answer_for_bytes(std::string_view bytes, const http_get_handler& handler) {
  request_parser parser;
  limit(parser);
  parser.eager(true);
  boost::system::error_code ec;
  while (!bytes.empty() && !parser.is_done()) {
    const auto used = parser.put(net::buffer(bytes.data(), bytes.size()), ec);
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
    if (ec) break;
    bytes.remove_prefix(used);
    if (used == 0) break;
  }
  if (!ec && !parser.is_done()) {
    // The connection ended here: what the live endpoint's read reports then.
    parser.put_eof(ec);
    if (!ec) ec = http::error::end_of_stream;
  }
  bool head = false;
  return decide(ec, parser, handler, head);
}

}  // namespace firebreak::websocket
