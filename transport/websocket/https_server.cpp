#include "transport/websocket/https_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

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

constexpr std::size_t max_header_bytes = 16 * 1024;
/// After refusing a request whose body is still arriving, read and discard this much (or for
/// linger_time) before closing: closing on unread data sends a reset, and the reset can destroy our
/// answer in the client's receive queue before the client reads it (nginx's lingering close).
constexpr std::size_t linger_bytes = 8 << 20;
constexpr auto linger_time = std::chrono::seconds(1);
constexpr auto stop_grace = std::chrono::seconds(2);

}  // namespace

namespace detail {
class https_connection;
}

struct https_server::core {
  core(https_server_config cfg, json_handler h) : config(std::move(cfg)), handler(std::move(h)) {}

  const https_server_config config;
  const json_handler handler;
  std::unique_ptr<net::ssl::context> tls;
  detail::io_threads threads;
  bool stopped = false;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> next_id{1};

  std::mutex mutex;
  std::condition_variable all_gone;
  std::unordered_map<std::uint64_t, std::weak_ptr<detail::https_connection>> connections;

  // Destroyed before the registry above (queued handlers hold connections that deregister), and
  // after the two below, which use its services.
  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::shared_ptr<detail::listener> listener;
};

namespace detail {

/// One TLS connection: handshake, then request → handler → response, as long as both keep it alive.
class https_connection : public std::enable_shared_from_this<https_connection> {
 public:
  https_connection(https_server::core& core, tcp::socket socket, std::uint64_t id, admission::ticket ticket)
      : core_(core), id_(id), stream_(std::move(socket), *core.tls), ticket_(std::move(ticket)) {
    boost::system::error_code ec;
    auto remote = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) remote_ = remote.address().to_string();
  }

  ~https_connection() {
    std::lock_guard lock(core_.mutex);
    core_.connections.erase(id_);
    if (core_.connections.empty()) core_.all_gone.notify_all();
  }

  void start() {
    {
      std::lock_guard lock(core_.mutex);
      core_.connections.emplace(id_, weak_from_this());
    }
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->core_.stopping) return;
      beast::get_lowest_layer(self->stream_).expires_after(self->core_.config.handshake_timeout);
      self->stream_.async_handshake(net::ssl::stream_base::server, [self](boost::system::error_code ec) {
        if (ec) {
          logger()->debug("[H{}] TLS handshake with {} failed: {}", self->id_, self->remote_, ec.message());
          return;
        }
        self->read_request();
      });
    });
  }

  /// The server is stopping: a connection waiting for a request goes now; one in the middle of a
  /// response finishes it (bounded) and then goes.
  void shutdown() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->writing_) {
        beast::get_lowest_layer(self->stream_).expires_after(self->core_.config.shutdown_timeout);
      } else {
        self->drop();
      }
    });
  }

 private:
  void read_request() {
    if (core_.stopping) {
      close_gracefully();
      return;
    }
    parser_.emplace();
    parser_->header_limit(max_header_bytes);
    parser_->body_limit(core_.config.max_body_bytes);
    beast::get_lowest_layer(stream_).expires_after(core_.config.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_request(ec); });
  }

  void on_request(boost::system::error_code ec) {
    if (ec == http::error::body_limit) {
      respond(413, R"({"error":"request body exceeds )" + std::to_string(core_.config.max_body_bytes) + R"( bytes"})",
              false, true);
      return;
    }
    if (ec == http::error::header_limit) {
      respond(431, R"({"error":"request header too large"})", false, true);
      return;
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof) {
      close_gracefully();
      return;
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      respond(400, R"({"error":"malformed HTTP request"})", false, true);
      return;
    }
    if (ec) {
      logger()->debug("[H{}] connection from {} ends: {}", id_, remote_, ec.message());
      return;
    }

    auto request = parser_->release();
    parser_.reset();
    json_request in;
    in.method = std::string(request.method_string().data(), request.method_string().size());
    in.target = std::string(request.target().data(), request.target().size());
    for (const auto& field : request) {
      std::string name(field.name_string().data(), field.name_string().size());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      auto [it, fresh] = in.headers.emplace(std::move(name), std::string(field.value().data(), field.value().size()));
      if (!fresh) it->second.append(", ").append(field.value().data(), field.value().size());
    }
    in.body = std::move(request.body());
    in.remote_address = remote_;

    json_response out;
    try {
      out = core_.handler(in);
    } catch (const std::exception& e) {
      logger()->error("[H{}] the handler threw on {} {}: {}", id_, in.method, loggable_path(in.target), e.what());
      out = {500, R"({"error":"internal error"})"};
    }
    if (out.status < 100 || out.status > 599) {
      logger()->error("[H{}] the handler answered with HTTP status {}; sending 500", id_, out.status);
      out = {500, R"({"error":"internal error"})"};
    }
    logger()->info("[H{}] {} {} from {}: {}", id_, in.method, loggable_path(in.target), remote_, out.status);
    respond(out.status, std::move(out.body), request.keep_alive() && !core_.stopping);
  }

  void respond(unsigned status, std::string body, bool keep_alive, bool linger = false) {
    response_ = {};
    response_.version(11);
    response_.result(status);
    response_.set(http::field::server, "firebreak");
    response_.set(http::field::content_type, "application/json");
    response_.set(http::field::cache_control, "no-store");
    response_.keep_alive(keep_alive);
    response_.body() = std::move(body);
    response_.prepare_payload();
    writing_ = true;
    beast::get_lowest_layer(stream_).expires_after(core_.config.handshake_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this(), keep_alive, linger](boost::system::error_code ec, std::size_t) {
                        self->writing_ = false;
                        if (ec) return;
                        if (keep_alive) {
                          self->read_request();
                        } else if (linger) {
                          beast::get_lowest_layer(self->stream_).expires_after(linger_time);
                          self->discard_rest();
                        } else {
                          self->close_gracefully();
                        }
                      });
  }

  void discard_rest() {
    stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](boost::system::error_code ec,
                                                                               std::size_t n) {
      self->discarded_ += n;
      if (ec == net::error::eof) {
        self->close_gracefully();  // the client read our answer and said goodbye
      } else if (ec || self->discarded_ > linger_bytes) {
        self->drop();
      } else {
        self->discard_rest();
      }
    });
  }

  void close_gracefully() {
    beast::get_lowest_layer(stream_).expires_after(core_.config.shutdown_timeout);
    stream_.async_shutdown([self = shared_from_this()](boost::system::error_code) { self->drop(); });
  }

  void drop() {
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
  }

  https_server::core& core_;
  const std::uint64_t id_;
  std::string remote_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  admission::ticket ticket_;  // counts against the remote address until the connection goes
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  bool writing_ = false;
  std::array<char, 16 * 1024> discard_{};
  std::size_t discarded_ = 0;
};

}  // namespace detail

using detail::https_connection;

https_server::https_server(https_server_config config, json_handler handler)
    : core_(std::make_unique<core>(std::move(config), std::move(handler))) {}

https_server::~https_server() { stop(); }

std::optional<std::string> https_server::start() {
  if (core_->listener || core_->stopping) return "this HTTPS server was already started";
  if (!core_->handler) return "the HTTPS server has no handler";
  core* shared = core_.get();
  return detail::start_tls_server(
      *core_, core_->connections, "HTTPS connections already: refusing one more", "fb-https",
      [shared](tcp::socket socket, detail::admission::ticket ticket) {
        // The ticket stays for the connection's life: every connection counts against its address.
        std::make_shared<https_connection>(*shared, std::move(socket), shared->next_id.fetch_add(1), std::move(ticket))
            ->start();
      });
}

void https_server::stop() {
  if (!core_->listener || core_->stopped) return;
  if (core_->threads.on_this_thread()) throw std::logic_error("https_server::stop() called from its own handler");
  core_->stopped = true;
  core_->stopping = true;
  core_->listener->stop();
  std::vector<std::shared_ptr<https_connection>> live;
  {
    std::lock_guard lock(core_->mutex);
    for (auto& [id, weak] : core_->connections) {
      if (auto connection = weak.lock()) live.push_back(std::move(connection));
    }
  }
  for (auto& connection : live) connection->shutdown();
  live.clear();
  core_->work.reset();
  {
    std::unique_lock lock(core_->mutex);
    if (!core_->all_gone.wait_for(lock, core_->config.shutdown_timeout + stop_grace,
                                  [&] { return core_->connections.empty(); })) {
      logger()->warn("{} HTTPS connections still busy after stop(): abandoning them", core_->connections.size());
    }
  }
  core_->io.stop();
  core_->threads.join();
  core_->listener->close_now();
  logger()->info("HTTPS server on port {} stopped", core_->listener->port());
}

std::uint16_t https_server::port() const { return core_->listener ? core_->listener->port() : 0; }

}  // namespace firebreak::websocket
