#include "apps/status_socket.hpp"

#include "apps/status_request.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace firebreak::apps {

namespace {

bool fill_address(const std::string& path, sockaddr_un& addr, std::string& why) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    why = "the status socket path must be 1 to " + std::to_string(sizeof addr.sun_path - 1) + " characters";
    return false;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return true;
}

}  // namespace

std::unique_ptr<status_server> status_server::start(const std::string& path, answer_fn answer, std::string& why) {
  sockaddr_un addr;
  if (!fill_address(path, addr, why)) return nullptr;
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    why = std::string("cannot create the status socket: ") + std::strerror(errno);
    return nullptr;
  }
  ::unlink(path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 8) != 0) {
    why = "cannot listen on " + path + ": " + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  ::chmod(path.c_str(), 0660);
  std::unique_ptr<status_server> s(new status_server());
  s->fd_ = fd;
  s->path_ = path;
  s->answer_ = std::move(answer);
  s->thread_ = std::thread([p = s.get()] { p->run(); });
  return s;
}

status_server::~status_server() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
}

void status_server::run() {
  while (!stopping_) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    timeval tv{2, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char buf[max_status_request_bytes];
    const auto n = ::read(c, buf, sizeof buf);
    std::string reply = answer_(status_request_line(std::string_view(buf, n > 0 ? static_cast<std::size_t>(n) : 0)));
    reply += '\n';
    std::size_t off = 0;
    while (off < reply.size()) {
      const auto w = ::write(c, reply.data() + off, reply.size() - off);
      if (w <= 0) break;
      off += static_cast<std::size_t>(w);
    }
    ::close(c);
  }
}

std::optional<std::string> ask_daemon(const std::string& path, const std::string& request, std::string& why) {
  sockaddr_un addr;
  if (!fill_address(path, addr, why)) return std::nullopt;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    why = std::strerror(errno);
    return std::nullopt;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    why = "cannot reach " + path + " (" + std::strerror(errno) + "): is the daemon running, and is this its --status-socket?";
    ::close(fd);
    return std::nullopt;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string req = request + "\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    why = std::string("cannot send the request: ") + std::strerror(errno);
    ::close(fd);
    return std::nullopt;
  }
  std::string out;
  char buf[4096];
  while (true) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (out.empty()) {
    why = "the daemon closed the status socket without an answer";
    return std::nullopt;
  }
  return out;
}

}  // namespace firebreak::apps
