#include "actors/portal/presence.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace firebreak::portal {

using namespace messages;

caf::behavior presence_actor(caf::stateful_actor<presence_state>* self, std::shared_ptr<spdlog::logger> log) {
  self->set_down_handler([self, log](caf::down_msg& down) {
    for (auto* table : {&self->state.gateways, &self->state.clients}) {
      for (auto it = table->begin(); it != table->end();) {
        if (it->second.session.address() == down.source) {
          log->info("{} {} ({}) is offline",
                                      it->second.who.kind == peer_kind::gateway ? "gateway" : "client",
                                      it->second.who.id, it->second.who.name);
          it = table->erase(it);
        } else {
          ++it;
        }
      }
    }
  });
  return {
      [=](const session_joined& joined) {
        auto& table = joined.who.kind == peer_kind::gateway ? self->state.gateways : self->state.clients;
        // A peer that reconnects replaces its old session; the old one is told to go.
        if (auto it = table.find(joined.who.id); it != table.end() && it->second.session != joined.session) {
          self->demonitor(it->second.session);
          self->send(it->second.session, close_session{"replaced by a newer connection"});
        }
        self->monitor(joined.session);
        table[joined.who.id] = presence_state::online_peer{joined.who, joined.session};
        log->info("{} {} ({}) is online", joined.who.kind == peer_kind::gateway ? "gateway" : "client",
                                    joined.who.id, joined.who.name);
      },
      [=](stats_atom) {
        return nlohmann::json{{"clients", self->state.clients.size()}, {"gateways", self->state.gateways.size()}}.dump();
      },
      [=](online_atom, const std::string& site_id) {
        std::vector<std::string> ids;
        for (const auto& [id, peer] : self->state.gateways)
          if (peer.who.site_id == site_id) ids.push_back(id);
        return ids;
      },
      [=](session_atom, peer_kind kind, const std::string& id) {
        const auto& table = kind == peer_kind::gateway ? self->state.gateways : self->state.clients;
        auto it = table.find(id);
        return it == table.end() ? caf::actor{} : it->second.session;
      },
      [=](const candidates_relay& relay) {
        // Candidates flow only between the two sides of a flow: a client's to gateways, a gateway's to clients.
        const bool to_gateways = relay.from_kind == peer_kind::client;
        const auto& table = to_gateways ? self->state.gateways : self->state.clients;
        nlohmann::json payload = {{to_gateways ? "client_id" : "gateway_id", relay.from_id},
                                  {"candidates", relay.candidates}};
        const std::string event = relay.invalidated ? "invalidate_ice_candidates" : "ice_candidates";
        for (const auto& id : relay.to_ids)
          if (auto it = table.find(id); it != table.end()) self->send(it->second.session, push{event, payload.dump()});
      },
  };
}

}  // namespace firebreak::portal
