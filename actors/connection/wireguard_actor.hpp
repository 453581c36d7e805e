// The WireGuard sub-actor of a connection: the sans-IO engine with exactly one peer, its timers as
// CAF delayed messages (virtual in tests), datagrams out through the path ICE selected.
//
//   no path ──path_ready──> path ──(controlling: initiate at once)──> handshake ──> session_up (told once)
//      every completed handshake (first and rekeys) ─> handshake_done{count} to the packet sink
//      packet_batch (outbound) ─ seal ─> path.send           datagram_batch (inbound) ─ open ─> packet sink
//      wg_tick ─> engine timers; then:  data unanswered 15 s ─> wg_status{unanswered} to the connection
//                                        attempts ran out     ─> wg_status{gave_up}
//   close_connection ─> (goodbye_and_flush with a session: a goodbye sealed and sent) ─> quit
//
// The engine lives in the connection's fast_link (fast_link.hpp), shared with the data threads under
// its lock: once a session and a path exist the link is open, and bulk packets are sealed and opened
// there without a message; the actor still gets everything else (handshakes, datagrams while the link
// is closed, control packets the fast path opened as opened_control, and wg_kick when the engine
// wants a look after a data thread used it). Datagrams the actor sends leave after the lock is released.
//   a decrypted goodbye (p2p control packet) ─> wg_status{goodbye} to the connection, nothing delivered;
//   other control packets (malformed, unknown events) are dropped and counted, never delivered
//
// Keys come from the flow: a remote public key and a preshared key in base64; either of the wrong
// length is reported as wg_status{bad_keys} and nothing is sent.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/connection/fast_link.hpp"
#include "messages/connection_messages.hpp"
#include "transport/wireguard/device.hpp"
#include "transport/wireguard/random.hpp"

namespace firebreak::connection {

struct wireguard_settings {
  wireguard::private_key local_key;  // this node's; secret
  unsigned mtu = 1280;
  caf::actor packet_sink;            // decrypted packets from the peer, as packet_batch
  std::shared_ptr<wireguard::random_source> rng;
  std::shared_ptr<spdlog::logger> log;
};

struct wireguard_state {
  std::shared_ptr<fast_link> link;  // the engine, its peer, the armed deadline: under link->mu
  wireguard::peer_id peer = 0;
  std::string peer_id;
  bool controlling = false;
  caf::actor connection;
  caf::actor sink;
  std::shared_ptr<messages::datagram_path> path;
  std::shared_ptr<spdlog::logger> log;
  std::vector<std::uint8_t> buffer;  // one datagram or packet at a time
  std::uint64_t generation = 0;
  std::vector<std::vector<std::uint8_t>> outbox;  // to send once the link's lock is released
  bool told_session = false, told_unanswered = false, told_gave_up = false, told_goodbye = false;
  std::uint64_t control_drops = 0;  // control packets that were not a goodbye
  std::uint64_t no_path_drops = 0;
  // Datagrams from before the path existed (a handshake response can be due before this side's ICE
  // has selected its pair): sent when it does, the oldest dropped beyond a few.
  std::deque<std::vector<std::uint8_t>> waiting;
  static inline const char* name = "wireguard";
};

caf::behavior wireguard_actor(caf::stateful_actor<wireguard_state>* self, caf::actor connection,
                              messages::connection_spec spec, wireguard_settings settings);

}  // namespace firebreak::connection
