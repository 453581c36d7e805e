// The typed messages of a peer connection: between its owner (the client's or gateway's tunnel side),
// the connection actor, and the connection's ICE and WireGuard sub-actors.
//
//   owner ──connection_spec (spawn), remote_candidates, packet_batch, close_connection──> connection
//   connection ──connection_event, local_candidates──> owner
//   ice ──ice_status, ice_gathered, ice_path, local_candidates──> connection
//   ice ──datagram_batch, path_ready──> wireguard ──packet_batch──> packet sink (decrypted, inbound)
//   wireguard ──wg_status──> connection
//
// Bulk traffic moves in batches, never a message per packet; outbound datagrams leave the WireGuard
// sub-actor straight through a datagram_path (the ICE agent's thread-safe send), not through a mailbox.
// Types that carry secrets (keys, ICE passwords, TURN passwords) have no printable form, so no trace or
// log line can show them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/type_id.hpp>

namespace firebreak::connection {
class fast_link;
}

namespace firebreak::messages {

enum class close_mode : std::uint8_t {
  goodbye_and_flush,  // tell the remote side through the tunnel, send what is queued, then close
  silent,             // drop everything at once (also what a goodbye becomes without a session)
};
enum class connection_state : std::uint8_t { connecting, connected, idle, closed, failed };
/// Who ended a connection: this side's owner, the remote side (its goodbye), or a liveness rule.
enum class closed_by : std::uint8_t { none, local, remote, liveness };

std::string_view to_string(close_mode m);
std::string_view to_string(connection_state s);
std::string_view to_string(closed_by b);

/// A TURN relay and the credentials the portal minted for it.
struct turn_relay {
  std::string host;
  std::uint16_t port = 3478;
  std::string username;
  std::string password;  // secret
};

/// Everything a connection needs about its remote peer: from authorize_flow (gateway side) or
/// flow_created (client side), plus the relays of init/relays_presence. Holds secrets: unprintable.
struct connection_spec {
  std::string peer_id;     // the remote side: a gateway id on a client, a client id on a gateway
  bool controlling = false;  // ICE role and WireGuard initiator: the client
  std::string remote_public_key;  // base64
  std::string preshared_key;      // base64; secret
  std::string local_ice_ufrag, local_ice_password;    // password: secret
  std::string remote_ice_ufrag, remote_ice_password;  // password: secret
  std::vector<turn_relay> relays;
  std::vector<std::string> stun_servers;  // "host:port"
  bool relay_only = false;                // only relayed candidates (tests; strict networks)
  std::vector<std::string> local_addresses;  // host candidates only on these; empty: all but loopback
  /// The connection's data-path entry (fast_link.hpp), shared with the owner's data plane; null: every
  /// packet goes through the actors (tests, tools).
  std::shared_ptr<connection::fast_link> fast;
};

/// Candidates the remote side trickled (through the portal), or their invalidation.
struct remote_candidates {
  std::vector<std::string> candidates;
  bool invalidated = false;
};

/// Candidates this side gathered, for the owner to send to the portal (broadcast_ice_candidates).
struct local_candidates {
  std::string peer_id;
  std::vector<std::string> candidates;
};

/// IP packets: owner -> connection to send to the peer; wireguard -> sink as decrypted from the peer.
struct packet_batch {
  std::string peer_id;
  std::vector<std::vector<std::uint8_t>> packets;
};

/// Ends a connection. The reason is for people: it appears in the event, the log and the trace.
struct close_connection {
  std::string reason;
  close_mode mode = close_mode::silent;
};

/// Every state change of a connection, to its owner.
struct connection_event {
  std::string peer_id;
  connection_state state = connection_state::connecting;
  closed_by by = closed_by::none;
  std::string reason;  // why it closed or failed; empty otherwise
  bool relayed = false;  // the selected path goes through a TURN relay
  close_mode mode = close_mode::silent;  // for closed: how it actually closed
  /// While connected or idle: where the owner may send packet_batch directly (the WireGuard
  /// sub-actor), one mailbox hop shorter than through the connection. Invalid otherwise.
  caf::actor data_path;
};

// ---- inside a connection ---------------------------------------------------------------------------

/// Where the WireGuard sub-actor sends datagrams: the ICE agent's selected pair (thread-safe).
class datagram_path {
 public:
  virtual ~datagram_path() = default;
  virtual bool send(std::span<const std::uint8_t> datagram) = 0;
};

/// A path for datagrams exists (ICE selected a pair), or no longer does (null).
struct path_ready {
  std::shared_ptr<datagram_path> path;
};

/// Datagrams ICE received on the selected pair, for the WireGuard sub-actor.
struct datagram_batch {
  std::vector<std::vector<std::uint8_t>> datagrams;
};

enum class ice_phase : std::uint8_t { gathering, connecting, connected, failed };
std::string_view to_string(ice_phase p);

struct ice_status {
  ice_phase phase = ice_phase::gathering;
  std::string detail;  // for failed: why, as far as ICE knows
};

struct ice_gathered {
  std::uint64_t candidates = 0;
  std::uint64_t relayed = 0;
  std::vector<std::string> warnings;
};

struct ice_path {
  bool relayed = false;
  std::string local;   // "host 10.0.0.1:5000"
  std::string remote;  // "relay 192.0.2.1:3478"
};

enum class wg_condition : std::uint8_t {
  session_up,   // a handshake completed: packets can flow
  unanswered,   // sent data, nothing authenticated came back for 15 s
  gave_up,      // handshake attempts ran out
  bad_keys,     // the flow's keys are not 32-byte base64
  goodbye,      // the peer said goodbye inside the session: drop the connection, no reply
};
std::string_view to_string(wg_condition c);

struct wg_status {
  wg_condition condition = wg_condition::session_up;
  std::string detail;
};

/// Control packets (a goodbye) the fast path opened, for the WireGuard sub-actor to act on, with the
/// size of the datagram each came in.
struct opened_control {
  std::vector<std::vector<std::uint8_t>> packets;
  std::vector<std::size_t> datagram_sizes;
};

/// The WireGuard sub-actor's timer, with a generation so a superseded one is ignored.
struct wg_tick {
  std::uint64_t generation = 0;
};

/// Transfer counters, for idle detection and status.
struct wg_counters {
  std::uint64_t tx_bytes = 0;
  std::uint64_t rx_bytes = 0;
  std::uint64_t dropped = 0;
  std::int64_t last_handshake_unix_ms = 0;  // 0: no handshake yet
};

/// wireguard -> packet sink (the tunnel): `count` more handshakes completed with this peer (the
/// first session and every rekey), for the node's handshake counter.
struct handshake_done {
  std::string peer_id;
  std::uint64_t count = 1;
};

/// One connection as the status command shows it (answer to status_atom).
struct connection_status {
  std::string peer_id;
  connection_state state = connection_state::connecting;
  bool relayed = false;
  std::string path;  // "host a:b -> relay c:d"; empty before ICE selected a pair
  std::int64_t last_handshake_unix_ms = 0;
  std::uint64_t tx_bytes = 0, rx_bytes = 0, dropped = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, remote_candidates& x) {
  return f(caf::meta::type_name("remote_candidates"), x.candidates, x.invalidated);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, local_candidates& x) {
  return f(caf::meta::type_name("local_candidates"), x.peer_id, x.candidates);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, close_connection& x) {
  return f(caf::meta::type_name("close_connection"), x.reason, x.mode);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, connection_event& x) {
  return f(caf::meta::type_name("connection_event"), x.peer_id, x.state, x.by, x.reason, x.relayed, x.mode,
           x.data_path);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ice_status& x) {
  return f(caf::meta::type_name("ice_status"), x.phase, x.detail);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ice_gathered& x) {
  return f(caf::meta::type_name("ice_gathered"), x.candidates, x.relayed, x.warnings);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ice_path& x) {
  return f(caf::meta::type_name("ice_path"), x.relayed, x.local, x.remote);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, wg_status& x) {
  return f(caf::meta::type_name("wg_status"), x.condition, x.detail);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, wg_tick& x) {
  return f(caf::meta::type_name("wg_tick"), x.generation);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, wg_counters& x) {
  return f(caf::meta::type_name("wg_counters"), x.tx_bytes, x.rx_bytes, x.dropped, x.last_handshake_unix_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, handshake_done& x) {
  return f(caf::meta::type_name("handshake_done"), x.peer_id, x.count);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, connection_status& x) {
  return f(caf::meta::type_name("connection_status"), x.peer_id, x.state, x.relayed, x.path,
           x.last_handshake_unix_ms, x.tx_bytes, x.rx_bytes, x.dropped);
}

/// From a data thread: the engine wants the WireGuard sub-actor to look (a handshake to send, an earlier
/// deadline, a completed handshake to report).
using wg_kick_atom = caf::atom_constant<caf::atom("wgkick")>;
using counters_atom = caf::atom_constant<caf::atom("counters")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using ice_closed_atom = caf::atom_constant<caf::atom("iceclosed")>;
using idle_check_atom = caf::atom_constant<caf::atom("idlecheck")>;
using connect_timeout_atom = caf::atom_constant<caf::atom("conntmo")>;

/// Registers the types above with CAF; call once on the config before the actor system starts.
void register_connection_messages(caf::actor_system_config& cfg);

}  // namespace firebreak::messages

// Secrets inside, or pointers: passed within the process only, never printed.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::messages::connection_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::messages::path_ready)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::messages::datagram_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::messages::opened_control)
// Payload: a trace shows that a batch passed, never its bytes.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::messages::packet_batch)
