// A small RAII harness for tests that need network namespaces: one concept per class.
//
//   network_namespace  `ip netns add fb-<pid>-<n>` with lo up, deleted again
//   veth_link          a veth pair joining two namespaces, one address on each end
//   process            a program run inside a namespace, its output in a log file, killed by PID
//   run / run_host     a bash command run to completion with its output captured and a time limit
//   wait_until         polls a predicate until it holds or time runs out
//
// Nothing may outlive a test, even when an assertion fails: every resource is released by a
// destructor. Declare namespaces before the links and processes that live in them, so that the
// processes are killed first and the namespaces deleted last. Children also get PR_SET_PDEATHSIG,
// so they die with the test even when the test itself is killed (a CTest timeout, say).
//
// The scratch folder for logs and configuration is test::temp_directory (tests/support/local_machine.hpp).
//
// Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN); require_root_and_netns() tells a test when to skip.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/local_machine.hpp"

namespace firebreak::test::netns {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// What a finished command left behind.
struct command_result {
  int exit_code = -1;      // its exit status; 128+N when signal N ended it; 124 when it timed out
  std::string output;      // stdout and stderr, interleaved as written
  bool timed_out = false;  // killed because it ran past its time limit
  [[nodiscard]] bool ok() const { return exit_code == 0; }
};

/// Polls `predicate` every `interval` until it returns true (-> true) or `timeout` passes (-> false).
template <class Predicate>
bool wait_until(Predicate&& predicate, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = 50ms) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    if (predicate()) return true;
    if (steady::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

namespace detail {

inline unsigned next_serial() {
  static std::atomic<unsigned> serial{0};
  return ++serial;
}

inline int decode_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

inline std::runtime_error system_failure(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

/// Owns a file descriptor.
class fd_guard {
 public:
  explicit fd_guard(int fd = -1) : fd_(fd) {}
  ~fd_guard() { reset(); }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  [[nodiscard]] int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

/// The argv array execvp wants; points into `args`, which must outlive it.
inline std::vector<char*> c_argv(std::vector<std::string>& args) {
  std::vector<char*> out;
  out.reserve(args.size() + 1);
  for (auto& a : args) out.push_back(a.data());
  out.push_back(nullptr);
  return out;
}

/// In the forked child: its own process group (so the whole group can be signalled), death with
/// the parent, stdin/stdout/stderr wired up, default signal handling, then exec.
/// Only async-signal-safe calls here.
[[noreturn]] inline void exec_child(char* const* argv, int stdin_fd, int output_fd, pid_t parent) {
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
  ::dup2(stdin_fd, STDIN_FILENO);
  ::dup2(output_fd, STDOUT_FILENO);
  ::dup2(output_fd, STDERR_FILENO);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGQUIT}) ::signal(sig, SIG_DFL);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execvp(argv[0], argv);
  ::_exit(127);
}

/// Forks and execs `args` with the given stdin and output descriptors; returns the child's PID.
inline pid_t spawn(std::vector<std::string> args, int stdin_fd, int output_fd) {
  if (args.empty()) throw std::invalid_argument("spawn: empty argv");
  auto argv = c_argv(args);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw system_failure("fork");
  if (pid == 0) exec_child(argv.data(), stdin_fd, output_fd, parent);
  ::setpgid(pid, pid);  // also from this side, so the group exists before we may signal it
  return pid;
}

/// Has `pid` (our unreaped child) exited? Leaves it unreaped, so its PID cannot be reused yet.
inline bool has_exited(pid_t pid) {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
    return errno == ECHILD;
  return info.si_pid == pid;
}

/// Signals the child's process group; the child itself if the group is already gone.
inline void signal_group(pid_t pid, int sig) {
  if (::kill(-pid, sig) != 0) ::kill(pid, sig);
}

/// SIGTERM, up to `grace` to exit, then SIGKILL to whatever is left of the group; reaps the child.
inline int stop_and_reap(pid_t pid, std::chrono::milliseconds grace) {
  if (!has_exited(pid)) {
    signal_group(pid, SIGTERM);
    wait_until([&] { return has_exited(pid); }, grace, 10ms);
  }
  // The child is now exited but unreaped (so its PID is still ours) or still running: either way
  // SIGKILL ends it and any helper it left in its group.
  signal_group(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return decode_wait_status(status);
}

/// Runs `args` to completion: `input` on its stdin, stdout+stderr captured, killed after `timeout`.
inline command_result capture(std::vector<std::string> args, std::chrono::milliseconds timeout,
                              std::string_view input = {}) {
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw system_failure("pipe2");
  fd_guard out_read(out_pipe[0]), out_write(out_pipe[1]);
  int in_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) throw system_failure("pipe2");
  fd_guard in_read(in_pipe[0]), in_write(in_pipe[1]);

  const pid_t pid = spawn(std::move(args), in_read.get(), out_write.get());
  in_read.reset();
  out_write.reset();

  // The input is small (a key); a child that exits without reading it must not SIGPIPE us.
  if (!input.empty()) {
    struct sigaction ignore {}, previous {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &previous);
    std::size_t done = 0;
    while (done < input.size()) {
      const auto n = ::write(in_write.get(), input.data() + done, input.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::sigaction(SIGPIPE, &previous, nullptr);
  }
  in_write.reset();

  command_result result;
  const auto deadline = steady::now() + timeout;
  char buffer[8192];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left <= 0ms) {
      result.timed_out = true;
      break;
    }
    pollfd p{out_read.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const auto n = ::read(out_read.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: every writer, the child and whatever it started, is done
    result.output.append(buffer, static_cast<std::size_t>(n));
  }
  if (!result.timed_out) {
    // Output closed; give the child the rest of its time to exit.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    result.timed_out = !wait_until([&] { return has_exited(pid); }, std::max(left, 0ms), 5ms);
  }
  const int status = stop_and_reap(pid, 0ms);
  result.exit_code = result.timed_out ? 124 : status;
  return result;
}

}  // namespace detail

/// Runs `command` with bash on the host (outside any test namespace).
inline command_result run_host(const std::string& command, std::chrono::milliseconds timeout = 60s) {
  return detail::capture({"bash", "-c", command}, timeout);
}

/// Unique within this test process and across concurrent ones: "<prefix><pid><n>".
/// Interface names must be host-wide unique for wireguard-go (its UAPI socket is
/// /var/run/wireguard/NAME.sock, which every namespace shares) and at most 15 characters.
inline std::string unique_interface_name(std::string_view prefix) {
  std::string name = std::string(prefix) + std::to_string(::getpid()) + "x" +
                     std::to_string(detail::next_serial());
  if (name.size() > 15) throw std::invalid_argument("interface name too long: " + name);
  return name;
}

/// `ip netns add fb-<pid>-<n>` with lo up; `ip netns del` on destruction.
class network_namespace {
 public:
  network_namespace()
      : name_("fb-" + std::to_string(::getpid()) + "-" + std::to_string(detail::next_serial())) {
    auto added = detail::capture({"ip", "netns", "add", name_}, 10s);
    if (!added.ok()) throw std::runtime_error("ip netns add " + name_ + " failed: " + added.output);
    auto lo = detail::capture({"ip", "-n", name_, "link", "set", "lo", "up"}, 10s);
    if (!lo.ok()) {
      detail::capture({"ip", "netns", "del", name_}, 10s);
      throw std::runtime_error("bringing lo up in " + name_ + " failed: " + lo.output);
    }
  }
  ~network_namespace() { detail::capture({"ip", "netns", "del", name_}, 10s); }
  network_namespace(const network_namespace&) = delete;
  network_namespace& operator=(const network_namespace&) = delete;

  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  std::string name_;
};

/// Runs `command` with bash inside `ns`.
inline command_result run(const network_namespace& ns, const std::string& command,
                          std::chrono::milliseconds timeout = 60s) {
  return detail::capture({"ip", "netns", "exec", ns.name(), "bash", "-c", command}, timeout);
}

/// A veth pair from `a` to `b`, with an address (CIDR, e.g. "10.99.0.1/24") on each end, both up.
class veth_link {
 public:
  veth_link(const network_namespace& a, std::string address_a, const network_namespace& b,
            std::string address_b)
      : ns_a_(a.name()), cidr_a_(std::move(address_a)), cidr_b_(std::move(address_b)) {
    const auto n = std::to_string(detail::next_serial());
    if_a_ = "veth" + n + "a";
    if_b_ = "veth" + n + "b";
    const std::vector<std::vector<std::string>> steps = {
        {"ip", "link", "add", if_a_, "netns", a.name(), "type", "veth", "peer", "name", if_b_,
         "netns", b.name()},
        {"ip", "-n", a.name(), "addr", "add", cidr_a_, "dev", if_a_},
        {"ip", "-n", b.name(), "addr", "add", cidr_b_, "dev", if_b_},
        {"ip", "-n", a.name(), "link", "set", if_a_, "up"},
        {"ip", "-n", b.name(), "link", "set", if_b_, "up"},
    };
    for (std::size_t i = 0; i < steps.size(); ++i) {
      auto r = detail::capture(steps[i], 10s);
      if (!r.ok()) {
        if (i > 0) remove();
        throw std::runtime_error("veth setup between " + a.name() + " and " + b.name() +
                                 " failed: " + r.output);
      }
    }
  }
  ~veth_link() { remove(); }
  veth_link(const veth_link&) = delete;
  veth_link& operator=(const veth_link&) = delete;

  [[nodiscard]] const std::string& interface_a() const { return if_a_; }
  [[nodiscard]] const std::string& interface_b() const { return if_b_; }
  /// The bare addresses, without the prefix length.
  [[nodiscard]] std::string address_a() const { return cidr_a_.substr(0, cidr_a_.find('/')); }
  [[nodiscard]] std::string address_b() const { return cidr_b_.substr(0, cidr_b_.find('/')); }

 private:
  void remove() { detail::capture({"ip", "-n", ns_a_, "link", "del", if_a_}, 10s); }  // both ends go

  std::string ns_a_, cidr_a_, cidr_b_, if_a_, if_b_;
};

/// A program running inside a namespace (or on the host), stdin from /dev/null, stdout and
/// stderr to `log_path`. Destruction terminates it: SIGTERM to its process group, up to 3 s,
/// then SIGKILL, then reaped.
class process {
 public:
  process(const network_namespace& ns, std::vector<std::string> argv, std::filesystem::path log_path)
      : process(with_netns(ns, std::move(argv)), std::move(log_path)) {}

  process(std::vector<std::string> argv, std::filesystem::path log_path)
      : log_path_(std::move(log_path)) {
    detail::fd_guard null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    detail::fd_guard log(
        ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
    if (null_in.get() < 0 || log.get() < 0) throw detail::system_failure("open " + log_path_.string());
    pid_ = detail::spawn(std::move(argv), null_in.get(), log.get());
  }

  ~process() { terminate(); }
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }

  /// Still running? (Leaves an exited child unreaped until terminate(), so its PID stays ours.)
  [[nodiscard]] bool alive() const { return !status_ && !detail::has_exited(pid_); }

  /// Stops it if it still runs (SIGTERM, `grace`, SIGKILL) and returns its exit status:
  /// the exit code, or 128+N when signal N ended it. Idempotent.
  int terminate(std::chrono::milliseconds grace = 3s) {
    if (!status_) status_ = detail::stop_and_reap(pid_, grace);
    return *status_;
  }

  /// The exit status once terminate() has reaped it.
  [[nodiscard]] std::optional<int> exit_status() const { return status_; }

  /// Everything it has written to stdout and stderr so far.
  [[nodiscard]] std::string log() const { return read_file(log_path_); }
  [[nodiscard]] const std::filesystem::path& log_path() const { return log_path_; }

 private:
  static std::vector<std::string> with_netns(const network_namespace& ns, std::vector<std::string> argv) {
    // `ip netns exec` execs the command in place (no fork), so our child's PID is the program's.
    std::vector<std::string> full = {"ip", "netns", "exec", ns.name()};
    full.insert(full.end(), std::make_move_iterator(argv.begin()), std::make_move_iterator(argv.end()));
    return full;
  }

  std::filesystem::path log_path_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

/// Empty when this machine can run namespace tests; otherwise why not (the test then skips).
inline std::string require_root_and_netns() {
  static const std::string reason = [] () -> std::string {
    if (::geteuid() != 0) return "needs root for ip netns, veth and TUN devices";
    if (::access("/dev/net/tun", R_OK | W_OK) != 0) return "/dev/net/tun is missing or not usable";
    if (!executable_in_path("ip")) return "the ip tool (iproute2) is not installed";
    const std::string probe = "fb-" + std::to_string(::getpid()) + "-probe";
    auto added = detail::capture({"ip", "netns", "add", probe}, 10s);
    if (!added.ok()) return "ip netns add does not work here: " + added.output;
    auto inside = detail::capture({"ip", "netns", "exec", probe, "ip", "link", "set", "lo", "up"}, 10s);
    detail::capture({"ip", "netns", "del", probe}, 10s);
    if (!inside.ok()) return "ip netns exec does not work here: " + inside.output;
    return {};
  }();
  return reason;
}

/// Empty when every tool is on PATH; otherwise a sentence naming the missing ones.
inline std::string missing_tools(std::initializer_list<std::string> tools) {
  std::string missing;
  for (const auto& t : tools) {
    if (!executable_in_path(t)) missing += (missing.empty() ? "" : ", ") + t;
  }
  return missing.empty() ? missing : "missing tools: " + missing;
}

namespace detail {
inline bool creator_is_gone(const std::string& pid_text) {
  const auto owner = static_cast<pid_t>(std::stol(pid_text));
  return ::kill(owner, 0) != 0 && errno == ESRCH;
}
}  // namespace detail

/// Removes what a test run that was SIGKILLed (a CTest timeout, say) left behind, as its
/// destructors never ran: namespaces fb-<pid>-* and scratch folders firebreak-test-<pid>-*
/// whose creating process no longer exists. (Its processes already died with it, through
/// PR_SET_PDEATHSIG.) Returns how many it removed.
inline int remove_stale_leftovers() {
  static const std::regex stale_namespace(R"(^fb-([0-9]+)-.*)");
  static const std::regex stale_folder(R"(^firebreak-test-([0-9]+)-.*)");
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string name = entry.path().filename().string();
    std::smatch m;
    if (!std::regex_match(name, m, stale_namespace) || !detail::creator_is_gone(m[1].str())) continue;
    if (detail::capture({"ip", "netns", "del", name}, 10s).ok()) ++removed;
  }
  const char* base = std::getenv("TMPDIR");
  for (const auto& entry : std::filesystem::directory_iterator(base && *base ? base : "/tmp", ec)) {
    const std::string name = entry.path().filename().string();
    std::smatch m;
    if (!entry.is_directory(ec) || !std::regex_match(name, m, stale_folder) ||
        !detail::creator_is_gone(m[1].str()))
      continue;
    std::error_code ignored;
    if (std::filesystem::remove_all(entry.path(), ignored) > 0) ++removed;
  }
  return removed;
}

}  // namespace firebreak::test::netns
