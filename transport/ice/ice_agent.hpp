// One ICE session with one remote peer: a libnice agent (RFC 5245 compatibility, full mode, trickle,
// RFC 7675 consent freshness, UDP only, UPnP off) with one stream of one component, living on a
// glib_loop. WireGuard datagrams go through the pair ICE selects.
//
//   start() ── gathering ──(local candidates trickle out as "candidate:…" strings)──> connecting
//        connecting ──(a pair works)──> connected ──(consent lost / all pairs fail)──> failed
//   close() ── stops the events, releases TURN allocations (nice_agent_close_async), frees the agent
//
// Events run on the loop thread and must not block; the ICE sub-actor turns them into messages.
// send() and add_remote_candidate() may be called from any thread (libnice locks the agent itself).
// Received datagrams arrive in batches, one event per batch, so bulk traffic costs one message per
// batch downstream rather than one per packet.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "transport/ice/glib_loop.hpp"

namespace firebreak::ice {

enum class agent_state { gathering, connecting, connected, failed };
std::string_view to_string(agent_state s);

enum class candidate_type { host, server_reflexive, peer_reflexive, relayed };
std::string_view to_string(candidate_type t);

struct credentials {
  std::string ufrag;
  std::string password;  // secret: never logged
};

struct stun_server {
  std::string host;  // an IP address or a name (resolved on the loop thread)
  std::uint16_t port = 3478;
};

struct turn_server {
  std::string host;
  std::uint16_t port = 3478;
  std::string username;
  std::string password;  // secret: never logged
};

struct agent_config {
  bool controlling = false;  // the client controls, the gateway does not
  credentials local;
  credentials remote;
  std::optional<stun_server> stun;
  std::vector<turn_server> turn;
  bool relay_only = false;  // gather relayed candidates only (libnice's force-relay)
  /// Local addresses to gather host candidates on; empty: every interface but loopback.
  std::vector<std::string> local_addresses;
};

/// The pair ICE selected: what kind of path the packets take.
struct selected_pair {
  candidate_type local = candidate_type::host;
  candidate_type remote = candidate_type::host;
  std::string local_address;   // "ip:port"
  std::string remote_address;  // "ip:port"
  bool relayed() const { return local == candidate_type::relayed || remote == candidate_type::relayed; }
  /// Only while the `selected` event runs: the selected pair's socket and the remote candidate's
  /// address, for sending on it directly. -1 when this side's candidate is relayed (TURN framing is
  /// libnice's) or the socket is not known.
  int socket_fd = -1;
  sockaddr_storage remote_sockaddr{};
  socklen_t remote_sockaddr_len = 0;
};

struct gathering_result {
  std::size_t candidates = 0;  // 0: this side cannot be reached at all
  std::size_t relayed = 0;
  std::vector<std::string> warnings;  // e.g. a TURN server that gave no candidate (wrong credentials?)
};

using datagram = std::vector<std::uint8_t>;

struct agent_events {
  std::function<void(std::string candidate)> local_candidate;
  std::function<void(const gathering_result&)> gathering_done;
  std::function<void(agent_state)> state;
  std::function<void(const selected_pair&)> selected;
  std::function<void(std::vector<datagram>&&)> datagrams;
};

class agent {
 public:
  /// Creates the agent on `loop` and starts gathering. Fails (nullptr, `error` set) only when libnice
  /// refuses the setup; unreachable servers show up later as missing candidates, not here.
  static std::shared_ptr<agent> start(glib_loop& loop, agent_config config, agent_events events, std::string& error);
  ~agent();
  agent(const agent&) = delete;
  agent& operator=(const agent&) = delete;

  /// Adds a candidate the remote side trickled; false (with `why`) when it does not parse.
  bool add_remote_candidate(std::string_view candidate, std::string& why);
  /// Forgets a remote candidate the other side invalidated (takes effect on the pairs not yet chosen).
  bool remove_remote_candidate(std::string_view candidate, std::string& why);

  /// Sends one datagram on the selected pair; false when there is none yet (or any more).
  bool send(std::span<const std::uint8_t> bytes);

  /// Closes: no event fires after this returns on the loop; TURN allocations are released, then the
  /// agent is freed and `done` runs (on the loop thread). Idempotent.
  void close(std::function<void()> done = {});

  struct impl;

 private:
  explicit agent(std::shared_ptr<impl> i);
  std::shared_ptr<impl> impl_;
};

}  // namespace firebreak::ice
