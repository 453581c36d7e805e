#include "messages/portal_messages.hpp"

namespace firebreak::messages {

namespace {
template <class T>
void add(caf::actor_system_config& cfg) {
  cfg.add_message_type<T>(caf::type_name<T>::value);
}
}  // namespace

void register_portal_messages(caf::actor_system_config& cfg) {
  add<socket_text>(cfg);
  add<socket_closed>(cfg);
  add<push>(cfg);
  add<close_session>(cfg);
  add<identity>(cfg);
  add<session_joined>(cfg);
  add<candidates_relay>(cfg);
  add<flow_request>(cfg);
  add<flow_authorized>(cfg);
  add<store_changed>(cfg);
}

}  // namespace firebreak::messages
