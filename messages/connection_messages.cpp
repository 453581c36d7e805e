#include "messages/connection_messages.hpp"

namespace firebreak::messages {

std::string_view to_string(close_mode m) {
  switch (m) {
    case close_mode::goodbye_and_flush: return "goodbye_and_flush";
    case close_mode::silent: return "silent";
  }
  return "?";
}

std::string_view to_string(connection_state s) {
  switch (s) {
    case connection_state::connecting: return "connecting";
    case connection_state::connected: return "connected";
    case connection_state::idle: return "idle";
    case connection_state::closed: return "closed";
    case connection_state::failed: return "failed";
  }
  return "?";
}

std::string_view to_string(closed_by b) {
  switch (b) {
    case closed_by::none: return "none";
    case closed_by::local: return "local";
    case closed_by::remote: return "remote";
    case closed_by::liveness: return "liveness";
  }
  return "?";
}

std::string_view to_string(ice_phase p) {
  switch (p) {
    case ice_phase::gathering: return "gathering";
    case ice_phase::connecting: return "connecting";
    case ice_phase::connected: return "connected";
    case ice_phase::failed: return "failed";
  }
  return "?";
}

std::string_view to_string(wg_condition c) {
  switch (c) {
    case wg_condition::session_up: return "session_up";
    case wg_condition::unanswered: return "unanswered";
    case wg_condition::gave_up: return "gave_up";
    case wg_condition::bad_keys: return "bad_keys";
    case wg_condition::goodbye: return "goodbye";
  }
  return "?";
}

// The unprintable types (secrets, pointers, payload) stay local and are not registered.
void register_connection_messages(caf::actor_system_config& cfg) {
  cfg.add_message_type<remote_candidates>("firebreak::remote_candidates");
  cfg.add_message_type<local_candidates>("firebreak::local_candidates");
  cfg.add_message_type<close_connection>("firebreak::close_connection");
  cfg.add_message_type<connection_event>("firebreak::connection_event");
  cfg.add_message_type<ice_status>("firebreak::ice_status");
  cfg.add_message_type<ice_gathered>("firebreak::ice_gathered");
  cfg.add_message_type<ice_path>("firebreak::ice_path");
  cfg.add_message_type<wg_status>("firebreak::wg_status");
  cfg.add_message_type<wg_tick>("firebreak::wg_tick");
  cfg.add_message_type<wg_counters>("firebreak::wg_counters");
  cfg.add_message_type<handshake_done>("firebreak::handshake_done");
  cfg.add_message_type<connection_status>("firebreak::connection_status");
}

}  // namespace firebreak::messages
