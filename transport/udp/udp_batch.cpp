#include "transport/udp/udp_batch.hpp"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace firebreak::udp {

namespace {

/// A full send buffer: wait a little for room rather than drop at once (the data thread has nothing
/// better to do), but never long.
bool wait_writable(int fd) {
  pollfd p{fd, POLLOUT, 0};
  return ::poll(&p, 1, 5) > 0 && (p.revents & POLLOUT);
}

}  // namespace

std::size_t batch_sender::send_gso(int fd, const sockaddr* to, socklen_t to_len, std::span<iovec> run, bool& refused) {
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(std::uint16_t))> control{};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(to);
  msg.msg_namelen = to_len;
  msg.msg_iov = run.data();
  msg.msg_iovlen = run.size();
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
  const auto segment = static_cast<std::uint16_t>(run.front().iov_len);
  std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (::sendmsg(fd, &msg, 0) >= 0) {
      gso_sends_.fetch_add(1, std::memory_order_relaxed);
      return run.size();
    }
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && attempt == 0 && wait_writable(fd)) continue;
    if (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP) refused = true;
    break;
  }
  return 0;
}

std::size_t batch_sender::send_mmsg(int fd, const sockaddr* to, socklen_t to_len, std::span<iovec> datagrams) {
  std::array<mmsghdr, 64> msgs{};
  std::size_t sent = 0;
  bool waited = false;
  while (sent < datagrams.size()) {
    const std::size_t n = std::min(msgs.size(), datagrams.size() - sent);
    for (std::size_t i = 0; i < n; ++i) {
      msgs[i] = {};
      msgs[i].msg_hdr.msg_name = const_cast<sockaddr*>(to);
      msgs[i].msg_hdr.msg_namelen = to_len;
      msgs[i].msg_hdr.msg_iov = &datagrams[sent + i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int r = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
    if (r > 0) {
      sent += static_cast<std::size_t>(r);
      continue;
    }
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && !waited && wait_writable(fd)) {
      waited = true;
      continue;
    }
    // This datagram is lost (no route, a full buffer twice, the socket gone): count it, go on.
    errors_.fetch_add(1, std::memory_order_relaxed);
    ++sent;
  }
  return sent;
}

std::size_t batch_sender::send(int fd, const sockaddr* to, socklen_t to_len, std::span<iovec> datagrams) {
  std::size_t taken = 0, i = 0;
  while (i < datagrams.size()) {
    // The longest run GSO can carry: equal sizes, the last one may be shorter.
    std::size_t j = i + 1, bytes = datagrams[i].iov_len;
    if (gso()) {
      const std::size_t size = datagrams[i].iov_len;
      while (j < datagrams.size() && j - i < max_segments && bytes + datagrams[j].iov_len <= max_gso_bytes &&
             datagrams[j].iov_len <= size) {
        bytes += datagrams[j].iov_len;
        if (datagrams[j++].iov_len < size) break;
      }
    }
    if (j - i >= 2) {
      bool refused = false;
      const auto n = send_gso(fd, to, to_len, datagrams.subspan(i, j - i), refused);
      if (n > 0) {
        taken += n;
        i = j;
        continue;
      }
      if (refused) gso_.store(false, std::memory_order_relaxed);
      // Not taken as one: send the run datagram by datagram below.
    }
    // Up to the next run worth a GSO send.
    std::size_t k = j;
    if (!gso()) k = datagrams.size();
    const std::size_t n = send_mmsg(fd, to, to_len, datagrams.subspan(i, k - i));
    taken += n;
    i = k;
  }
  return taken;
}

bool enable_gro(int fd) {
  int on = 1;
  return ::setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
}

}  // namespace firebreak::udp
