// What the portal_link actor and its owner (a client's or gateway's supervisor) exchange. Events from
// the portal arrive as messages::push (event name, JSON payload text); the owner sends events to the
// portal with the same type.
#pragma once

#include <string>

#include <caf/all.hpp>

#include "messages/portal_messages.hpp"

namespace firebreak::messages {

enum class link_phase : std::uint8_t { joined, lost, refused };

/// The link joined its topic (again), lost the socket (and will retry), or was refused for good.
struct link_status {
  link_phase phase = link_phase::lost;
  std::string reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, link_status& x) {
  return f(caf::meta::type_name("link_status"), x.phase, x.reason);
}

/// Leave the channel and close the socket, then stop.
using leave_atom = caf::atom_constant<caf::atom("leave")>;

}  // namespace firebreak::messages
