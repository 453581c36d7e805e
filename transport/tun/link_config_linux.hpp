// Addresses, MTU, link state and routes of a network interface, set over rtnetlink with libnl-route.
#pragma once

#include <string>
#include <vector>

struct nl_sock;

namespace firebreak::tun {

class link_config {
 public:
  link_config();
  ~link_config();
  link_config(const link_config&) = delete;
  link_config& operator=(const link_config&) = delete;

  /// Each returns an empty string on success, or a message saying what failed and why.
  std::string set_mtu_and_up(int ifindex, unsigned mtu);
  std::string add_address(int ifindex, const std::string& cidr);
  /// A route to `prefix` through the interface; an identical existing route is not an error.
  std::string add_route(int ifindex, const std::string& prefix);
  /// Removes that route; one that is already gone is not an error.
  std::string remove_route(int ifindex, const std::string& prefix);

 private:
  std::string change_route(int ifindex, const std::string& prefix, bool add);
  ::nl_sock* sock_;
};

}  // namespace firebreak::tun
