// The actor trace: one JSON line per typed message between Firebreak's actors, and per wire event that
// matters (portal frames, goodbyes, handshakes), for a person to read later with `firebreak trace`.
//
//   actor handler ──trace_in(self, type, keys, summary)──> recorder::record ──(bounded queue)──> writer
//   thread ──> <file>, rotated at max_bytes into <file>.1 .. <file>.<files-1>
//
// Off by default, and then a trace point costs one relaxed atomic load. Switchable at run time
// (SIGUSR1, `firebreak client|gateway trace on|off`). When on, recording never blocks an actor: lines
// beyond `max_pending` are dropped and counted, and the file is written by a thread of its own.
//
// A line (format version 1):
//   {"v":1,"seq":12,"mono_ns":..,"wall_us":..,"role":"gateway","proc":"gw-b","from":"authorization",
//    "to":"tunnel","type":"client_unauthorized","client":"..","gateway":"..","resource":"..","conn":"..",
//    "summary":"revoked"}
// wall_us (microseconds) orders lines of processes on one host, where events a millisecond apart
// are common; mono_ns orders and times them within a process. Correlation keys that do not apply are
// left out. A summary is chosen at its trace point and never
// carries a key, token, password or payload.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace firebreak::trace {

inline constexpr int format_version = 1;

/// What a record is about; empty fields are left out of the line.
struct keys {
  std::string client, gateway, resource, conn;
};

struct recorder_settings {
  std::string path;                    // empty: tracing cannot be switched on
  std::uint64_t max_bytes = 16 << 20;  // per file, then rotated
  int files = 4;                       // <path> and <path>.1 .. <path>.<files-1>
  std::size_t max_pending = 65536;     // lines waiting for the writer; beyond: dropped, counted
  std::string role;                    // "client" | "gateway" | ...
  std::string proc;                    // this process, as traces from several processes are told apart
};

struct recorder_stats {
  bool on = false;
  std::uint64_t recorded = 0, dropped = 0, written_bytes = 0, rotations = 0;
  std::string path;
  std::string error;  // the last write error, if any
};

namespace detail {
inline std::atomic<bool> enabled{false};
}

/// The one check every trace point makes first.
inline bool on() noexcept { return detail::enabled.load(std::memory_order_relaxed); }

class recorder {
 public:
  /// The process's recorder.
  static recorder& instance();

  /// Where and how to record; takes effect on the next switch on.
  void configure(recorder_settings settings);
  /// Opens (or closes) the file; false and `why` when it cannot be opened.
  bool set_enabled(bool enable, std::string& why);
  /// Flushes what is queued and stops the writer (on exit).
  void shutdown();

  void record(std::string_view from, std::string_view to, std::string_view type, const keys& k,
              std::string_view summary);
  recorder_stats stats() const;

  ~recorder();

 private:
  recorder() = default;
  void run();
  void write_batch(std::vector<std::string>& lines);
  bool open_file(std::string& why);
  void rotate();

  recorder_settings settings_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::string> pending_;
  std::thread writer_;
  bool stopping_ = false;
  std::FILE* file_ = nullptr;  // the writer's, guarded by file_mutex_
  std::mutex file_mutex_;
  std::uint64_t file_bytes_ = 0;
  std::atomic<std::uint64_t> seq_{0}, recorded_{0}, dropped_{0}, written_{0}, rotations_{0};
  std::string error_;
};

inline void record(std::string_view from, std::string_view to, std::string_view type, const keys& k,
                   std::string_view summary = {}) {
  if (on()) recorder::instance().record(from, to, type, k, summary);
}

}  // namespace firebreak::trace
