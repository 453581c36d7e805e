#include "transport/websocket/admission.hpp"

namespace firebreak::websocket::detail {

void admission::ticket::release() {
  if (!state_) return;
  std::lock_guard lock(state_->mutex);
  if (auto it = state_->pending.find(address_); it != state_->pending.end() && --it->second == 0)
    state_->pending.erase(it);
  state_.reset();
}

std::optional<admission::ticket> admission::admit(const std::string& address) {
  std::lock_guard lock(state_->mutex);
  auto& n = state_->pending[address];
  if (n >= state_->per_source) {
    if (n == 0) state_->pending.erase(address);
    ++state_->refused;
    return std::nullopt;
  }
  ++n;
  return ticket(state_, address);
}

std::size_t admission::pending(const std::string& address) const {
  std::lock_guard lock(state_->mutex);
  auto it = state_->pending.find(address);
  return it == state_->pending.end() ? 0 : it->second;
}

std::size_t admission::sources() const {
  std::lock_guard lock(state_->mutex);
  return state_->pending.size();
}

std::uint64_t admission::refused() const {
  std::lock_guard lock(state_->mutex);
  return state_->refused;
}

}  // namespace firebreak::websocket::detail
