// The daemon's status socket: a Unix stream socket (mode 0660) where `firebreak client status` and
// `firebreak gateway status` ask for the node's state. One request per connection: one line naming
// the request ("status"; "sign-out" for a client), answered with one JSON document, then the
// connection is closed.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>

namespace firebreak::apps {

class status_server {
 public:
  /// Listens at `path` (a stale socket file there is replaced; its directory is created). nullopt and
  /// `why` when it cannot.
  using answer_fn = std::function<std::string(const std::string& request)>;
  static std::unique_ptr<status_server> start(const std::string& path, answer_fn answer, std::string& why);
  ~status_server();

 private:
  status_server() = default;
  void run();
  int fd_ = -1;
  std::string path_;
  answer_fn answer_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

/// Sends `request` to the daemon listening at `path`; its answer, or nullopt and `why` (e.g. "is the
/// daemon running?") when it cannot.
std::optional<std::string> ask_daemon(const std::string& path, const std::string& request, std::string& why);

}  // namespace firebreak::apps
