// Two libnice agents of ours in one process, on one GLib loop thread, signalling each other directly
// (each local candidate is handed straight to the other side, as the portal would relay it):
//   - on loopback host candidates they connect and carry datagrams both ways, in batches;
//   - forced to relay through a real coturn (started here, stopped by PID) they connect on a relayed pair;
//   - with a wrong TURN password and relay-only, gathering ends with no candidate, a warning and `failed`;
//   - garbage candidates are refused with a reason; close() releases everything and is idempotent;
//   - a datagram from a stranger (no candidate of the peer) is never delivered.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "tests/interop/coturn.hpp"
#include "transport/ice/ice_agent.hpp"

namespace {

using namespace firebreak;
using namespace std::chrono_literals;
namespace coturn = firebreak::test::coturn;
namespace netns = firebreak::test::netns;

/// What one agent reported, collected on the loop thread and read by the test thread.
struct observed {
  std::mutex m;
  std::condition_variable changed;
  std::vector<std::string> candidates;
  std::optional<ice::gathering_result> gathered;
  std::vector<ice::agent_state> states;
  std::optional<ice::selected_pair> pair;
  std::vector<ice::datagram> received;
  std::size_t batches = 0;

  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(m);
    return changed.wait_for(lock, timeout, [&] { return pred(*this); });
  }
  bool reached(ice::agent_state s) {
    return wait([s](observed& o) { return std::find(o.states.begin(), o.states.end(), s) != o.states.end(); });
  }
};

/// A pair of agents wired to each other; `a` controls.
struct ice_pair {
  ice::glib_loop loop;
  observed a_seen, b_seen;
  std::shared_ptr<ice::agent> a, b;
  std::mutex peers_m;

  ice::agent_events events_for(observed& me, std::shared_ptr<ice::agent> ice_pair::*other) {
    ice::agent_events e;
    e.local_candidate = [this, &me, other](std::string c) {
      {
        std::lock_guard lock(me.m);
        me.candidates.push_back(c);
      }
      me.changed.notify_all();
      std::shared_ptr<ice::agent> to;
      {
        std::lock_guard lock(peers_m);
        to = this->*other;
      }
      std::string why;
      if (to) CHECK_MESSAGE(to->add_remote_candidate(c, why), why);
    };
    e.gathering_done = [&me](const ice::gathering_result& r) {
      {
        std::lock_guard lock(me.m);
        me.gathered = r;
      }
      me.changed.notify_all();
    };
    e.state = [&me](ice::agent_state s) {
      {
        std::lock_guard lock(me.m);
        me.states.push_back(s);
      }
      me.changed.notify_all();
    };
    e.selected = [&me](const ice::selected_pair& p) {
      {
        std::lock_guard lock(me.m);
        me.pair = p;
      }
      me.changed.notify_all();
    };
    e.datagrams = [&me](std::vector<ice::datagram>&& batch) {
      {
        std::lock_guard lock(me.m);
        ++me.batches;
        for (auto& d : batch) me.received.push_back(std::move(d));
      }
      me.changed.notify_all();
    };
    return e;
  }

  /// Starts both; b's candidates that arrive before a exists are replayed once a is up.
  void start(ice::agent_config ca, ice::agent_config cb) {
    ca.controlling = true;
    cb.controlling = false;
    ca.remote = cb.local;
    cb.remote = ca.local;
    std::string error;
    auto made_b = ice::agent::start(loop, cb, events_for(b_seen, &ice_pair::a), error);
    REQUIRE_MESSAGE(made_b, error);
    auto made_a = ice::agent::start(loop, ca, events_for(a_seen, &ice_pair::b), error);
    REQUIRE_MESSAGE(made_a, error);
    std::vector<std::string> early;
    {
      std::lock_guard lock(peers_m);
      b = made_b;
      a = made_a;
    }
    {
      std::lock_guard lock(b_seen.m);
      early = b_seen.candidates;
    }
    for (const auto& c : early) {
      std::string why;
      a->add_remote_candidate(c, why);  // a second copy of one already added is harmless
    }
  }

  ~ice_pair() {
    std::shared_ptr<ice::agent> x, y;
    {
      std::lock_guard lock(peers_m);
      x.swap(a);
      y.swap(b);
    }
    if (x) x->close();
    if (y) y->close();
    x.reset();
    y.reset();
    loop.stop();
  }
};

ice::agent_config on_loopback(std::string ufrag) {
  ice::agent_config c;
  c.local = {std::move(ufrag), "a-password-of-22-chars-or-more"};
  c.local_addresses = {"127.0.0.1"};
  return c;
}

ice::datagram bytes(std::string_view s) { return {s.begin(), s.end()}; }

}  // namespace

TEST_CASE("two agents connect over loopback host candidates and carry datagrams both ways") {
  ice_pair p;
  p.start(on_loopback("aaaa"), on_loopback("bbbb"));
  REQUIRE(p.a_seen.reached(ice::agent_state::connected));
  REQUIRE(p.b_seen.reached(ice::agent_state::connected));
  REQUIRE(p.a_seen.wait([](observed& o) { return o.pair.has_value(); }));
  {
    std::lock_guard lock(p.a_seen.m);
    CHECK(p.a_seen.pair->local == ice::candidate_type::host);
    CHECK_FALSE(p.a_seen.pair->relayed());
    CHECK(p.a_seen.pair->remote_address.starts_with("127.0.0.1:"));
    REQUIRE(p.a_seen.gathered);
    CHECK(p.a_seen.gathered->candidates >= 1);
    for (const auto& c : p.a_seen.candidates) CHECK(c.starts_with("candidate:"));
  }
  // b may see its pair a moment after a does: send until it has one.
  REQUIRE(p.b_seen.wait([](observed& o) { return o.pair.has_value(); }));
  constexpr int n = 200;
  for (int i = 0; i < n; ++i) CHECK(p.a->send(bytes("ping " + std::to_string(i))));
  REQUIRE(p.b_seen.wait([](observed& o) { return o.received.size() == n; }));
  CHECK(p.b->send(bytes("pong")));
  REQUIRE(p.a_seen.wait([](observed& o) { return o.received.size() == 1; }));
  std::lock_guard lock(p.b_seen.m);
  CHECK(p.b_seen.received.front() == bytes("ping 0"));
  CHECK(p.b_seen.received.back() == bytes("ping 199"));
  // 200 datagrams sent back to back arrive in fewer events than datagrams.
  MESSAGE(n << " datagrams arrived in " << p.b_seen.batches << " batch(es)");
  CHECK(p.b_seen.batches <= static_cast<std::size_t>(n));
}

TEST_CASE("garbage candidates are refused with a reason; a closed agent sends nothing") {
  ice_pair p;
  p.start(on_loopback("cccc"), on_loopback("dddd"));
  std::string why;
  CHECK_FALSE(p.a->add_remote_candidate("", why));
  CHECK(why == "not an ICE candidate");
  CHECK_FALSE(p.a->add_remote_candidate("candidate:not really", why));
  CHECK_FALSE(p.a->add_remote_candidate(std::string(5000, 'x'), why));
  CHECK_FALSE(p.a->add_remote_candidate("candidate:1 1 UDP 2013266431 999.1.1.1 5000 typ host", why));
  REQUIRE(p.a_seen.reached(ice::agent_state::connected));  // garbage did not disturb the session
  p.a->close();
  p.a->close();  // idempotent
  CHECK_FALSE(p.a->send(bytes("after close")));
  CHECK_FALSE(p.a->add_remote_candidate("candidate:1 1 UDP 2013266431 127.0.0.1 5000 typ host", why));
}

TEST_CASE("through coturn: relay-only agents connect on a relayed pair; a wrong password yields no candidate") {
  if (auto missing = coturn::missing_tools(); !missing.empty()) {
    MESSAGE("skipped: " << missing);
    return;
  }
  firebreak::test::temp_directory dir;
  const std::string secret = "a-fixed-static-auth-secret-for-tests";
  coturn::relay relay(dir, {.secret = secret});
  coturn::echo_peer echo(dir, "127.0.0.1");
  std::string why;
  REQUIRE_MESSAGE(relay.wait_ready(echo.ip(), echo.port(), why), why);
  auto [user, password] = coturn::rest_credentials(secret, "ice-test", std::time(nullptr) + 600);

  SUBCASE("the right credentials") {
    ice_pair p;
    auto a = on_loopback("eeee");
    a.relay_only = true;
    a.turn = {{"127.0.0.1", relay.port(), user, password}};
    p.start(a, on_loopback("ffff"));
    REQUIRE(p.a_seen.reached(ice::agent_state::connected));
    REQUIRE(p.a_seen.wait([](observed& o) { return o.pair.has_value() && o.gathered.has_value(); }));
    std::lock_guard lock(p.a_seen.m);
    CHECK(p.a_seen.pair->relayed());
    CHECK(p.a_seen.gathered->relayed >= 1);
    CHECK(p.a_seen.gathered->candidates == p.a_seen.gathered->relayed);  // nothing but relayed
    for (const auto& c : p.a_seen.candidates) CHECK(c.find("typ relay") != std::string::npos);
  }
  SUBCASE("a wrong password") {
    ice_pair p;
    auto a = on_loopback("gggg");
    a.relay_only = true;
    a.turn = {{"127.0.0.1", relay.port(), user, password + "-wrong"}};
    p.start(a, on_loopback("hhhh"));
    REQUIRE(p.a_seen.wait([](observed& o) { return o.gathered.has_value(); }, 20s));
    REQUIRE(p.a_seen.reached(ice::agent_state::failed));
    std::lock_guard lock(p.a_seen.m);
    CHECK(p.a_seen.gathered->candidates == 0);
    REQUIRE_FALSE(p.a_seen.gathered->warnings.empty());
    CHECK(p.a_seen.gathered->warnings[0].find("TURN") != std::string::npos);
    for (const auto& w : p.a_seen.gathered->warnings) CHECK(w.find(password) == std::string::npos);
  }
}

namespace {
std::size_t entries_in(const char* dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}
}  // namespace

TEST_CASE("closed agents leave no socket and no thread behind") {
  ice::glib_loop loop;
  auto cycle = [&](int agents) -> std::size_t {
    std::vector<std::shared_ptr<ice::agent>> made;
    for (int i = 0; i < agents; ++i) {
      std::string error;
      auto c = on_loopback("zz" + std::to_string(i) + "zz");
      c.remote = {"rrrr", "a-password-of-22-chars-or-more"};
      auto a = ice::agent::start(loop, c, {}, error);
      REQUIRE_MESSAGE(a, error);
      made.push_back(a);
    }
    const auto open_fds = entries_in("/proc/self/fd");
    std::mutex m;
    std::condition_variable cv;
    int closed = 0;
    for (auto& a : made)
      a->close([&] {
        std::lock_guard lock(m);
        ++closed;
        cv.notify_all();
      });
    made.clear();
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, 10s, [&] { return closed == agents; }));
    return open_fds;
  };
  cycle(1);  // GLib starts its own helpers once per process, on first use
  loop.run_sync([] {});
  const auto fds = entries_in("/proc/self/fd"), threads = entries_in("/proc/self/task");
  const auto while_open = cycle(20);
  CHECK(while_open > fds);  // the agents did hold sockets
  loop.run_sync([] {});     // the agents' last references are released on the loop
  CHECK(entries_in("/proc/self/fd") == fds);
  CHECK(entries_in("/proc/self/task") == threads);
}

TEST_CASE("a TURN server that does not answer: relay-only gathering ends with no candidate and failed") {
  ice_pair p;
  auto a = on_loopback("silent");
  a.relay_only = true;
  // Nothing listens there: the allocation requests go unanswered until libnice gives up.
  a.turn = {{"127.0.0.1", firebreak::test::free_loopback_port(SOCK_DGRAM), "1700000000:nobody", "not-a-real-password"}};
  p.start(a, on_loopback("other"));
  REQUIRE(p.a_seen.wait([](observed& o) { return o.gathered.has_value(); }, 60s));
  REQUIRE(p.a_seen.reached(ice::agent_state::failed));
  std::lock_guard lock(p.a_seen.m);
  CHECK(p.a_seen.gathered->candidates == 0);
  CHECK_FALSE(p.a_seen.gathered->warnings.empty());
}

TEST_CASE("a datagram from an address that is no candidate of the peer never reaches the receiver") {
  // libnice drops data from a stranger (here a socket on the same host, another port) before it
  // reaches us: a WireGuard handshake flood aimed at a connection's port never costs its engine a
  // Diffie-Hellman. Only the peer, whose candidates passed ICE checks with the session's password,
  // gets through. Should a libnice update change this, the engines' cookie mode is what is left.
  ice_pair p;
  p.start(on_loopback("cccc"), on_loopback("dddd"));
  REQUIRE(p.a_seen.reached(ice::agent_state::connected));
  REQUIRE(p.b_seen.wait([](observed& o) { return o.pair.has_value(); }));
  std::string b_local;
  {
    std::lock_guard lock(p.b_seen.m);
    b_local = p.b_seen.pair->local_address;
  }
  const auto colon = b_local.rfind(':');
  REQUIRE(colon != std::string::npos);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(std::stoi(b_local.substr(colon + 1))));
  REQUIRE(::inet_pton(AF_INET, b_local.substr(0, colon).c_str(), &to.sin_addr) == 1);
  const int stranger = ::socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(stranger >= 0);
  const std::string text = "from a stranger";
  CHECK(::sendto(stranger, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
        static_cast<ssize_t>(text.size()));
  ::close(stranger);
  CHECK(p.a->send(bytes("from the peer")));
  REQUIRE(p.b_seen.wait([](observed& o) {
    return std::find(o.received.begin(), o.received.end(), bytes("from the peer")) != o.received.end();
  }));
  std::lock_guard lock(p.b_seen.m);
  const bool delivered =
      std::find(p.b_seen.received.begin(), p.b_seen.received.end(), bytes(text)) != p.b_seen.received.end();
  CHECK_FALSE(delivered);
}
