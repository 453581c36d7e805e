#include "transport/websocket/listener.hpp"

#include <algorithm>

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>

#include "transport/websocket/logger.hpp"
#include "transport/websocket/tls_context.hpp"

namespace firebreak::websocket::detail {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

std::string describe(const net::ip::address& address, std::uint16_t port) {
  return address.is_v6() ? "[" + address.to_string() + "]:" + std::to_string(port)
                         : address.to_string() + ":" + std::to_string(port);
}

}  // namespace

listener::listener(net::io_context& io, accept_handler on_accept)
    : io_(io), strand_(net::make_strand(io)), acceptor_(strand_), retry_(strand_), on_accept_(std::move(on_accept)) {}

std::shared_ptr<listener> listener::open(net::io_context& io, const std::string& address, std::uint16_t port,
                                         accept_handler on_accept, std::string& why) {
  boost::system::error_code ec;
  auto ip = net::ip::make_address(address, ec);
  if (ec) {
    why = "cannot listen on '" + address + "': not an IP address";
    return nullptr;
  }
  auto self = std::make_shared<listener>(io, std::move(on_accept));
  tcp::endpoint endpoint(ip, port);
  auto& acceptor = self->acceptor_;
  auto failed = [&](const char* step) {
    why = "cannot listen on " + describe(ip, port) + " (" + step + "): " + ec.message();
    if (ec == net::error::address_in_use) why += "; is another process using port " + std::to_string(port) + "?";
    return nullptr;
  };
  if (acceptor.open(endpoint.protocol(), ec); ec) return failed("socket");
  // Dual stack on "::", so one portal port serves IPv4 and IPv6 peers.
  if (ip.is_v6() && ip.is_unspecified()) acceptor.set_option(net::ip::v6_only(false), ec);
  // A restarted portal must get its port back while old connections sit in TIME_WAIT. On Linux this
  // does not let two listeners share a port.
  if (acceptor.set_option(tcp::acceptor::reuse_address(true), ec); ec) return failed("SO_REUSEADDR");
  if (acceptor.bind(endpoint, ec); ec) return failed("bind");
  if (acceptor.listen(net::socket_base::max_listen_connections, ec); ec) return failed("listen");
  self->port_ = acceptor.local_endpoint(ec).port();
  self->name_ = describe(ip, self->port_);
  return self;
}

std::shared_ptr<listener> listener::open_tls(net::io_context& io, const std::string& address, std::uint16_t port,
                                             const std::filesystem::path& cert_path,
                                             const std::filesystem::path& key_path,
                                             std::unique_ptr<net::ssl::context>& tls, const std::atomic<bool>& stopping,
                                             connection_limit limit, admitted_handler on_accept, std::string& why) {
  tls = make_server_tls_context(cert_path, key_path, why);
  if (!tls) return nullptr;
  // Shared by the copies of the handler; a flood of refusals costs a line a second, not one each.
  struct refusals {
    admission admit;
    log_limit full, per_source;
    explicit refusals(std::size_t n) : admit(n) {}
  };
  auto r = std::make_shared<refusals>(limit.per_source);
  return open(
      io, address, port,
      [&stopping, limit = std::move(limit), on_accept = std::move(on_accept), r](tcp::socket socket) {
        if (stopping) return;
        if (const auto live = limit.live(); live >= limit.max) {
          if (auto n = r->full.due(log_limit::clock::now()))
            logger()->warn("{} {} ({} refused since the last such line)", live, limit.refusal, *n);
          return;  // the socket closes as it goes out of scope
        }
        boost::system::error_code ec;
        const auto remote = socket.remote_endpoint(ec);
        if (ec) return;  // gone already
        auto from = remote.address();
        if (from.is_v6() && from.to_v6().is_v4_mapped()) from = net::ip::make_address_v4(net::ip::v4_mapped, from.to_v6());
        auto ticket = r->admit.admit(from.to_string());
        if (!ticket) {
          if (auto n = r->per_source.due(log_limit::clock::now()))
            logger()->warn("{} holds {} connections that have not finished their handshake: refusing more ({} "
                           "refused since the last such line)",
                           from.to_string(), limit.per_source, *n);
          return;
        }
        on_accept(std::move(socket), std::move(*ticket));
      },
      why);
}

void listener::start() {
  net::post(strand_, [self = shared_from_this()] {
    logger()->info("listening on {}", self->name_);
    self->accept();
  });
}

void listener::stop() {
  net::post(strand_, [self = shared_from_this()] {
    self->stopped_ = true;
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
    self->retry_.cancel();
  });
}

void listener::close_now() {
  stopped_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  retry_.cancel();
}

void listener::accept() {
  if (stopped_) return;
  acceptor_.async_accept(net::make_strand(io_), [self = shared_from_this()](boost::system::error_code ec,
                                                                            tcp::socket socket) {
    self->on_accepted(ec, std::move(socket));
  });
}

void listener::on_accepted(boost::system::error_code ec, tcp::socket socket) {
  if (stopped_) return;
  if (!ec) {
    backoff_ = std::chrono::milliseconds(50);
    // Replies and pushes are small and often back to back (a phx_reply, then the push it led to):
    // without TCP_NODELAY, Nagle and delayed ACKs hold the second one back ~40 ms.
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    on_accept_(std::move(socket));
    accept();
    return;
  }
  // A connection that was reset before we took it costs nothing: take the next one at once.
  if (ec == net::error::connection_aborted) {
    accept();
    return;
  }
  logger()->warn("accepting on {} failed: {}; trying again in {} ms", name_, ec.message(), backoff_.count());
  retry_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(1000));
  retry_.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
    if (!wait_ec) self->accept();
  });
}

}  // namespace firebreak::websocket::detail
