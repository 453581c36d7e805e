#include "transport/websocket/wss_server.hpp"

#include <stdexcept>
#include <vector>

#include "transport/websocket/io_threads.hpp"
#include "transport/websocket/logger.hpp"
#include "transport/websocket/wss_session.hpp"

namespace firebreak::websocket {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

/// What stop() adds to shutdown_timeout before it stops the io_context regardless: time for the
/// sessions' last handlers (on_close) to run once their sockets are closed.
constexpr auto stop_grace = std::chrono::seconds(2);

}  // namespace

wss_server::wss_server(wss_server_config config, wss_handler& handler)
    : core_(std::make_unique<core>(std::move(config), handler)) {}

wss_server::~wss_server() { stop(); }

std::optional<std::string> wss_server::start() {
  if (core_->listener || core_->stopping) return "this WebSocket server was already started";
  core* shared = core_.get();
  return detail::start_tls_server(
      *core_, core_->sessions, "connections already: refusing one more (max_connections)", "fb-websocket",
      [shared](tcp::socket socket, detail::admission::ticket ticket) {
        std::make_shared<detail::wss_session>(*shared, std::move(socket), shared->next_id.fetch_add(1),
                                              std::move(ticket))
            ->start();
      });
}

void wss_server::stop() {
  if (!core_->listener || core_->stopped) return;
  if (core_->threads.on_this_thread()) {
    throw std::logic_error("wss_server::stop() called from one of its own handlers");
  }
  core_->stopped = true;
  core_->stopping = true;
  core_->listener->stop();

  std::vector<std::shared_ptr<detail::wss_session>> live;
  {
    std::lock_guard lock(core_->mutex);
    for (auto& [id, weak] : core_->sessions) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  const auto open = core_->open_sessions.load();
  for (auto& session : live) session->shutdown();
  live.clear();  // the sessions must be able to go away
  core_->work.reset();

  {
    std::unique_lock lock(core_->mutex);
    bool drained = core_->all_gone.wait_for(lock, core_->config.shutdown_timeout + stop_grace,
                                            [&] { return core_->sessions.empty(); });
    if (!drained) {
      logger()->warn("{} connections still busy {} ms after stop(): abandoning them", core_->sessions.size(),
                     (core_->config.shutdown_timeout + stop_grace).count());
    }
  }
  core_->io.stop();
  core_->threads.join();
  core_->listener->close_now();
  logger()->info("WebSocket server on port {} stopped ({} sessions were open)", core_->listener->port(), open);
}

std::uint16_t wss_server::port() const { return core_->listener ? core_->listener->port() : 0; }

bool wss_server::send(session_id id, std::string text) {
  auto session = core_->find(id);
  return session && session->send(std::move(text));
}

bool wss_server::close(session_id id, std::uint16_t code, std::string reason) {
  if (!close_code::sendable(code)) {
    logger()->warn("[S{}] close code {} may not be sent; using 1000", id, code);
    code = close_code::normal;
  }
  auto session = core_->find(id);
  return session && session->close(code, std::move(reason));
}

std::size_t wss_server::open_sessions() const { return core_->open_sessions.load(); }

}  // namespace firebreak::websocket
