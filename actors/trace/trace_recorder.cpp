#include "actors/trace/trace_recorder.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

namespace firebreak::trace {

recorder& recorder::instance() {
  static recorder r;
  return r;
}

recorder::~recorder() { shutdown(); }

void recorder::configure(recorder_settings settings) {
  std::lock_guard lock(mutex_);
  settings_ = std::move(settings);
  if (settings_.files < 1) settings_.files = 1;
}

bool recorder::set_enabled(bool enable, std::string& why) {
  if (!enable) {
    detail::enabled.store(false, std::memory_order_relaxed);
    return true;
  }
  {
    std::lock_guard lock(mutex_);
    if (settings_.path.empty()) {
      why = "no trace file is configured (trace_file, FIREBREAK_TRACE_FILE, --trace-file)";
      return false;
    }
  }
  {
    std::lock_guard lock(file_mutex_);
    if (!file_ && !open_file(why)) return false;
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
    if (!writer_.joinable()) writer_ = std::thread([this] { run(); });
  }
  detail::enabled.store(true, std::memory_order_relaxed);
  return true;
}

bool recorder::open_file(std::string& why) {
  std::error_code ec;
  const auto dir = std::filesystem::path(settings_.path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  const auto old = ::umask(077);  // a trace says who reached what: for the operator's eyes only
  file_ = std::fopen(settings_.path.c_str(), "ae");
  ::umask(old);
  if (!file_) {
    why = "cannot open the trace file " + settings_.path + ": " + std::strerror(errno);
    return false;
  }
  file_bytes_ = std::filesystem::file_size(settings_.path, ec);
  if (ec) file_bytes_ = 0;
  return true;
}

void recorder::shutdown() {
  detail::enabled.store(false, std::memory_order_relaxed);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  std::lock_guard lock(file_mutex_);
  if (file_) {
    std::fclose(file_);
    file_ = nullptr;
  }
}

void recorder::record(std::string_view from, std::string_view to, std::string_view type, const keys& k,
                      std::string_view summary) {
  using namespace std::chrono;
  nlohmann::json line = {
      {"v", format_version},
      {"seq", seq_.fetch_add(1, std::memory_order_relaxed)},
      {"mono_ns", duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count()},
      {"wall_us", duration_cast<microseconds>(system_clock::now().time_since_epoch()).count()},
      {"from", from},
      {"to", to},
      {"type", type},
  };
  if (!k.client.empty()) line["client"] = k.client;
  if (!k.gateway.empty()) line["gateway"] = k.gateway;
  if (!k.resource.empty()) line["resource"] = k.resource;
  if (!k.conn.empty()) line["conn"] = k.conn;
  if (!summary.empty()) line["summary"] = summary;
  {
    std::lock_guard lock(mutex_);
    line["role"] = settings_.role;
    line["proc"] = settings_.proc;
    if (pending_.size() >= settings_.max_pending) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pending_.push_back(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  recorded_.fetch_add(1, std::memory_order_relaxed);
  wake_.notify_one();
}

void recorder::run() {
  std::vector<std::string> batch;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_ || pending_.size() >= 256; });
      batch.swap(pending_);
      if (stopping_ && batch.empty()) return;
    }
    write_batch(batch);
    batch.clear();
  }
}

void recorder::write_batch(std::vector<std::string>& lines) {
  std::lock_guard lock(file_mutex_);
  if (!file_) return;
  for (auto& l : lines) {
    l += '\n';
    if (file_bytes_ > 0 && file_bytes_ + l.size() > settings_.max_bytes) rotate();
    if (!file_) return;
    if (std::fwrite(l.data(), 1, l.size(), file_) != l.size()) {
      std::lock_guard elock(mutex_);
      error_ = std::string("writing the trace: ") + std::strerror(errno);
      dropped_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    file_bytes_ += l.size();
    written_.fetch_add(l.size(), std::memory_order_relaxed);
  }
  std::fflush(file_);
}

void recorder::rotate() {
  std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  const auto& p = settings_.path;
  for (int i = settings_.files - 1; i >= 1; --i) {
    const auto from = i == 1 ? p : p + "." + std::to_string(i - 1);
    std::filesystem::rename(from, p + "." + std::to_string(i), ec);
  }
  if (settings_.files == 1) std::filesystem::remove(p, ec);
  rotations_.fetch_add(1, std::memory_order_relaxed);
  std::string why;
  if (!open_file(why)) {
    std::lock_guard elock(mutex_);
    error_ = why;
  }
  file_bytes_ = 0;
}

recorder_stats recorder::stats() const {
  recorder_stats s;
  s.on = on();
  s.recorded = recorded_.load();
  s.dropped = dropped_.load();
  s.written_bytes = written_.load();
  s.rotations = rotations_.load();
  std::lock_guard lock(mutex_);
  s.path = settings_.path;
  s.error = error_;
  return s;
}

}  // namespace firebreak::trace
