// Two (or more) sans-IO devices wired together in memory, on a virtual clock: the network is a list of
// datagrams the test delivers, drops, replays or tampers with.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "transport/wireguard/device.hpp"

namespace firebreak::test {

using namespace firebreak::wireguard;
using namespace std::chrono_literals;

/// splitmix64: deterministic, so a failing run replays exactly.
class seeded_random final : public random_source {
 public:
  explicit seeded_random(std::uint64_t seed) : state_(seed) {}
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) {
      if (left_ == 0) {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        word_ = z ^ (z >> 31);
        left_ = 8;
      }
      b = static_cast<std::uint8_t>(word_);
      word_ >>= 8;
      --left_;
    }
  }

 private:
  std::uint64_t state_, word_ = 0;
  int left_ = 0;
};

inline std::shared_ptr<spdlog::logger> quiet_logger() {
  return std::make_shared<spdlog::logger>("wireguard-test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

inline ip_prefix prefix4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint8_t bits) {
  ip_prefix p;
  p.addr[0] = a, p.addr[1] = b, p.addr[2] = c, p.addr[3] = d;
  p.bits = bits;
  return p;
}

/// A minimal IPv4/UDP-ish packet: the engine reads only the version, length and addresses.
inline std::vector<std::uint8_t> ipv4_packet(std::array<std::uint8_t, 4> src, std::array<std::uint8_t, 4> dst,
                                             std::size_t total = 60, std::uint8_t fill = 0xab) {
  std::vector<std::uint8_t> p(total, fill);
  p[0] = 0x45;
  p[2] = static_cast<std::uint8_t>(total >> 8);
  p[3] = static_cast<std::uint8_t>(total);
  std::copy(src.begin(), src.end(), p.begin() + 12);
  std::copy(dst.begin(), dst.end(), p.begin() + 16);
  return p;
}

struct wire_datagram {
  int from;  // index of the sending node
  endpoint src, dst;
  std::vector<std::uint8_t> bytes;
};

/// A node: a device, its address on the fake network, and what it delivered to its tunnel.
struct node {
  node(std::uint64_t seed, std::array<std::uint8_t, 4> udp_addr, std::uint16_t port)
      : rng(seed), addr(endpoint::ipv4(udp_addr, port)) {
    device_config cfg;
    rng.fill(cfg.local_private_key.bytes);
    dev = std::make_unique<device>(cfg, rng, quiet_logger());
  }
  seeded_random rng;
  endpoint addr;
  std::unique_ptr<device> dev;
  std::vector<std::vector<std::uint8_t>> delivered;
};

/// The network and the clock.
class network {
 public:
  instant now{std::chrono::seconds(1000), std::chrono::seconds(1'700'000'000)};
  std::vector<std::unique_ptr<node>> nodes;
  std::vector<wire_datagram> in_flight;
  /// When set, decides whether a datagram is delivered (true) or lost (false).
  std::function<bool(const wire_datagram&)> filter;

  node& add(std::array<std::uint8_t, 4> udp_addr) {
    nodes.push_back(std::make_unique<node>(0x5eed0000ull + nodes.size(), udp_addr, 51820));
    return *nodes.back();
  }

  /// Peers `a` and `b` with each other: a owns tunnel address 10.0.0.(a+1), b 10.0.0.(b+1).
  void connect(int a, int b, bool a_knows_endpoint, bool b_knows_endpoint, std::chrono::seconds keepalive_a = 0s,
               std::chrono::seconds keepalive_b = 0s) {
    peer_config for_a, for_b;
    for_a.remote_static = nodes[b]->dev->local_public_key();
    for_b.remote_static = nodes[a]->dev->local_public_key();
    for_a.preshared_key.bytes.fill(0x42);
    for_b.preshared_key.bytes.fill(0x42);
    if (a_knows_endpoint) for_a.remote_endpoint = nodes[b]->addr;
    if (b_knows_endpoint) for_b.remote_endpoint = nodes[a]->addr;
    for_a.persistent_keepalive = keepalive_a;
    for_b.persistent_keepalive = keepalive_b;
    auto pa = prefix4(10, 0, 0, static_cast<std::uint8_t>(b + 1), 32);
    auto pb = prefix4(10, 0, 0, static_cast<std::uint8_t>(a + 1), 32);
    nodes[a]->dev->add_peer(for_a, std::span(&pa, 1), now);
    nodes[b]->dev->add_peer(for_b, std::span(&pb, 1), now);
    collect();
  }

  std::array<std::uint8_t, 4> tunnel_addr(int i) const { return {10, 0, 0, static_cast<std::uint8_t>(i + 1)}; }

  /// Moves everything the devices want to transmit onto the wire.
  void collect() {
    for (std::size_t i = 0; i < nodes.size(); ++i)
      while (auto t = nodes[i]->dev->poll_transmit())
        in_flight.push_back({static_cast<int>(i), nodes[i]->addr, t->to, std::move(t->bytes)});
  }

  node* at(const endpoint& e) {
    for (auto& n : nodes)
      if (n->addr == e) return n.get();
    return nullptr;
  }

  /// Delivers one datagram now.
  outcome deliver(const wire_datagram& d) {
    node* n = at(d.dst);
    if (!n) return {};
    std::vector<std::uint8_t> out(d.bytes.size() + 64);
    auto r = n->dev->decapsulate(d.bytes, d.src, now, out);
    if (r.what == verdict::to_tunnel) n->delivered.emplace_back(r.bytes.begin(), r.bytes.end());
    return r;
  }

  /// Delivers until the wire is quiet; returns how many datagrams crossed it.
  int pump() {
    int count = 0;
    collect();
    while (!in_flight.empty()) {
      auto batch = std::move(in_flight);
      in_flight.clear();
      for (auto& d : batch) {
        if (!filter || filter(d)) {
          deliver(d);
          ++count;
        }
      }
      collect();
    }
    return count;
  }

  /// Sends an IP packet from node `i`'s tunnel; a direct datagram goes on the wire.
  outcome send(int i, const std::vector<std::uint8_t>& packet) {
    std::vector<std::uint8_t> out(packet.size() + 64);
    auto r = nodes[i]->dev->encapsulate(packet, now, out);
    if (r.what == verdict::to_network)
      in_flight.push_back({i, nodes[i]->addr, r.to, {r.bytes.begin(), r.bytes.end()}});
    return r;
  }

  /// Runs the clock forward to `until`, firing every device's timers at their deadlines.
  void advance(std::chrono::nanoseconds by) {
    const auto until = now.mono + by;
    for (;;) {
      std::optional<mono_time> next;
      for (auto& n : nodes)
        if (auto d = n->dev->poll_timeout(); d && (!next || d->at < *next)) next = d->at;
      if (!next || *next > until) break;
      const auto step = std::max(*next, now.mono) - now.mono;
      now = now + step;
      for (auto& n : nodes) n->dev->handle_timeout(now);
      pump();
    }
    now = now + (until - now.mono);
    for (auto& n : nodes) n->dev->handle_timeout(now);
    pump();
  }
};

inline bool is_type(const wire_datagram& d, message_type t) {
  return !d.bytes.empty() && d.bytes[0] == static_cast<std::uint8_t>(t);
}

}  // namespace firebreak::test
