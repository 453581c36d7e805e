// connection_peer: one side of a peer connection, for the end-to-end tests and the setup bench. It
// joins the portal as a client or a gateway (portal_link), negotiates a flow (create_flow /
// authorize_flow), trickles candidates through the portal, and runs a real connection actor (libnice
// + our WireGuard). It has no TUN: the client sends numbered test packets and the gateway echoes every
// packet it decrypts. Several --token-file options run several identities (each with a fresh key) in
// this one process, as the goodbye's fan-out bench needs 200 clients. What happens is printed as one
// JSON object per line on stdout, with "id" (the identity's index) when there are several:
//
//   {"event":"flow_created"|"authorized", "peer":..., "t_ms":...}
//   {"event":"connection", "state":"connected"|"idle"|"closed"|"failed", "by":..., "reason":..., "relayed":..., "t_ms":...}
//   {"event":"first_packet", "setup_ms":...}     client: flow_created -> first decrypted packet
//   {"event":"echoed", "count":N}                client: all --packets echoes came back
//   {"event":"prohibited", "from":..., "t_ms":...}  client: the first ICMP "administratively prohibited"
//                                                   that came back (with --dst: a real gateway refusing)
//   {"event":"summary", "sent":N, "echoed":M}    client, when it stops: packets sent, echoes received
//
// t_ms counts from the program's start; unix_ms is the wall clock, to line up several processes. Secrets (token, keys) come from files and are never printed.
#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <arpa/inet.h>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>

#include "actors/connection/connection_actor.hpp"
#include "actors/connection/ice_actor.hpp"
#include "actors/node/tunnel_common.hpp"
#include "actors/portal_link/portal_link.hpp"
#include "messages/connection_messages.hpp"
#include "messages/portal_events.hpp"
#include "messages/portal_link_messages.hpp"
#include "transport/wireguard/crypto.hpp"

namespace {

using namespace firebreak;
using namespace firebreak::messages;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

const auto started = steady::now();

std::int64_t ms_since(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t).count();
}

std::mutex print_mutex;

void print(json line, int index = -1) {
  line["t_ms"] = ms_since(started);
  line["unix_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  if (index >= 0) line["id"] = index;
  std::lock_guard lock(print_mutex);
  std::cout << line.dump() << std::endl;
}

struct options {
  std::string portal;  // host:port
  std::string ca_file;
  std::vector<std::string> token_files;
  std::string key_file;  // WireGuard private key, base64 (wg genkey); none: a fresh one per identity
  int index = -1;        // which identity, when there are several
  std::string role = "client";
  std::string resource;
  int packets = 20;
  int probe_ms = 500;
  int duration_s = 30;
  bool relay_only = false;
  bool until_echoed = false;
  std::vector<std::string> local_addresses;
  std::string dst;  // client: send test packets to this IPv4 address from the tunnel address
};

std::string read_secret(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

/// Where test packets go: 100.64.0.1 -> 100.64.0.2 for an echoing test gateway; with --dst, from each
/// client's tunnel address (from init) to that address, as a misbehaving client of a real gateway would.
std::array<std::uint8_t, 4> packet_dst{100, 64, 0, 2};
using ipv4 = std::array<std::uint8_t, 4>;

std::optional<std::array<std::uint8_t, 4>> ipv4_of(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
  std::array<std::uint8_t, 4> out;
  std::memcpy(out.data(), &a, 4);
  return out;
}

/// A 40-byte IPv4 UDP packet (to port 9) carrying a sequence number; checksums correct.
std::vector<std::uint8_t> test_packet(std::uint32_t seq, const ipv4& packet_src) {
  std::vector<std::uint8_t> p(40, 0);
  p[0] = 0x45;
  p[3] = 40;
  p[8] = 64;
  p[9] = 17;
  std::copy(packet_src.begin(), packet_src.end(), p.begin() + 12);
  std::copy(packet_dst.begin(), packet_dst.end(), p.begin() + 16);
  p[21] = 9;   // destination port 9 (discard)
  p[25] = 20;  // UDP length
  std::uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += (p[i] << 8) | p[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  p[10] = static_cast<std::uint8_t>(~sum >> 8);
  p[11] = static_cast<std::uint8_t>(~sum);
  p[28] = static_cast<std::uint8_t>(seq >> 24);
  p[29] = static_cast<std::uint8_t>(seq >> 16);
  p[30] = static_cast<std::uint8_t>(seq >> 8);
  p[31] = static_cast<std::uint8_t>(seq);
  return p;
}

std::uint32_t seq_of(const std::vector<std::uint8_t>& p) {
  if (p.size() < 32) return 0;
  return (std::uint32_t{p[28]} << 24) | (std::uint32_t{p[29]} << 16) | (std::uint32_t{p[30]} << 8) | p[31];
}

std::vector<turn_relay> relays_of(const std::vector<relay>& relays) {
  std::vector<turn_relay> out;
  for (const auto& r : relays) {
    const auto colon = r.addr.rfind(':');
    if (colon == std::string::npos) continue;
    out.push_back({r.addr.substr(0, colon), static_cast<std::uint16_t>(std::stoi(r.addr.substr(colon + 1))),
                   r.username, r.password});
  }
  return out;
}

using stop_atom = caf::atom_constant<caf::atom("stop")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;

struct driver_state {
  options opt;
  caf::actor link;
  std::vector<turn_relay> relays;
  std::map<std::string, caf::actor> connections;  // by peer id
  // A gateway's candidates can come before flow_created: held (bounded) until the connection exists.
  std::map<std::string, std::vector<std::string>> early_candidates;
  connection::connection_settings base;
  ice::glib_loop* loop = nullptr;
  steady::time_point flow_created_at;
  bool first_seen = false;
  std::set<std::uint32_t> echoed;
  std::uint64_t echoes = 0;  // every echo, probes included
  bool prohibited_seen = false;
  std::uint32_t next_seq = 0;
  bool asked = false;
  ipv4 src{100, 64, 0, 1};
  static inline const char* name = "peer-driver";
};

caf::behavior driver(caf::stateful_actor<driver_state>* self, options opt, connection::connection_settings base,
                     ice::glib_loop* loop) {
  auto& st = self->state;
  st.opt = std::move(opt);
  st.base = std::move(base);
  st.base.owner = self;
  st.base.wireguard.packet_sink = self;
  st.loop = loop;
  auto* l = loop;
  auto log = st.base.log;
  st.base.make_ice = [l, log](caf::local_actor* parent, const caf::actor& conn, const caf::actor& wg,
                              const connection_spec& spec) {
    return parent->spawn<caf::linked>(connection::ice_actor, conn, wg, spec, connection::ice_settings{l, log});
  };
  const bool is_client = st.opt.role == "client";

  auto send_to_portal = [=](std::string_view event, const json& payload) {
    self->send(self->state.link, push{std::string(event), payload.dump()});
  };
  auto start_connection = [=](connection_spec spec) {
    auto& s = self->state;
    spec.relay_only = s.opt.relay_only;
    spec.local_addresses = s.opt.local_addresses;
    spec.relays = s.relays;
    // coturn answers STUN too: the relays double as STUN servers for server-reflexive candidates.
    for (const auto& r : s.relays) spec.stun_servers.push_back(r.host + ":" + std::to_string(r.port));
    const auto peer = spec.peer_id;
    if (auto it = s.connections.find(peer); it != s.connections.end())
      self->send(it->second, close_connection{"replaced by a new flow", close_mode::silent});
    s.connections[peer] = self->spawn(connection::connection_actor, std::move(spec), s.base);
    if (auto early = s.early_candidates.find(peer); early != s.early_candidates.end()) {
      self->send(s.connections[peer], remote_candidates{std::move(early->second), false});
      s.early_candidates.erase(early);
    }
  };
  auto hold_candidates = [=](const std::string& peer, const std::vector<std::string>& candidates) {
    auto& held = self->state.early_candidates[peer];
    for (const auto& c : candidates)
      if (held.size() < 64) held.push_back(c);
  };

  return {
      [=](const caf::actor& link) { self->state.link = link; },
      [=](const link_status& ls) {
        print({{"event", "link"},
               {"phase", ls.phase == link_phase::joined ? "joined" : ls.phase == link_phase::lost ? "lost" : "refused"}}, self->state.opt.index);
        if (ls.phase == link_phase::refused) self->send(self, stop_atom::value);
      },
      [=](const push& in) {
        auto& s = self->state;
        auto payload = json::parse(in.payload, nullptr, false);
        if (is_client) {
          auto ev = decode_event<client_topic::from_portal>(in.event, payload);
          if (!ev) return;
          std::visit(
              [&](const auto& e) {
                using T = std::decay_t<decltype(e)>;
                if constexpr (std::is_same_v<T, client_topic::init>) {
                  s.relays = relays_of(e.relays);
                  if (!s.opt.dst.empty()) {
                    if (auto src = ipv4_of(e.interface.ipv4)) s.src = *src;
                  }
                  if (!s.asked) {
                    s.asked = true;
                    send_to_portal("create_flow", to_json(client_topic::create_flow{s.opt.resource, {}}));
                  }
                } else if constexpr (std::is_same_v<T, client_topic::flow_created>) {
                  s.flow_created_at = steady::now();
                  print({{"event", "flow_created"}, {"peer", e.gateway_id}}, self->state.opt.index);
                  start_connection(node::spec_of(e));
                  // The first packets wait in the connection until it is up.
                  packet_batch first{e.gateway_id, {}};
                  for (int i = 0; i < s.opt.packets; ++i) first.packets.push_back(test_packet(s.next_seq++, s.src));
                  self->send(s.connections[e.gateway_id], std::move(first));
                } else if constexpr (std::is_same_v<T, client_topic::flow_creation_failed>) {
                  print({{"event", "flow_creation_failed"}, {"reason", to_json(e)["reason"]}}, self->state.opt.index);
                  self->send(self, stop_atom::value);
                } else if constexpr (std::is_same_v<T, client_topic::ice_candidates> ||
                                     std::is_same_v<T, client_topic::invalidate_ice_candidates>) {
                  constexpr bool invalidated = std::is_same_v<T, client_topic::invalidate_ice_candidates>;
                  if (auto it = s.connections.find(e.gateway_id); it != s.connections.end())
                    self->send(it->second, remote_candidates{e.candidates, invalidated});
                  else if (!invalidated)
                    hold_candidates(e.gateway_id, e.candidates);
                } else if constexpr (std::is_same_v<T, relays_presence>) {
                  s.relays = relays_of(e.connected);
                }
              },
              *ev.value);
        } else {
          auto ev = decode_event<gateway_topic::from_portal>(in.event, payload);
          if (!ev) return;
          std::visit(
              [&](const auto& e) {
                using T = std::decay_t<decltype(e)>;
                if constexpr (std::is_same_v<T, gateway_topic::init>) {
                  s.relays = relays_of(e.relays);
                } else if constexpr (std::is_same_v<T, gateway_topic::authorize_flow>) {
                  print({{"event", "authorized"}, {"peer", e.client.id}}, self->state.opt.index);
                  start_connection(node::spec_of(e));
                  send_to_portal("flow_authorized", to_json(gateway_topic::flow_authorized{e.ref}));
                } else if constexpr (std::is_same_v<T, gateway_topic::ice_candidates> ||
                                     std::is_same_v<T, gateway_topic::invalidate_ice_candidates>) {
                  constexpr bool invalidated = std::is_same_v<T, gateway_topic::invalidate_ice_candidates>;
                  if (auto it = s.connections.find(e.client_id); it != s.connections.end())
                    self->send(it->second, remote_candidates{e.candidates, invalidated});
                  else
                    spdlog::warn("[peer {}] candidates for an unknown peer: dropped", e.client_id);
                } else if constexpr (std::is_same_v<T, relays_presence>) {
                  s.relays = relays_of(e.connected);
                }
              },
              *ev.value);
        }
      },
      [=](const local_candidates& lc) {
        if (is_client)
          send_to_portal("broadcast_ice_candidates", to_json(client_topic::broadcast_ice_candidates{{lc.peer_id}, lc.candidates}));
        else
          send_to_portal("broadcast_ice_candidates", to_json(gateway_topic::broadcast_ice_candidates{{lc.peer_id}, lc.candidates}));
      },
      [=](const connection_event& e) {
        print({{"event", "connection"}, {"peer", e.peer_id}, {"state", to_string(e.state)}, {"by", to_string(e.by)},
               {"reason", e.reason}, {"relayed", e.relayed}, {"mode", to_string(e.mode)}}, self->state.opt.index);
        auto& s = self->state;
        if (e.state == connection_state::failed || e.state == connection_state::closed) {
          // Only if it is still the current one: a replaced connection reports its close after.
          if (auto it = s.connections.find(e.peer_id);
              it != s.connections.end() && it->second.address() == self->current_sender())
            s.connections.erase(it);
          if (is_client) self->delayed_send(self, std::chrono::milliseconds(200), stop_atom::value);
        }
        if (is_client && e.state == connection_state::connected)
          self->delayed_send(self, std::chrono::milliseconds(s.opt.probe_ms), probe_atom::value);
      },
      [=](const handshake_done&) {},
      [=](packet_batch& in) {
        auto& s = self->state;
        if (!is_client) {
          // The gateway echoes: back through the same connection.
          if (auto it = s.connections.find(in.peer_id); it != s.connections.end()) self->send(it->second, std::move(in));
          return;
        }
        for (const auto& p : in.packets)
          if (p.size() >= 28 && p[9] == 1 && p[20] == 3 && p[21] == 13 && !s.prohibited_seen) {
            s.prohibited_seen = true;
            char from[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, p.data() + 12, from, sizeof from);
            print({{"event", "prohibited"}, {"from", from}}, self->state.opt.index);
            if (s.opt.until_echoed) self->send(self, stop_atom::value);
          }
        if (!s.first_seen) {
          s.first_seen = true;
          print({{"event", "first_packet"},
                 {"setup_ms", std::chrono::duration<double, std::milli>(steady::now() - s.flow_created_at).count()}}, self->state.opt.index);
        }
        s.echoes += in.packets.size();
        const auto before = s.echoed.size();
        for (const auto& p : in.packets)
          if (seq_of(p) < static_cast<std::uint32_t>(s.opt.packets)) s.echoed.insert(seq_of(p));
        if (before < static_cast<std::size_t>(s.opt.packets) && s.echoed.size() == static_cast<std::size_t>(s.opt.packets))
        {
          print({{"event", "echoed"}, {"count", s.echoed.size()}}, self->state.opt.index);
          if (s.opt.until_echoed) self->send(self, stop_atom::value);
        }
      },
      [=](probe_atom) {
        // Keeps data flowing, so a dead gateway is noticed by WireGuard's 15 s rule.
        auto& s = self->state;
        for (const auto& [peer, conn] : s.connections)
          self->send(conn, packet_batch{peer, {test_packet(s.next_seq++, s.src)}});
        if (!s.connections.empty())
          self->delayed_send(self, std::chrono::milliseconds(s.opt.probe_ms), probe_atom::value);
      },
      [=](stop_atom) {
        auto& s = self->state;
        if (is_client) print({{"event", "summary"}, {"sent", s.next_seq}, {"echoed", s.echoes}}, self->state.opt.index);
        for (const auto& [peer, conn] : s.connections)
          self->send(conn, close_connection{"the program is stopping", close_mode::goodbye_and_flush});
        s.connections.clear();
        self->send(s.link, leave_atom::value);
        self->quit();
      },
  };
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"one side of a Firebreak peer connection, for tests"};
  app.add_option("--portal", opt.portal, "the portal's host:port")->required();
  app.add_option("--ca", opt.ca_file, "the portal's CA certificate")->required()->check(CLI::ExistingFile);
  app.add_option("--token-file", opt.token_files,
                 "this client's or gateway's token; given several times, one identity each in this process")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--key-file", opt.key_file, "this side's WireGuard private key (one identity only; default: a "
                                             "fresh key per identity)")
      ->check(CLI::ExistingFile);
  app.add_option("--role", opt.role, "client or gateway")->check(CLI::IsMember({"client", "gateway"}));
  app.add_option("--resource", opt.resource, "client: the resource to ask a flow for");
  app.add_option("--packets", opt.packets, "client: test packets to send and see echoed");
  app.add_option("--probe-ms", opt.probe_ms, "client: one more packet this often once connected");
  app.add_option("--duration", opt.duration_s, "seconds to run before leaving");
  app.add_flag("--relay-only", opt.relay_only, "gather relayed candidates only");
  app.add_flag("--until-echoed", opt.until_echoed, "client: stop once every test packet came back");
  app.add_option("--local-address", opt.local_addresses, "gather host candidates only on this address");
  app.add_option("--dst", opt.dst, "client: send the test packets to this IPv4 address, from the tunnel address");
  CLI11_PARSE(app, argc, argv);

  spdlog::set_default_logger(spdlog::stderr_color_mt("peer"));
  spdlog::set_level(std::getenv("PEER_DEBUG") ? spdlog::level::debug : spdlog::level::info);
  if (!opt.dst.empty()) {
    auto d = ipv4_of(opt.dst);
    if (!d) {
      std::cerr << "--dst: expected an IPv4 address\n";
      return 2;
    }
    packet_dst = *d;
  }
  const auto colon = opt.portal.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "--portal: expected host:port\n";
    return 2;
  }
  wireguard::private_key given_key;
  if (!opt.key_file.empty()) {
    auto key = wireguard::key_from_base64(read_secret(opt.key_file));
    if (!key) {
      std::cerr << "--key-file: not a WireGuard private key (32 bytes of base64)\n";
      return 2;
    }
    if (opt.token_files.size() > 1) {
      std::cerr << "--key-file: one key cannot serve several identities\n";
      return 2;
    }
    std::copy(key->bytes.begin(), key->bytes.end(), given_key.bytes.begin());
  }
  auto rng = std::make_shared<wireguard::system_random>();

  caf::actor_system_config cfg;
  register_portal_messages(cfg);
  register_connection_messages(cfg);
  {
    caf::actor_system sys{cfg};
    ice::glib_loop loop;
    std::vector<caf::actor> drivers, links;
    for (std::size_t i = 0; i < opt.token_files.size(); ++i) {
      auto priv = given_key;
      if (opt.key_file.empty()) rng->fill(priv.bytes);
      connection::connection_settings base;
      base.log = spdlog::default_logger();
      base.wireguard.local_key = priv;
      base.wireguard.rng = rng;
      base.wireguard.log = base.log;
      auto one = opt;
      if (opt.token_files.size() > 1) one.index = static_cast<int>(i);
      auto d = sys.spawn(driver, one, base, &loop);
      portal_link::link_settings ls;
      ls.host = opt.portal.substr(0, colon);
      ls.port = static_cast<std::uint16_t>(std::stoi(opt.portal.substr(colon + 1)));
      ls.ca_file = opt.ca_file;
      ls.token = read_secret(opt.token_files[i]);
      ls.public_key = wireguard::to_base64(wireguard::x25519_public(priv));
      ls.topic = opt.role;
      ls.owner = d;
      ls.log = base.log;
      auto link = sys.spawn(portal_link::portal_link_actor, ls);
      caf::anon_send(d, link);
      drivers.push_back(d);
      links.push_back(link);
    }
    {  // the waiter is an actor too: it must be gone before waiting for all actors
      caf::scoped_actor waiter{sys};
      for (const auto& d : drivers) {
        waiter->monitor(d);
        waiter->delayed_send(d, std::chrono::seconds(opt.duration_s), stop_atom::value);
      }
      for (const auto& l : links) waiter->monitor(l);
      // The drivers stop first (each tells its link to leave), then the links once they have left
      // (5 s at most).
      const std::size_t all = drivers.size() + links.size();
      std::size_t down = 0;
      bool waited = true;
      while (down < all && waited)
        waiter->receive([&](const caf::down_msg&) { ++down; },
                        caf::after(std::chrono::seconds(opt.duration_s + 5)) >> [&] { waited = false; });
      for (const auto& l : links) waiter->send_exit(l, caf::exit_reason::user_shutdown);
    }
    sys.await_all_actors_done();
    loop.stop();
  }
  return 0;
}
