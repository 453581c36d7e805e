// The daemon's status socket: a Unix stream socket (mode 0660) where `firebreak client status` and
// `firebreak gateway status` ask for the node's state. One request per connection: the line "status",
// answered with one JSON document, then the connection is closed.
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
  static std::unique_ptr<status_server> start(const std::string& path, std::function<std::string()> answer,
                                              std::string& why);
  ~status_server();

 private:
  status_server() = default;
  void run();
  int fd_ = -1;
  std::string path_;
  std::function<std::string()> answer_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

/// Asks the daemon listening at `path`; nullopt and `why` (e.g. "is the client running?") when it cannot.
std::optional<std::string> ask_status(const std::string& path, std::string& why);

}  // namespace firebreak::apps
