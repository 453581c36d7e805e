// The portal's front door: the private CA, the TLS WebSocket server and its blocking client, and the
// HTTPS JSON server. Everything runs on 127.0.0.1 with ports the system chooses; waits are bounded
// conditions (a broken server fails them), never sleeps.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>

#include "tests/support/local_machine.hpp"
#include "transport/websocket/admission.hpp"
#include "transport/websocket/http_endpoint.hpp"
#include "transport/websocket/https_client.hpp"
#include "transport/websocket/log_limit.hpp"
#include "transport/websocket/https_server.hpp"
#include "transport/websocket/logger.hpp"
#include "transport/websocket/target.hpp"
#include "transport/websocket/tls_bootstrap.hpp"
#include "transport/websocket/wss_client.hpp"
#include "transport/websocket/wss_server.hpp"

using namespace firebreak::websocket;
using firebreak::test::read_file;
using firebreak::test::temp_directory;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// How long a test waits for something that a working server does at once.
constexpr auto patience = 10s;

/// Warnings and errors only: an info line per session would bury a failure.
[[maybe_unused]] const bool quiet_logs = [] {
  logger()->set_level(spdlog::level::warn);
  return true;
}();

/// One CA and server certificate (for 127.0.0.1 and localhost) shared by the server tests.
const bootstrap_result& certificates() {
  static temp_directory dir;
  static bootstrap_result made = ensure_certificates(dir.path(), {"127.0.0.1", "localhost"}, std::chrono::system_clock::now());
  REQUIRE_MESSAGE(made, made.error.value_or(""));
  return made;
}

wss_server_config server_config() {
  wss_server_config config;
  config.bind_address = "127.0.0.1";
  config.port = 0;
  config.cert_path = certificates().server_cert_path;
  config.key_path = certificates().server_key_path;
  return config;
}

std::size_t entries(const char* dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++n;
  return n;
}
std::size_t thread_count() { return entries("/proc/self/task"); }
std::size_t open_descriptors() { return entries("/proc/self/fd"); }

/// A handler that records everything and, unless told otherwise, echoes text back.
class recorder : public wss_handler {
 public:
  std::function<open_decision(const request_info&)> decide;
  bool echo = true;
  wss_server* server = nullptr;

  open_decision on_open(session_id id, const request_info& request) override {
    std::lock_guard lock(mutex_);
    opened_.emplace(id, request);
    changed_.notify_all();
    return decide ? decide(request) : open_decision::accept();
  }
  void on_text(session_id id, std::string text) override {
    if (echo) server->send(id, text);
    std::lock_guard lock(mutex_);
    texts_.emplace_back(id, std::move(text));
    changed_.notify_all();
  }
  void on_close(session_id id, const close_reason& reason) override {
    std::lock_guard lock(mutex_);
    closed_.emplace(id, reason);
    changed_.notify_all();
  }

  /// Waits until `condition` (run under the lock) holds; false after `patience`.
  bool wait(const std::function<bool()>& condition) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, patience, condition);
  }
  std::map<session_id, request_info> opened() {
    std::lock_guard lock(mutex_);
    return opened_;
  }
  std::map<session_id, close_reason> closed() {
    std::lock_guard lock(mutex_);
    return closed_;
  }
  std::size_t closed_count() {
    std::lock_guard lock(mutex_);
    return closed_.size();
  }
  // For wait() conditions, which already hold the lock.
  const std::map<session_id, request_info>& opened_locked() const { return opened_; }
  const std::map<session_id, close_reason>& closed_locked() const { return closed_; }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<session_id, request_info> opened_;
  std::vector<std::pair<session_id, std::string>> texts_;
  std::map<session_id, close_reason> closed_;
};

/// A started server with its recorder.
struct running_server {
  explicit running_server(wss_server_config config = server_config()) : server(std::move(config), handler) {
    handler.server = &server;
    auto error = server.start();
    REQUIRE_MESSAGE(!error, error.value_or(""));
    REQUIRE(server.port() != 0);
  }
  recorder handler;
  wss_server server;
};

std::unique_ptr<wss_client> connect(const running_server& s, const std::string& target = "/socket/websocket",
                                    const fs::path& ca = certificates().ca_cert_path) {
  auto result = wss_client::connect("127.0.0.1", s.server.port(), target, ca, patience);
  REQUIRE_MESSAGE(result.client, (result.error ? result.error->message : ""));
  return std::move(result.client);
}

std::string receive(wss_client& client) {
  auto got = client.receive_text(patience);
  REQUIRE_MESSAGE(got.text, (got.error ? got.error->message : "timed out"));
  return *got.text;
}

/// Reads until the connection ends; the error that ended it.
client_error receive_until_closed(wss_client& client) {
  for (;;) {
    auto got = client.receive_text(patience);
    REQUIRE_FALSE(got.timed_out());
    if (got.error) return *got.error;
  }
}

}  // namespace

// ---- the private CA ----------------------------------------------------------------------------------

TEST_CASE("the private CA is made on the first start and reused after; the server certificate follows the names") {
  temp_directory dir;
  const auto now = std::chrono::system_clock::now();

  auto first = ensure_certificates(dir.path(), {"127.0.0.1", "localhost"}, now);
  REQUIRE_MESSAGE(first, first.error.value_or(""));
  CHECK(first.created);
  CHECK(first.ca_created);
  for (const auto& key : {first.server_key_path, dir.path() / "ca-key.pem"}) {
    struct stat st {};
    REQUIRE(::stat(key.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  const std::string ca = read_file(first.ca_cert_path);
  const std::string server = read_file(first.server_cert_path);
  CHECK(ca.find("BEGIN CERTIFICATE") != std::string::npos);

  SUBCASE("a second start with the same names reuses all four files") {
    auto second = ensure_certificates(dir.path(), {"localhost", "127.0.0.1"}, now + std::chrono::hours(24));
    REQUIRE(second);
    CHECK_FALSE(second.created);
    CHECK_FALSE(second.ca_created);
    CHECK(read_file(second.ca_cert_path) == ca);
    CHECK(read_file(second.server_cert_path) == server);
  }
  SUBCASE("other names: a new server certificate from the same CA") {
    auto changed = ensure_certificates(dir.path(), {"127.0.0.1", "portal.example"}, now);
    REQUIRE(changed);
    CHECK(changed.created);
    CHECK_FALSE(changed.ca_created);
    CHECK(read_file(changed.ca_cert_path) == ca);
    CHECK(read_file(changed.server_cert_path) != server);
  }
  SUBCASE("a server certificate expiring within 30 days is renewed, the CA kept") {
    auto later = ensure_certificates(dir.path(), {"127.0.0.1", "localhost"}, now + server_validity - std::chrono::days(10));
    REQUIRE(later);
    CHECK(later.created);
    CHECK_FALSE(later.ca_created);
    CHECK(read_file(later.ca_cert_path) == ca);
  }
  SUBCASE("renewal without the CA key is an error that says what to do") {
    fs::remove(dir.path() / "ca-key.pem");
    auto reused = ensure_certificates(dir.path(), {"127.0.0.1", "localhost"}, now);
    CHECK(reused);  // nothing to sign: the key is not needed
    auto renew = ensure_certificates(dir.path(), {"portal.example"}, now);
    REQUIRE_FALSE(renew);
    CHECK(renew.error->find("ca-key.pem") != std::string::npos);
  }
  SUBCASE("a name that is neither a DNS name nor an address is refused") {
    auto bad = ensure_certificates(dir.path(), {"portal example,IP:1.2.3.4"}, now);
    REQUIRE_FALSE(bad);
    CHECK(bad.error->find("portal example") != std::string::npos);
  }
}

TEST_CASE("a client trusts the server through the CA file, and refuses another CA or another host name") {
  running_server s;
  SUBCASE("the portal's CA: connected") {
    auto client = connect(s);
    CHECK(client->is_open());
  }
  SUBCASE("another portal's CA: the TLS handshake fails") {
    temp_directory other;
    auto other_ca = ensure_certificates(other.path(), {"127.0.0.1"}, std::chrono::system_clock::now());
    REQUIRE(other_ca);
    auto result = wss_client::connect("127.0.0.1", s.server.port(), "/socket/websocket", other_ca.ca_cert_path, patience);
    REQUIRE(result.error);
    CHECK(result.error->what == client_error::kind::tls);
    CHECK(s.handler.opened().empty());
  }
  SUBCASE("a certificate for another name: the TLS handshake fails") {
    temp_directory elsewhere;
    auto named = ensure_certificates(elsewhere.path(), {"portal.example"}, std::chrono::system_clock::now());
    REQUIRE(named);
    auto config = server_config();
    config.cert_path = named.server_cert_path;
    config.key_path = named.server_key_path;
    running_server misnamed(config);
    auto result = wss_client::connect("127.0.0.1", misnamed.server.port(), "/", named.ca_cert_path, patience);
    REQUIRE(result.error);
    CHECK(result.error->what == client_error::kind::tls);
  }
}

// ---- the WebSocket server ----------------------------------------------------------------------------

TEST_CASE("a text message comes back from an echoing handler") {
  running_server s;
  auto client = connect(s);
  REQUIRE_FALSE(client->send_text(R"(["1","1","phoenix","heartbeat",{}])"));
  CHECK(receive(*client) == R"(["1","1","phoenix","heartbeat",{}])");
  REQUIRE_FALSE(client->send_text(""));
  CHECK(receive(*client).empty());
}

TEST_CASE("query parameters reach on_open percent-decoded; the path comes without the query") {
  running_server s;
  auto client = connect(s, "/socket/websocket?token=a%20b%2Bc%2F%3D&vsn=2.0.0&flag");
  auto opened = s.handler.opened();
  REQUIRE(opened.size() == 1);
  const auto& request = opened.begin()->second;
  CHECK(request.path == "/socket/websocket");
  CHECK(request.query.at("token") == "a b+c/=");
  CHECK(request.query.at("vsn") == "2.0.0");
  CHECK(request.query.at("flag").empty());
  CHECK(request.remote_address == "127.0.0.1");
  CHECK(request.headers.at("user-agent") == "firebreak");
  CHECK(s.server.open_sessions() == 1);
}

TEST_CASE("a refusal in on_open reaches the client as its HTTP status, and no session exists") {
  running_server s;
  s.handler.decide = [](const request_info& request) {
    return request.query.count("token") && request.query.at("token") == "good" ? open_decision::accept()
                                                                               : open_decision::reject(403, "invalid token");
  };
  auto refused = wss_client::connect("127.0.0.1", s.server.port(), "/socket/websocket?token=bad",
                                     certificates().ca_cert_path, patience);
  REQUIRE(refused.error);
  CHECK(refused.error->what == client_error::kind::refused);
  CHECK(refused.error->http_status == 403);
  CHECK(refused.error->message.find("invalid token") != std::string::npos);
  CHECK(s.server.open_sessions() == 0);
  CHECK_FALSE(s.server.send(s.handler.opened().begin()->first, "anyone there?"));

  auto accepted = connect(s, "/socket/websocket?token=good");
  CHECK(s.server.open_sessions() == 1);
  CHECK(s.handler.closed_count() == 0);  // the refused request never became a session to close
}

TEST_CASE("requests that are no WebSocket upgrade, or carry a malformed query, get HTTP errors") {
  running_server s;
  auto plain = https_request("127.0.0.1", s.server.port(), "GET", "/socket/websocket", {}, "",
                             certificates().ca_cert_path, patience);
  REQUIRE_FALSE(plain.error);
  CHECK(plain.status == 426);

  auto twice = wss_client::connect("127.0.0.1", s.server.port(), "/socket/websocket?token=a&token=b",
                                   certificates().ca_cert_path, patience);
  REQUIRE(twice.error);
  CHECK(twice.error->http_status == 400);
  auto malformed = wss_client::connect("127.0.0.1", s.server.port(), "/socket/websocket?token=%zz",
                                       certificates().ca_cert_path, patience);
  REQUIRE(malformed.error);
  CHECK(malformed.error->http_status == 400);
  CHECK(s.handler.opened().empty());  // refused before the handler was asked
}

TEST_CASE("a message over max_message_bytes closes the session with 1009 and a reason; others go on") {
  auto config = server_config();
  config.max_message_bytes = 1024;
  running_server s(config);
  auto bystander = connect(s);
  auto client = connect(s);

  REQUIRE_FALSE(client->send_text(std::string(1024, 'x')));  // exactly the limit is fine
  CHECK(receive(*client).size() == 1024);
  (void)client->send_text(std::string(4096, 'y'));
  auto ended = receive_until_closed(*client);
  CHECK(ended.what == client_error::kind::closed);
  CHECK(ended.close_code == close_code::message_too_big);
  CHECK(ended.close_reason.find("1024") != std::string::npos);

  REQUIRE(s.handler.wait([&] { return s.handler.closed_locked().size() == 1; }));
  const auto reason = s.handler.closed().begin()->second;
  CHECK(reason.code == close_code::message_too_big);
  CHECK(reason.by == closed_by::server);

  REQUIRE_FALSE(bystander->send_text("still here"));
  CHECK(receive(*bystander) == "still here");
}

TEST_CASE("a binary message closes the session with 1003") {
  running_server s;
  auto client = connect(s);
  REQUIRE_FALSE(client->send_binary(std::string("\x00\x01\x02", 3)));
  auto ended = receive_until_closed(*client);
  CHECK(ended.close_code == close_code::unsupported_data);
  CHECK_FALSE(ended.close_reason.empty());
}

TEST_CASE("200 sessions echo at the same time without mixing their messages") {
  auto config = server_config();
  config.threads = 2;
  running_server s(config);
  constexpr int workers = 4;
  constexpr int per_worker = 50;
  std::atomic<int> matched{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      std::vector<std::unique_ptr<wss_client>> clients;
      for (int i = 0; i < per_worker; ++i) {
        auto result = wss_client::connect("127.0.0.1", s.server.port(), "/socket/websocket", certificates().ca_cert_path,
                                          patience);
        if (!result.client) {
          ++failures;
          return;
        }
        clients.push_back(std::move(result.client));
      }
      for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < per_worker; ++i) {
          if (clients[i]->send_text("client " + std::to_string(w) + "/" + std::to_string(i) + " round " +
                                    std::to_string(round))) {
            ++failures;
          }
        }
        for (int i = 0; i < per_worker; ++i) {
          auto got = clients[i]->receive_text(patience);
          if (got.text && *got.text == "client " + std::to_string(w) + "/" + std::to_string(i) + " round " +
                                           std::to_string(round)) {
            ++matched;
          } else {
            ++failures;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(matched == workers * per_worker * 3);
  CHECK(s.handler.wait([&] { return s.handler.opened_locked().size() == workers * per_worker; }));
  // The clients closed politely on their way out: every session reported, by the peer, with 1000.
  REQUIRE(s.handler.wait([&] { return s.handler.closed_locked().size() == workers * per_worker; }));
  for (const auto& [id, reason] : s.handler.closed()) {
    CHECK(reason.by == closed_by::peer);
    CHECK(reason.code == close_code::normal);
  }
  CHECK(s.server.open_sessions() == 0);
}

TEST_CASE("send() from another thread reaches the client; close() reaches it with code and reason") {
  running_server s;
  s.handler.echo = false;
  auto client = connect(s);
  const session_id id = s.handler.opened().begin()->first;

  std::thread pusher([&] {
    for (int i = 0; i < 100; ++i) CHECK(s.server.send(id, "push " + std::to_string(i)));
    CHECK(s.server.close(id, 4001, "access revoked"));
    CHECK_FALSE(s.server.send(id, "too late"));
  });
  pusher.join();
  for (int i = 0; i < 100; ++i) CHECK(receive(*client) == "push " + std::to_string(i));
  auto ended = receive_until_closed(*client);
  CHECK(ended.close_code == 4001);
  CHECK(ended.close_reason == "access revoked");
  REQUIRE(s.handler.wait([&] { return s.handler.closed_locked().size() == 1; }));
  CHECK(s.handler.closed().at(id).code == 4001);
  CHECK_FALSE(s.server.send(id, "gone"));
}

TEST_CASE("a close from the client reaches on_close as the peer's, with its code and reason") {
  running_server s;
  auto client = connect(s);
  client->close(4000, "bye");
  CHECK_FALSE(client->is_open());
  REQUIRE(s.handler.wait([&] { return s.handler.closed_locked().size() == 1; }));
  const auto reason = s.handler.closed().begin()->second;
  CHECK(reason.by == closed_by::peer);
  CHECK(reason.code == 4000);
  CHECK(reason.reason == "bye");
}

TEST_CASE("a session that sends nothing is closed as idle") {
  auto config = server_config();
  config.idle_timeout = 300ms;
  running_server s(config);
  auto quiet = connect(s);
  auto ended = receive_until_closed(*quiet);
  CHECK(ended.close_code == close_code::going_away);
  CHECK(ended.close_reason == "idle");
}

TEST_CASE("a client that does not read is closed when its outbound queue overflows, without the queue growing") {
  auto config = server_config();
  config.max_outbound_bytes = 256 * 1024;
  config.handshake_timeout = 2s;  // bounds the close handshake the stalled client never answers
  running_server s(config);
  s.handler.echo = false;
  auto stalled = connect(s);
  const session_id id = s.handler.opened().begin()->first;

  const std::string chunk(64 * 1024, 'z');
  bool refused = false;
  // Socket buffers take some megabytes first; the bound is what stops this loop, not its length.
  for (int i = 0; i < 100000 && !refused; ++i) refused = !s.server.send(id, chunk);
  CHECK(refused);
  REQUIRE(s.handler.wait([&] { return s.handler.closed_locked().size() == 1; }));
  const auto reason = s.handler.closed().at(id);
  CHECK(reason.code == close_code::policy_violation);
  CHECK(reason.reason.find("slow") != std::string::npos);
}

TEST_CASE("stop() with sessions open closes them all with 1001, returns promptly and leaves no thread behind") {
  (void)certificates();  // made before counting: not what this test is about
  const std::size_t threads_before = thread_count();
  const std::size_t descriptors_before = open_descriptors();
  std::vector<std::unique_ptr<wss_client>> clients;
  auto config = server_config();
  config.threads = 3;
  config.shutdown_timeout = 500ms;
  auto s = std::make_unique<running_server>(config);
  CHECK(thread_count() == threads_before + 3);
  for (int i = 0; i < 5; ++i) clients.push_back(connect(*s));
  REQUIRE(s->server.open_sessions() == 5);

  // The clients do not run while the server stops, so none answers the close frame: the bound decides.
  const auto started = std::chrono::steady_clock::now();
  s->server.stop();
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(took < 5s);
  CHECK(thread_count() == threads_before);
  CHECK(s->handler.closed_count() == 5);
  for (const auto& [id, reason] : s->handler.closed()) {
    CHECK(reason.code == close_code::going_away);
    CHECK(reason.reason == "shutdown");
  }
  CHECK(s->server.open_sessions() == 0);
  for (auto& client : clients) CHECK(receive_until_closed(*client).close_code == close_code::going_away);
  s->server.stop();  // idempotent
  clients.clear();
  s.reset();
  CHECK(open_descriptors() == descriptors_before);
}

TEST_CASE("a port already in use is an error that names the port") {
  running_server first;
  auto config = server_config();
  config.port = first.server.port();
  recorder handler;
  wss_server second(config, handler);
  auto error = second.start();
  REQUIRE(error);
  CHECK(error->find(std::to_string(first.server.port())) != std::string::npos);
  CHECK(second.port() == 0);
}

TEST_CASE("a missing certificate is an error at start, not a crash") {
  auto config = server_config();
  config.cert_path = "/nonexistent/server-cert.pem";
  recorder handler;
  wss_server server(config, handler);
  auto error = server.start();
  REQUIRE(error);
  CHECK(error->find("/nonexistent/server-cert.pem") != std::string::npos);
}

// ---- the HTTPS JSON server ---------------------------------------------------------------------------

TEST_CASE("the HTTPS JSON server answers a request with the handler's status and body; 413 past the limit") {
  https_server_config config;
  config.cert_path = certificates().server_cert_path;
  config.key_path = certificates().server_key_path;
  std::atomic<int> calls{0};
  https_server server(config, [&](const json_request& request) {
    ++calls;
    auto body = nlohmann::json::parse(request.body.empty() ? "{}" : request.body);
    nlohmann::json reply = {{"method", request.method},
                            {"target", request.target},
                            {"token", request.headers.count("authorization") ? request.headers.at("authorization") : ""},
                            {"name", body.value("name", "")}};
    return json_response{request.method == "POST" ? 201u : 200u, reply.dump()};
  });
  auto error = server.start();
  REQUIRE_MESSAGE(!error, error.value_or(""));

  auto created = https_request("127.0.0.1", server.port(), "POST", "/v1/sites?verbose=1",
                               {{"Authorization", "Bearer admin-token"}, {"Content-Type", "application/json"}},
                               R"({"name":"berlin"})", certificates().ca_cert_path, patience);
  REQUIRE_MESSAGE(!created.error, (created.error ? created.error->message : ""));
  CHECK(created.status == 201);
  CHECK(created.headers.at("content-type") == "application/json");
  auto reply = nlohmann::json::parse(created.body);
  CHECK(reply["method"] == "POST");
  CHECK(reply["target"] == "/v1/sites?verbose=1");
  CHECK(reply["token"] == "Bearer admin-token");
  CHECK(reply["name"] == "berlin");

  auto listed = https_request("localhost", server.port(), "GET", "/v1/sites", {}, "", certificates().ca_cert_path, patience);
  REQUIRE_FALSE(listed.error);
  CHECK(listed.status == 200);

  auto too_big = https_request("127.0.0.1", server.port(), "POST", "/v1/sites", {}, std::string((1 << 20) + 1, ' '),
                               certificates().ca_cert_path, patience);
  REQUIRE_MESSAGE(!too_big.error, (too_big.error ? too_big.error->message : ""));
  CHECK(too_big.status == 413);
  CHECK(calls == 2);

  server.stop();
  auto after = https_request("127.0.0.1", server.port(), "GET", "/v1/sites", {}, "", certificates().ca_cert_path, 2s);
  REQUIRE(after.error);
  CHECK_MESSAGE(after.error->what == client_error::kind::connect, after.error->message);
}

// ---- request targets ---------------------------------------------------------------------------------

TEST_CASE("request targets split into a raw path and decoded, unique query parameters") {
  auto plain = parse_target("/socket/websocket");
  REQUIRE(plain.target);
  CHECK(plain.target->path == "/socket/websocket");
  CHECK(plain.target->query.empty());

  auto full = parse_target("/a%20b?x=1+2&y=%41%42&&z");
  REQUIRE(full.target);
  CHECK(full.target->path == "/a%20b");
  CHECK(full.target->query.at("x") == "1 2");
  CHECK(full.target->query.at("y") == "AB");
  CHECK(full.target->query.at("z").empty());

  CHECK_FALSE(parse_target("socket").target);
  CHECK_FALSE(parse_target("/?t=%4").target);
  CHECK_FALSE(parse_target("/?t=%00").target);
  auto repeated = parse_target("/?token=secret1&token=secret2");
  REQUIRE(repeated.error);
  CHECK(repeated.error->find("secret") == std::string::npos);  // values never appear in errors
}

// ---- sockets that never speak ------------------------------------------------------------------------

namespace {

/// `n` TCP connections from `from` (a loopback address of its own) to 127.0.0.1:port that never send a
/// byte, as a flood would open them.
struct idle_sockets {
  std::vector<int> fds;
  idle_sockets(const char* from, std::uint16_t port, int n) {
    for (int i = 0; i < n; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      REQUIRE(fd >= 0);
      sockaddr_in src{};
      src.sin_family = AF_INET;
      ::inet_pton(AF_INET, from, &src.sin_addr);
      REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0);
      sockaddr_in dst{};
      dst.sin_family = AF_INET;
      dst.sin_port = htons(port);
      ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
      REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0);
      fds.push_back(fd);
    }
  }
  ~idle_sockets() {
    for (int fd : fds) ::close(fd);
  }
  /// How many the server has closed (end of stream or reset waiting).
  int closed_by_server() const {
    int n = 0;
    for (int fd : fds) {
      pollfd p{fd, POLLIN | POLLRDHUP, 0};
      if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLIN))) ++n;
    }
    return n;
  }
  bool wait_closed(int at_least, std::chrono::seconds bound = patience) const {
    const auto until = std::chrono::steady_clock::now() + bound;
    while (closed_by_server() < at_least) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }
};

}  // namespace

TEST_CASE("unproven connections are capped per address: one flooding address does not lock out another") {
  SUBCASE("admission counts per address, releases once, and forgets addresses with none") {
    detail::admission admit(2);
    auto a = admit.admit("10.0.0.1");
    auto b = admit.admit("10.0.0.1");
    REQUIRE(a);
    REQUIRE(b);
    CHECK_FALSE(admit.admit("10.0.0.1"));
    CHECK(admit.refused() == 1);
    auto other = admit.admit("10.0.0.2");
    CHECK(other);
    CHECK(admit.sources() == 2);
    a->release();
    a->release();  // twice is once
    CHECK(admit.pending("10.0.0.1") == 1);
    CHECK(admit.admit("10.0.0.1"));  // the slot came back (and goes again at once: a temporary)
    b.reset();
    other.reset();
    CHECK(admit.sources() == 0);
  }

  SUBCASE("a repeated event logs once per interval, saying how many it stands for") {
    log_limit limit(1s);
    const auto t0 = log_limit::clock::now();
    CHECK(limit.due(t0) == std::optional<std::uint64_t>(1));
    CHECK_FALSE(limit.due(t0 + 10ms));
    CHECK_FALSE(limit.due(t0 + 500ms));
    CHECK(limit.due(t0 + 1001ms) == std::optional<std::uint64_t>(3));
  }

  SUBCASE("the WebSocket server: 150 idle sockets from 127.0.0.2 against a cap of 100") {
    auto config = server_config();
    config.max_connections = 100;
    config.max_unproven_per_source = 20;
    config.handshake_timeout = 3s;
    running_server s(config);
    idle_sockets flood("127.0.0.2", s.server.port(), 150);
    // Beyond its 20, the flooding address is refused at once.
    REQUIRE(flood.wait_closed(130));
    // Without the per-address cap the 150 would hold all 100 slots and this would be refused.
    auto client = connect(s);
    REQUIRE_FALSE(client->send_text("still here", patience));
    CHECK(receive(*client) == "still here");
    // And the 20 it kept go at the handshake deadline.
    CHECK(flood.wait_closed(150));
  }

  SUBCASE("the HTTPS server: 200 idle sockets from 127.0.0.2 against a cap of 150") {
    https_server_config config;
    config.cert_path = certificates().server_cert_path;
    config.key_path = certificates().server_key_path;
    config.max_connections = 150;
    https_server server(config, [](const json_request&) { return json_response{200, "{}"}; });
    REQUIRE_FALSE(server.start());
    idle_sockets flood("127.0.0.2", server.port(), 200);
    REQUIRE(flood.wait_closed(200 - static_cast<int>(config.max_unproven_per_source)));
    auto got = https_request("127.0.0.1", server.port(), "GET", "/v1/sites", {}, "", certificates().ca_cert_path, patience);
    REQUIRE_MESSAGE(!got.error, (got.error ? got.error->message : ""));
    CHECK(got.status == 200);
  }

  SUBCASE("the health endpoint: 64 idle sockets from 127.0.0.2, and /healthz still answers") {
    http_endpoint endpoint({"127.0.0.1", 0}, [](const std::string& path) {
      return http_answer{path == "/healthz" ? 200u : 404u, "text/plain", "ok\n"};
    });
    REQUIRE_FALSE(endpoint.start());
    idle_sockets flood("127.0.0.2", endpoint.port(), 64);
    REQUIRE(flood.wait_closed(64 - 8));
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(endpoint.port());
    ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0);
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
    timeval tv{static_cast<time_t>(patience.count()), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string answer;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) answer.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    CHECK_MESSAGE(answer.rfind("HTTP/1.1 200", 0) == 0, answer);
    // The 8 it kept go at the request deadline.
    CHECK(flood.wait_closed(64));
  }
}

TEST_CASE("the access log's path hides what could be a token and escapes what is not printable") {
  CHECK(loggable_path("/v1/sites/2f0c6d5e-9a43-4c1b-8e7a-1d2c3b4a5f60?token=fba_x") ==
        "/v1/sites/2f0c6d5e-9a43-4c1b-8e7a-1d2c3b4a5f60");
  const std::string token = "fba_" + std::string(43, 'Q');
  CHECK(loggable_path("/v1/" + token + "/sites") == "/v1/(47 characters)/sites");
  CHECK(loggable_path("/v1/fbc_short") == "/v1/(9 characters)");
  CHECK(loggable_path("/v1/" + std::string(41, 'a')) == "/v1/(41 characters)");
  CHECK(loggable_path(std::string("/v1/a\x1b[31m\\b")) == "/v1/a\\x1b[31m\\x5cb");
  CHECK(loggable_path("/" + std::string(30, 'a') + "/" + std::string(300, 'b')).size() <= 200);
  CHECK(loggable_path("/") == "/");
}

TEST_CASE("the health endpoint's parsing and routing, without a socket: only origin-form paths reach the handler") {
  std::vector<std::string> routed;
  const http_get_handler route = [&](const std::string& path) -> http_answer {
    routed.push_back(path);
    return {200, "text/plain", "ok\n"};
  };
  auto status_of = [&](const std::string& bytes) {
    auto a = answer_for_bytes(bytes, route);
    return a ? static_cast<int>(a->status) : 0;
  };
  CHECK(status_of("GET /healthz?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n") == 200);
  CHECK(status_of("HEAD /metrics HTTP/1.0\r\n\r\n") == 200);
  CHECK(routed == std::vector<std::string>{"/healthz", "/metrics"});
  CHECK(status_of("GET * HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("GET http://elsewhere/healthz HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == 405);
  CHECK(status_of("GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello") == 413);
  CHECK(status_of("GET /healthz HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n") == 431);
  CHECK(status_of("not http at all\r\n\r\n") == 400);
  CHECK(status_of("") == 0);  // the client went away before asking: no answer
  CHECK(routed.size() == 2);
}
