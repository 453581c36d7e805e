#include "transport/tun/link_config_linux.hpp"

#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include <memory>

namespace firebreak::tun {
namespace {

template <typename T, void (*Free)(T*)>
struct owned {
  T* p = nullptr;
  ~owned() {
    if (p) Free(p);
  }
};

std::string failure(const std::string& what, int err) { return what + ": " + nl_geterror(err); }

}  // namespace

link_config::link_config() : sock_(nl_socket_alloc()) {
  if (sock_ && nl_connect(sock_, NETLINK_ROUTE) < 0) {
    nl_socket_free(sock_);
    sock_ = nullptr;
  }
}

link_config::~link_config() {
  if (sock_) nl_socket_free(sock_);
}

std::string link_config::set_mtu_and_up(int ifindex, unsigned mtu) {
  if (!sock_) return "cannot open a netlink socket";
  owned<rtnl_link, rtnl_link_put> link, change;
  if (int err = rtnl_link_get_kernel(sock_, ifindex, nullptr, &link.p); err < 0)
    return failure("cannot find the interface", err);
  change.p = rtnl_link_alloc();
  rtnl_link_set_mtu(change.p, mtu);
  rtnl_link_set_flags(change.p, IFF_UP);
  if (int err = rtnl_link_change(sock_, link.p, change.p, 0); err < 0)
    return failure("cannot set MTU " + std::to_string(mtu) + " and bring the interface up", err);
  return {};
}

std::string link_config::add_address(int ifindex, const std::string& cidr) {
  if (!sock_) return "cannot open a netlink socket";
  owned<nl_addr, nl_addr_put> local;
  if (int err = nl_addr_parse(cidr.c_str(), AF_UNSPEC, &local.p); err < 0)
    return failure("bad address " + cidr, err);
  owned<rtnl_addr, rtnl_addr_put> addr;
  addr.p = rtnl_addr_alloc();
  rtnl_addr_set_ifindex(addr.p, ifindex);
  rtnl_addr_set_local(addr.p, local.p);
  if (int err = rtnl_addr_add(sock_, addr.p, 0); err < 0 && err != -NLE_EXIST)
    return failure("cannot add address " + cidr, err);
  return {};
}

std::string link_config::change_route(int ifindex, const std::string& prefix, bool add) {
  if (!sock_) return "cannot open a netlink socket";
  owned<nl_addr, nl_addr_put> dst;
  if (int err = nl_addr_parse(prefix.c_str(), AF_UNSPEC, &dst.p); err < 0)
    return failure("bad route " + prefix, err);
  owned<rtnl_route, rtnl_route_put> route;
  route.p = rtnl_route_alloc();
  rtnl_route_set_family(route.p, static_cast<std::uint8_t>(nl_addr_get_family(dst.p)));
  rtnl_route_set_dst(route.p, dst.p);
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  rtnl_route_nh_set_ifindex(nh, ifindex);
  rtnl_route_add_nexthop(route.p, nh);  // the route owns the next hop now
  if (add) {
    if (int err = rtnl_route_add(sock_, route.p, NLM_F_CREATE); err < 0 && err != -NLE_EXIST)
      return failure("cannot add route " + prefix, err);
  } else {
    if (int err = rtnl_route_delete(sock_, route.p, 0); err < 0 && err != -NLE_OBJ_NOTFOUND)
      return failure("cannot remove route " + prefix, err);
  }
  return {};
}

std::string link_config::add_route(int ifindex, const std::string& prefix) { return change_route(ifindex, prefix, true); }

std::string link_config::remove_route(int ifindex, const std::string& prefix) {
  return change_route(ifindex, prefix, false);
}

}  // namespace firebreak::tun
