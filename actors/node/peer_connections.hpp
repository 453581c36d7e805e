// The connection actors a client's or gateway's tunnel owns, one per remote peer, and what both roles
// do with them alike: start one from a flow (with this node's relays and ICE options), route trickled
// candidates to it (holding those that arrive before the flow, bounded), forget it when it ends (only
// if it is still the current one: a replaced connection reports its end after its successor exists),
// close them all, and collect their status.
//
// Not an actor: a part of the tunnel actor's state, called from its handlers with `self`.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/connection/connection_actor.hpp"
#include "actors/connection/fast_link.hpp"
#include "messages/connection_messages.hpp"
#include "messages/portal_events.hpp"

namespace firebreak::node {

struct ice_options {
  bool relay_only = false;
  std::vector<std::string> local_addresses;
};

class peer_connections {
 public:
  peer_connections() = default;
  /// `base.owner` and `base.wireguard.packet_sink` are set to `self` here.
  void init(caf::event_based_actor* self, connection::connection_settings base, ice_options options);

  /// Where connections started from now on open bulk packets to (the node's data plane); null: every
  /// packet goes through the actors.
  void set_data_plane(std::shared_ptr<connection::inbound_sink> sink) { sink_ = std::move(sink); }
  /// The data-path entry of `peer`'s connection while it is connected or idle, else null.
  std::shared_ptr<connection::fast_link> fast_link_of(const std::string& peer) const;

  /// The relays of init or relays_presence: used by connections started from now on.
  void set_relays(const std::vector<messages::relay>& relays);
  void update_relays(const messages::relays_presence& presence);

  /// Starts a connection (closing silently one that existed for the same peer) and hands it any
  /// candidates that arrived first.
  caf::actor start(messages::connection_spec spec);
  /// The live connection to `peer`, or an invalid handle.
  caf::actor find(const std::string& peer) const;
  /// True when `peer` has a connection that is not over and was started with these keys: a flow
  /// that joins it (the portal derives a flow's keys from the two sessions it links). Different
  /// keys mean one side restarted: the connection must be replaced.
  bool joins_existing(const messages::connection_spec& spec) const;

  /// Packets to `peer`: straight to its WireGuard sub-actor once connected, else to the connection
  /// (which holds them while connecting). False when there is no connection.
  bool send(messages::packet_batch&& batch);

  void candidates(const std::string& peer, const std::vector<std::string>& candidates, bool invalidated);

  /// Bookkeeping for a connection_event from `sender`: true when `peer`'s connection ended and was
  /// forgotten (it was the current one).
  bool on_event(const messages::connection_event& e, const caf::actor_addr& sender);
  /// The connection's current state, as last reported.
  std::optional<messages::connection_state> state_of(const std::string& peer) const;

  void close(const std::string& peer, const std::string& reason, messages::close_mode mode);
  void close_all(const std::string& reason, messages::close_mode mode);
  std::size_t size() const { return live_.size(); }
  std::vector<std::string> peers() const;

  /// Asks every connection for its status; `done` gets a JSON array once all answered (or 1 s passed).
  void status(std::function<void(nlohmann::json)> done);

 private:
  struct entry {
    caf::actor actor;
    messages::connection_state state = messages::connection_state::connecting;
    std::string keys;  // preshared key and ICE credentials, compared only; secret
    caf::actor data_path;  // while connected or idle
    std::shared_ptr<connection::fast_link> fast;
  };
  std::shared_ptr<connection::inbound_sink> sink_;
  caf::event_based_actor* self_ = nullptr;
  connection::connection_settings base_;
  ice_options options_;
  std::vector<messages::turn_relay> relays_;
  std::map<std::string, entry> live_;
  std::map<std::string, std::vector<std::string>> early_;  // candidates before the connection exists
  std::shared_ptr<spdlog::logger> log_;
};

nlohmann::json to_json(const messages::connection_status& s);

}  // namespace firebreak::node
