// Trace points inside actors: trace_in(self, type, keys, summary) at the top of a handler records
// "sender → this actor: type". The sender is named by its actor state's `name` ("tunnel",
// "connection", ...); a message from outside the actor system (the signal thread, the TUN reader, the
// status socket) reads as "outside". Bulk data (packet and datagram batches) is not traced: it would
// drown the control messages a person reads the trace for.
#pragma once

#include <caf/all.hpp>

#include "actors/trace/trace_recorder.hpp"

namespace firebreak::trace {

inline const char* sender_name(const caf::strong_actor_ptr& sender) {
  if (!sender) return "outside";
  if (auto* m = dynamic_cast<caf::monitorable_actor*>(sender->get())) return m->name();
  return "remote";
}

template <class Self>
void trace_in(Self* self, std::string_view type, const keys& k = {}, std::string_view summary = {}) {
  if (!on()) return;
  recorder::instance().record(sender_name(self->current_sender()), self->name(), type, k, summary);
}

}  // namespace firebreak::trace
