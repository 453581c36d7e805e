// What tests use of the machine they run on, the same for unit, e2e and interop programs:
//
//   temp_directory       a private scratch folder, removed with everything in it
//   read_file            a file's whole content
//   executable_in_path   whether a tool can be run
//   firebreak_binary     the firebreak program under test, where one is known
//   free_loopback_port   a port on 127.0.0.1 nobody is bound to right now
//   accepts_connections  whether something listens on a TCP port of 127.0.0.1
//
// Nothing here asserts: each test decides whether a missing tool skips it or fails it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>

namespace firebreak::test {

/// A private scratch folder under $TMPDIR (or /tmp), removed with its contents on destruction.
/// Set FIREBREAK_KEEP_TEST_FILES=1 to keep it for a post-mortem (it may hold private keys).
/// Named firebreak-test-<pid>-*, so a later run can remove what a killed one left behind (see
/// netns::remove_stale_leftovers).
class temp_directory {
 public:
  temp_directory() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/firebreak-test-" +
                          std::to_string(::getpid()) + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    path_ = pattern;
  }
  ~temp_directory() {
    const char* keep = std::getenv("FIREBREAK_KEEP_TEST_FILES");
    if (keep && *keep && std::string_view(keep) != "0") return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_directory(const temp_directory&) = delete;
  temp_directory& operator=(const temp_directory&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(std::string_view leaf) const { return path_ / leaf; }

 private:
  std::filesystem::path path_;
};

/// Empty when the file cannot be read.
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// `tool` as a path, or a name looked up on PATH.
inline bool executable_in_path(const std::string& tool) {
  if (tool.find('/') != std::string::npos) return ::access(tool.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && ::access((dir + "/" + tool).c_str(), X_OK) == 0) return true;
  }
  return false;
}

/// The FIREBREAK_BINARY environment variable, else the compile definition of the same name (set once
/// apps/ builds the firebreak target); empty with neither, and the test skips what needs it.
inline std::string firebreak_binary() {
  if (const char* env = std::getenv("FIREBREAK_BINARY"); env != nullptr && *env != '\0') return env;
#ifdef FIREBREAK_BINARY
  return FIREBREAK_BINARY;
#else
  return {};
#endif
}

/// A port on 127.0.0.1 that nobody is bound to right now (the system's choice), for a socket of
/// `socket_type` (SOCK_STREAM: TCP, SOCK_DGRAM: UDP); 0 when none could be had.
inline std::uint16_t free_loopback_port(int socket_type) {
  const int fd = ::socket(AF_INET, socket_type | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  return ok ? ntohs(a.sin_port) : 0;
}

/// Whether a TCP connection to 127.0.0.1:port succeeds now.
inline bool accepts_connections(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace firebreak::test
