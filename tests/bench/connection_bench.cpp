// Peer-connection figures that need no portal, each beside its anchor from the same run:
//   - libnice alone: two agents on loopback, start -> first datagram across, p50/p95 over N pairs
//     (direct, and relay-only through a coturn given on the command line);
//   - our connection actors in one process (ICE + WireGuard), spawn -> first decrypted packet at the
//     far side, p50/p95 over the same N, candidates handed across at once;
//   - memory per idle connection: RSS growth with M connection pairs up and idle, divided by 2M.
//
//   usage: bench_connection [--pairs N] [--idle M] [--turn HOST:PORT --turn-user U --turn-password-file F]
// Prints one line per figure. Loopback only: no root needed.
#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>

#include "actors/connection/connection_actor.hpp"
#include "actors/connection/ice_actor.hpp"
#include "transport/ice/ice_agent.hpp"
#include "transport/wireguard/crypto.hpp"

namespace {

using namespace firebreak;
using namespace firebreak::messages;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

struct turn_option {
  std::string host;
  std::uint16_t port = 0;
  std::string user, password;
};

std::string random_text(std::size_t n) {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  wireguard::system_random rng;
  std::string out(n, 'a');
  for (auto& c : out) {
    std::uint8_t b;
    rng.fill({&b, 1});
    c = alphabet[b % (sizeof alphabet - 1)];
  }
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string key;
  long value = 0;
  std::string unit;
  while (in >> key) {
    if (key == "VmRSS:") {
      in >> value >> unit;
      return value;
    }
    std::getline(in, unit);
  }
  return 0;
}

// ---- libnice alone ----------------------------------------------------------------------------

/// start -> the controlled side receives the controlling side's first datagram.
std::optional<double> libnice_pair(ice::glib_loop& loop, const std::optional<turn_option>& turn) {
  std::mutex m;
  std::condition_variable cv;
  bool arrived = false;
  std::shared_ptr<ice::agent> a, b;
  std::vector<std::string> early_for_a;
  ice::agent_config ca, cb;
  ca.controlling = true;
  ca.local = {random_text(8), random_text(24)};
  cb.local = {random_text(8), random_text(24)};
  ca.remote = cb.local;
  cb.remote = ca.local;
  ca.local_addresses = cb.local_addresses = {"127.0.0.1"};
  if (turn) {
    ca.relay_only = true;
    ca.turn = {{turn->host, turn->port, turn->user, turn->password}};
  }
  ice::agent_events ea, eb;
  eb.local_candidate = [&](std::string c) {
    std::lock_guard lock(m);
    std::string why;
    if (a)
      a->add_remote_candidate(c, why);
    else
      early_for_a.push_back(c);
  };
  ea.local_candidate = [&](std::string c) {
    std::string why;
    b->add_remote_candidate(c, why);
  };
  ea.selected = [&](const ice::selected_pair&) {
    static const std::uint8_t hello[] = {1, 2, 3};
    a->send(hello);
  };
  eb.datagrams = [&](std::vector<ice::datagram>&&) {
    std::lock_guard lock(m);
    arrived = true;
    cv.notify_all();
  };
  std::string error;
  const auto t0 = steady::now();
  b = ice::agent::start(loop, cb, eb, error);
  {
    std::lock_guard lock(m);
    a = ice::agent::start(loop, ca, ea, error);
    std::string why;
    for (const auto& c : early_for_a) a->add_remote_candidate(c, why);
  }
  std::unique_lock lock(m);
  const bool ok = cv.wait_for(lock, 10s, [&] { return arrived; });
  const double ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
  lock.unlock();
  std::promise<void> closed_a, closed_b;
  a->close([&] { closed_a.set_value(); });
  b->close([&] { closed_b.set_value(); });
  closed_a.get_future().wait();
  closed_b.get_future().wait();
  if (!ok) return std::nullopt;
  return ms;
}

// ---- our connection actors --------------------------------------------------------------------

/// Hands each side's candidates to the other side and reports the first decrypted packet.
struct wiring_state {
  caf::actor other;  // the other side's connection
  std::function<void()> on_packet;
  std::vector<std::string> early;
  static inline const char* name = "bench-wiring";
};

using other_atom = caf::atom_constant<caf::atom("other")>;

caf::behavior wiring(caf::stateful_actor<wiring_state>* self, std::function<void()> on_packet) {
  self->state.on_packet = std::move(on_packet);
  return {
      [=](other_atom, const caf::actor& other) {
        self->state.other = other;
        if (!self->state.early.empty()) self->send(other, remote_candidates{std::move(self->state.early), false});
      },
      [=](const local_candidates& lc) {
        if (self->state.other)
          self->send(self->state.other, remote_candidates{lc.candidates, false});
        else
          self->state.early.insert(self->state.early.end(), lc.candidates.begin(), lc.candidates.end());
      },
      [=](const connection_event&) {},
      [=](const handshake_done&) {},
      [=](const packet_batch&) {
        if (self->state.on_packet) self->state.on_packet();
        self->state.on_packet = nullptr;
      },
  };
}

struct pair_handles {
  caf::actor client, gateway, client_wiring, gateway_wiring;
};

struct node_keys {
  wireguard::private_key priv;
  std::string pub;
};

node_keys keys() {
  wireguard::system_random rng;
  node_keys k;
  rng.fill(k.priv.bytes);
  k.pub = wireguard::to_base64(wireguard::x25519_public(k.priv));
  return k;
}

std::vector<std::uint8_t> probe_packet() {
  std::vector<std::uint8_t> p(40, 0);
  p[0] = 0x45;
  p[3] = 40;
  p[12] = 100, p[13] = 64, p[15] = 1;
  p[16] = 100, p[17] = 64, p[19] = 2;
  return p;
}

/// Spawns a client and a gateway connection wired to each other; `arrived` runs on the first packet
/// decrypted at the gateway. The client's first packet is queued at once (held until connected).
pair_handles spawn_pair(caf::actor_system& sys, ice::glib_loop& loop, const std::optional<turn_option>& turn,
                        std::function<void()> arrived, const std::shared_ptr<spdlog::logger>& log) {
  static const node_keys client_keys = keys(), gateway_keys = keys();
  wireguard::system_random rng;
  wireguard::secret<32> psk;
  rng.fill(psk.bytes);
  const auto cu = random_text(8), cp = random_text(24), gu = random_text(8), gp = random_text(24);
  pair_handles h;
  h.client_wiring = sys.spawn(wiring, std::function<void()>{});
  h.gateway_wiring = sys.spawn(wiring, std::move(arrived));
  auto* l = &loop;
  auto make_ice = [l, log](caf::local_actor* parent, const caf::actor& conn, const caf::actor& wg,
                           const connection_spec& spec) {
    return parent->spawn<caf::linked>(connection::ice_actor, conn, wg, spec, connection::ice_settings{l, log});
  };
  auto settings_for = [&](const node_keys& k, const caf::actor& owner) {
    connection::connection_settings s;
    s.owner = owner;
    s.log = log;
    s.make_ice = make_ice;
    s.wireguard.local_key = k.priv;
    s.wireguard.packet_sink = owner;
    s.wireguard.rng = std::make_shared<wireguard::system_random>();
    s.wireguard.log = log;
    return s;
  };
  connection_spec cs, gs;
  cs.peer_id = "gateway";
  cs.controlling = true;
  cs.remote_public_key = gateway_keys.pub;
  gs.peer_id = "client";
  gs.remote_public_key = client_keys.pub;
  cs.preshared_key = gs.preshared_key = wireguard::to_base64(psk.bytes);
  cs.local_ice_ufrag = gs.remote_ice_ufrag = cu;
  cs.local_ice_password = gs.remote_ice_password = cp;
  gs.local_ice_ufrag = cs.remote_ice_ufrag = gu;
  gs.local_ice_password = cs.remote_ice_password = gp;
  cs.local_addresses = gs.local_addresses = {"127.0.0.1"};
  if (turn) {
    cs.relay_only = true;
    cs.relays = {{turn->host, turn->port, turn->user, turn->password}};
  }
  h.gateway = sys.spawn(connection::connection_actor, gs, settings_for(gateway_keys, h.gateway_wiring));
  h.client = sys.spawn(connection::connection_actor, cs, settings_for(client_keys, h.client_wiring));
  caf::anon_send(h.client_wiring, other_atom::value, h.gateway);
  caf::anon_send(h.gateway_wiring, other_atom::value, h.client);
  caf::anon_send(h.client, packet_batch{"gateway", {probe_packet()}});
  return h;
}

void close_pair(caf::actor_system& sys, const pair_handles& h) {
  caf::scoped_actor self{sys};
  for (const auto& c : {h.client, h.gateway}) {
    self->monitor(c);
    self->send(c, close_connection{"bench over", close_mode::silent});
  }
  for (int i = 0; i < 2; ++i) self->receive([](const caf::down_msg&) {}, caf::after(10s) >> [] {});
  self->send_exit(h.client_wiring, caf::exit_reason::user_shutdown);
  self->send_exit(h.gateway_wiring, caf::exit_reason::user_shutdown);
}

std::optional<double> connection_pair(caf::actor_system& sys, ice::glib_loop& loop,
                                      const std::optional<turn_option>& turn, const std::shared_ptr<spdlog::logger>& log) {
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  const auto t0 = steady::now();
  auto h = spawn_pair(sys, loop, turn, [done] { done->set_value(); }, log);
  const bool ok = fut.wait_for(10s) == std::future_status::ready;
  const double ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
  close_pair(sys, h);
  if (!ok) return std::nullopt;
  return ms;
}

void report(const std::string& what, const std::vector<double>& ms, int attempts) {
  std::printf("%-44s p50 %6.1f ms  p95 %6.1f ms  (%zu of %d connected)\n", what.c_str(), percentile(ms, 0.5),
              percentile(ms, 0.95), ms.size(), attempts);
}

}  // namespace

int main(int argc, char** argv) {
  int pairs = 50, idle = 200;
  std::string turn_addr, turn_user, turn_password_file;
  CLI::App app{"peer-connection setup and memory figures"};
  app.add_option("--pairs", pairs, "connections to time, per figure");
  app.add_option("--idle", idle, "connection pairs kept up for the memory figure");
  app.add_option("--turn", turn_addr, "a coturn on loopback, host:port, for the relayed figures");
  app.add_option("--turn-user", turn_user, "its TURN username (coturn REST form)");
  app.add_option("--turn-password-file", turn_password_file, "a file with the TURN password");
  CLI11_PARSE(app, argc, argv);
  std::optional<turn_option> turn;
  if (!turn_addr.empty()) {
    turn_option t;
    const auto colon = turn_addr.rfind(':');
    t.host = turn_addr.substr(0, colon);
    t.port = static_cast<std::uint16_t>(std::stoi(turn_addr.substr(colon + 1)));
    t.user = turn_user;
    std::ifstream in(turn_password_file);
    std::getline(in, t.password);
    turn = t;
  }

  auto log = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  caf::actor_system_config cfg;
  register_connection_messages(cfg);
  {
    caf::actor_system sys{cfg};
    ice::glib_loop loop;
    for (const auto& mode : std::vector<std::optional<turn_option>>{std::nullopt, turn}) {
      const std::string path = mode ? "relayed" : "direct";
      std::vector<double> alone, ours;
      for (int i = 0; i < pairs; ++i)
        if (auto ms = libnice_pair(loop, mode)) alone.push_back(*ms);
      for (int i = 0; i < pairs; ++i)
        if (auto ms = connection_pair(sys, loop, mode, log)) ours.push_back(*ms);
      report("libnice alone, " + path + ", start->first datagram", alone, pairs);
      report("our connection, " + path + ", spawn->first packet", ours, pairs);
      if (!turn) break;
    }
    // Memory: idle pairs, all connected, then RSS growth per connection.
    const long before = rss_kib();
    std::vector<pair_handles> up;
    std::vector<std::future<void>> arrived;
    for (int i = 0; i < idle; ++i) {
      auto p = std::make_shared<std::promise<void>>();
      arrived.push_back(p->get_future());
      up.push_back(spawn_pair(sys, loop, std::nullopt, [p] { p->set_value(); }, log));
      if (i % 20 == 19) arrived.back().wait_for(10s);  // in waves, so ICE is not starved
    }
    int connected = 0;
    for (auto& f : arrived) connected += f.wait_for(20s) == std::future_status::ready;
    std::this_thread::sleep_for(2s);
    const long after = rss_kib();
    std::printf("memory per idle connection: %.1f KiB  (RSS %ld -> %ld KiB with %d pairs, %d connected)\n",
                static_cast<double>(after - before) / (2.0 * idle), before, after, idle, connected);
    for (const auto& p : up) close_pair(sys, p);
    loop.run_sync([] {});
  }
  return 0;
}
