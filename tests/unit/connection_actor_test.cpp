// The connection actor and its sub-actors under CAF's test coordinator: one thread, virtual time.
// The WireGuard sub-actors are real (the sans-IO engine does a real handshake between the two sides);
// ICE is scripted: a small actor per side that the test tells to connect, fail or cut the wire, and
// whose "path" hands datagrams straight to the other side's WireGuard sub-actor.
#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <spdlog/sinks/null_sink.h>

#include "actors/connection/connection_actor.hpp"
#include "messages/p2p_control.hpp"
#include "transport/wireguard/crypto.hpp"

namespace {

using namespace firebreak;
using namespace firebreak::messages;
using namespace std::chrono_literals;

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("connection-test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

/// Both sides' scripted ICE, seen from the test. Only the test thread touches it (one scheduler thread).
struct switchboard {
  struct side {
    caf::actor connection, wireguard, ice;
    std::uint64_t datagrams_sent = 0;
    bool ice_closed = false;
  };
  side sides[2];
  bool wire_up = true;  // datagrams pass between the sides (false: the other side is dead or cut off)

  int index_of(const caf::actor& connection) const { return sides[0].connection == connection ? 0 : 1; }
};

/// What the scripted path does with a datagram: deliver it to the other side's WireGuard sub-actor.
class scripted_path final : public datagram_path {
 public:
  scripted_path(switchboard& b, int from) : board_(b), from_(from) {}
  bool send(std::span<const std::uint8_t> d) override {
    auto& me = board_.sides[from_];
    auto& other = board_.sides[1 - from_];
    ++me.datagrams_sent;
    if (!board_.wire_up || !other.wireguard) return true;  // lost on the wire
    caf::anon_send(other.wireguard, datagram_batch{{std::vector<std::uint8_t>(d.begin(), d.end())}});
    return true;
  }

 private:
  switchboard& board_;
  int from_;
};

struct scripted_ice_state {
  static inline const char* name = "scripted-ice";
};

caf::behavior scripted_ice(caf::stateful_actor<scripted_ice_state>* self, switchboard* board, int index) {
  return {
      [=](const remote_candidates&) {},
      [=](const close_connection&) {
        board->sides[index].ice_closed = true;
        self->quit();
      },
  };
}

/// Records what an owner hears.
struct recorder_state {
  std::string role;  // "owner" or "sink"; also: CAF 0.17 dereferences a null argument pack when an
                     // actor function takes no arguments, which UBSan reports
  std::vector<connection_event> events;
  std::vector<local_candidates> candidates;
  std::vector<packet_batch> packets;
  std::uint64_t handshakes = 0;
  static inline const char* name = "recorder";
};

caf::behavior recorder(caf::stateful_actor<recorder_state>* self, std::string role) {
  self->state.role = std::move(role);
  return {
      [=](const connection_event& e) { self->state.events.push_back(e); },
      [=](const local_candidates& c) { self->state.candidates.push_back(c); },
      [=](packet_batch& p) { self->state.packets.push_back(std::move(p)); },
      [=](const handshake_done& h) { self->state.handshakes += h.count; },
  };
}

struct keys {
  wireguard::private_key priv;
  std::string pub;
};

keys new_keys() {
  wireguard::system_random rng;
  keys k;
  rng.fill(k.priv.bytes);
  k.pub = wireguard::to_base64(wireguard::x25519_public(k.priv));
  return k;
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  switchboard board;
  keys client_keys = new_keys(), gateway_keys = new_keys();
  std::string psk;
  caf::actor owner[2], sink[2], conn[2];
  std::size_t baseline = 0;

  fixture() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    register_connection_messages(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    wireguard::system_random rng;
    wireguard::secret<32> p;
    rng.fill(p.bytes);
    psk = wireguard::to_base64(p.bytes);
    for (int i = 0; i < 2; ++i) {
      owner[i] = sys->spawn(recorder, std::string("owner"));
      sink[i] = sys->spawn(recorder, std::string("sink"));
    }
    run();
    baseline = sys->registry().running();
  }

  ~fixture() {
    for (int i = 0; i < 2; ++i) {
      if (conn[i]) caf::anon_send_exit(conn[i], caf::exit_reason::kill);
      caf::anon_send_exit(owner[i], caf::exit_reason::kill);
      caf::anon_send_exit(sink[i], caf::exit_reason::kill);
    }
    run();
  }

  void run() { sched->run(); }
  /// Virtual time passes in small steps, so timers fire in order and each side answers in between,
  /// as they would on a real clock.
  void advance(caf::timespan t) {
    constexpr caf::timespan step = std::chrono::milliseconds(100);
    for (; t > step; t -= step) {
      sched->advance_time(step);
      run();
    }
    sched->advance_time(t);
    run();
  }

  connection_spec spec_for(int side) {
    connection_spec s;
    s.peer_id = side == 0 ? "gateway-1" : "client-1";
    s.controlling = side == 0;  // side 0 is the client
    s.remote_public_key = side == 0 ? gateway_keys.pub : client_keys.pub;
    s.preshared_key = psk;
    return s;
  }

  /// Spawns side `i`'s connection (0: the client, 1: the gateway) with scripted ICE.
  void spawn(int i, connection_spec spec) {
    connection::connection_settings s;
    s.owner = owner[i];
    s.log = quiet();
    s.wireguard.local_key = i == 0 ? client_keys.priv : gateway_keys.priv;
    s.wireguard.packet_sink = sink[i];
    s.wireguard.rng = std::make_shared<wireguard::system_random>();
    s.wireguard.log = quiet();
    auto* b = &board;
    s.make_ice = [b, i](caf::local_actor* parent, const caf::actor& connection, const caf::actor& wg,
                        const connection_spec&) {
      auto ice = parent->spawn(scripted_ice, b, i);
      b->sides[i] = {connection, wg, ice, 0, false};
      return ice;
    };
    conn[i] = sys->spawn(connection::connection_actor, std::move(spec), s);
    run();
  }
  void spawn(int i) { spawn(i, spec_for(i)); }

  /// Side i's ICE finds its pair.
  void ice_connects(int i, bool relayed = false) {
    auto& side = board.sides[i];
    caf::anon_send(side.connection, ice_gathered{2, relayed ? 1u : 0u, {}});
    caf::anon_send(side.connection, ice_status{ice_phase::connected, {}});
    caf::anon_send(side.connection, ice_path{relayed, "host 10.0.0.1:1", relayed ? "relay 192.0.2.1:3478" : "host 10.0.0.2:2"});
    caf::anon_send(side.wireguard, path_ready{std::make_shared<scripted_path>(board, i)});
    run();
  }
  void both_connect() {
    ice_connects(1);
    ice_connects(0);
    advance(1ms);
  }

  std::vector<connection_event>& events(int i) { return state_of<recorder_state>(owner[i]).events; }
  std::vector<packet_batch>& received(int i) { return state_of<recorder_state>(sink[i]).packets; }

  template <class State>
  State& state_of(const caf::actor& a) {
    auto* ptr = caf::actor_cast<caf::abstract_actor*>(a);
    return dynamic_cast<caf::stateful_actor<State>&>(*ptr).state;
  }

  std::optional<connection_event> last(int i) {
    auto& e = events(i);
    if (e.empty()) return std::nullopt;
    return e.back();
  }
  bool everything_stopped() { return sys->registry().running() == baseline; }
};

std::vector<std::uint8_t> packet(std::uint8_t marker) {
  // A minimal IPv4 header, 10.0.0.1 -> 10.0.0.2, 40 bytes in all.
  std::vector<std::uint8_t> p(40, marker);
  p[0] = 0x45;
  p[2] = 0;
  p[3] = 40;
  p[12] = 10, p[13] = 0, p[14] = 0, p[15] = 1;
  p[16] = 10, p[17] = 0, p[18] = 0, p[19] = 2;
  return p;
}

}  // namespace

TEST_CASE("both sides connect once ICE has a path and WireGuard a session; packets flow, held ones first") {
  fixture f;
  f.spawn(0);
  f.spawn(1);
  REQUIRE(f.last(0));
  CHECK(f.last(0)->state == connection_state::connecting);
  // Sent before anything is connected: held.
  caf::anon_send(f.conn[0], packet_batch{{}, {packet(1), packet(2)}});
  f.run();
  CHECK(f.received(1).empty());
  f.both_connect();
  REQUIRE(f.last(0));
  CHECK(f.last(0)->state == connection_state::connected);
  CHECK(f.last(0)->peer_id == "gateway-1");
  CHECK_FALSE(f.last(0)->relayed);
  REQUIRE(f.last(1));
  CHECK(f.last(1)->state == connection_state::connected);
  // The held packets arrived, in order, decrypted, at the gateway's sink.
  std::vector<std::vector<std::uint8_t>> got;
  for (const auto& b : f.received(1)) got.insert(got.end(), b.packets.begin(), b.packets.end());
  REQUIRE(got.size() == 2);
  CHECK(got[0] == packet(1));
  CHECK(got[1] == packet(2));
  CHECK(f.received(1).front().peer_id == "client-1");
  // And the other way.
  caf::anon_send(f.conn[1], packet_batch{{}, {packet(3)}});
  f.run();
  REQUIRE(f.received(0).size() == 1);
  CHECK(f.received(0)[0].packets.at(0) == packet(3));
}

TEST_CASE("ICE failing before it connects: failed, by liveness, and nothing of the connection outlives it") {
  fixture f;
  f.spawn(0);
  caf::anon_send(f.board.sides[0].connection, ice_status{ice_phase::failed, {}});
  f.run();
  REQUIRE(f.last(0));
  CHECK(f.last(0)->state == connection_state::failed);
  CHECK(f.last(0)->by == closed_by::liveness);
  CHECK(f.last(0)->reason.find("ICE failed") != std::string::npos);
  CHECK(f.board.sides[0].ice_closed);
  CHECK(f.everything_stopped());
}

TEST_CASE("ICE consent lost after connecting: failed, saying consent was lost") {
  fixture f;
  f.spawn(0);
  f.spawn(1);
  f.both_connect();
  REQUIRE(f.last(0)->state == connection_state::connected);
  caf::anon_send(f.board.sides[0].connection, ice_status{ice_phase::failed, {}});
  f.run();
  CHECK(f.last(0)->state == connection_state::failed);
  CHECK(f.last(0)->reason.find("consent lost") != std::string::npos);
  CHECK(f.board.sides[0].ice_closed);
}

TEST_CASE("a gathering with no candidate fails the connection with the warning") {
  fixture f;
  f.spawn(0);
  caf::anon_send(f.board.sides[0].connection,
                 ice_gathered{0, 0, {"no relayed candidate from 1 TURN server(s): unreachable, or the credentials were refused"}});
  f.run();
  CHECK(f.last(0)->state == connection_state::failed);
  CHECK(f.last(0)->reason.find("TURN") != std::string::npos);
}

TEST_CASE("close while connecting is silent; close when connected reports its reason and mode") {
  fixture f;
  f.spawn(0);
  SUBCASE("connecting") {
    caf::anon_send(f.conn[0], close_connection{"the user quit", close_mode::goodbye_and_flush});
    f.run();
    REQUIRE(f.last(0));
    CHECK(f.last(0)->state == connection_state::closed);
    CHECK(f.last(0)->by == closed_by::local);
    CHECK(f.last(0)->reason == "the user quit");
    CHECK(f.last(0)->mode == close_mode::silent);
    CHECK(f.board.sides[0].datagrams_sent == 0);  // nothing went to the peer
  }
  SUBCASE("connected") {
    f.spawn(1);
    f.both_connect();
    REQUIRE(f.last(0)->state == connection_state::connected);
    caf::anon_send(f.conn[0], close_connection{"access revoked", close_mode::goodbye_and_flush});
    f.run();
    CHECK(f.last(0)->state == connection_state::closed);
    CHECK(f.last(0)->by == closed_by::local);
    CHECK(f.last(0)->reason == "access revoked");
    CHECK(f.last(0)->mode == close_mode::goodbye_and_flush);
    caf::anon_send(f.conn[1], close_connection{"test over", close_mode::silent});
    f.run();
    CHECK(f.last(1)->mode == close_mode::silent);
  }
  CHECK(f.board.sides[0].ice_closed);
  // Packets sent to a closed connection go nowhere and hurt nothing.
  caf::anon_send(f.conn[0], packet_batch{{}, {packet(9)}});
  f.run();
  CHECK(f.everything_stopped());
}

TEST_CASE("the far side dies: the client fails after 15 s of unanswered data, the gateway does not") {
  fixture f;
  f.spawn(0);
  f.spawn(1);
  f.both_connect();
  REQUIRE(f.last(0)->state == connection_state::connected);
  f.board.wire_up = false;  // the gateway is gone: nothing reaches it, nothing comes back
  caf::anon_send(f.conn[0], packet_batch{{}, {packet(5)}});
  f.run();
  f.advance(14s);
  CHECK(f.last(0)->state == connection_state::connected);
  f.advance(2s);
  CHECK(f.last(0)->state == connection_state::failed);
  CHECK(f.last(0)->by == closed_by::liveness);
  CHECK(f.last(0)->reason.find("15 s") != std::string::npos);
  CHECK(f.last(1)->state != connection_state::failed);
}

TEST_CASE("keys of the wrong length fail the connection, naming the key but not showing it") {
  fixture f;
  auto spec = f.spec_for(0);
  spec.preshared_key = "c2hvcnQ=";  // "short"
  f.spawn(0, spec);
  REQUIRE(f.last(0));
  CHECK(f.last(0)->state == connection_state::failed);
  CHECK(f.last(0)->reason.find("preshared key") != std::string::npos);
  CHECK(f.last(0)->reason.find("c2hvcnQ=") == std::string::npos);
  CHECK(f.everything_stopped());
}

TEST_CASE("no connection after the connect timeout: failed, saying which part did not come up") {
  fixture f;
  f.spawn(0);
  f.advance(19s);
  CHECK(f.last(0)->state == connection_state::connecting);
  f.advance(2s);
  CHECK(f.last(0)->state == connection_state::failed);
  CHECK(f.last(0)->reason.find("ICE did not connect") != std::string::npos);
  CHECK(f.everything_stopped());
}

TEST_CASE("no traffic for 30 s: idle; traffic again: connected") {
  fixture f;
  f.spawn(0);
  f.spawn(1);
  f.both_connect();
  f.advance(31s);
  CHECK(f.last(0)->state == connection_state::idle);
  caf::anon_send(f.conn[0], packet_batch{{}, {packet(7)}});
  f.run();
  f.advance(31s);
  CHECK(f.last(0)->state == connection_state::connected);
}

TEST_CASE("a goodbye closes the far side at once, as closed by the remote; a silent close does not") {
  fixture f;
  f.spawn(0);
  f.spawn(1);
  f.both_connect();
  REQUIRE(f.last(0)->state == connection_state::connected);
  SUBCASE("goodbye") {
    const auto sent_before = f.board.sides[1].datagrams_sent;
    caf::anon_send(f.conn[1], close_connection{"revoked", close_mode::goodbye_and_flush});
    f.run();  // no time passes: nothing but the goodbye can explain what the client does now
    CHECK(f.board.sides[1].datagrams_sent == sent_before + 1);
    REQUIRE(f.last(0));
    CHECK(f.last(0)->state == connection_state::closed);
    CHECK(f.last(0)->by == closed_by::remote);
    CHECK(f.last(0)->reason == "remote_goodbye");
    CHECK(f.last(1)->by == closed_by::local);
    CHECK(f.board.sides[0].ice_closed);
    CHECK(f.board.sides[1].ice_closed);  // after its WireGuard sub-actor sent the goodbye
    // No reply: the client sent nothing more after the goodbye arrived.
    CHECK(f.everything_stopped());
  }
  SUBCASE("silent") {
    caf::anon_send(f.conn[1], close_connection{"test over", close_mode::silent});
    f.run();
    CHECK(f.last(1)->state == connection_state::closed);
    CHECK(f.last(0)->state == connection_state::connected);
    CHECK(f.last(0)->by == closed_by::none);
  }
}

TEST_CASE("a goodbye outside the session is ignored; one the owner hands over as data is sealed like any packet") {
  fixture f;
  f.spawn(0);
  f.spawn(1);
  f.both_connect();
  // Unsealed: the 48 bytes of a goodbye as a datagram are not a WireGuard message.
  const auto g = p2p::goodbye();
  caf::anon_send(f.board.sides[0].wireguard, datagram_batch{{std::vector<std::uint8_t>(g.begin(), g.end())}});
  f.run();
  CHECK(f.last(0)->state == connection_state::connected);
  // The owner's packets are sealed as they are: only the tunnel keeps local programs from sending a
  // goodbye, so here one sent as data does close the far side (the tunnel tests cover the filter).
  caf::anon_send(f.conn[0], packet_batch{{}, {std::vector<std::uint8_t>(g.begin(), g.end())}});
  f.run();
  CHECK(f.last(1)->by == closed_by::remote);
}
