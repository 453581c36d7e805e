// One GLib main context on a thread of its own: libnice agents live on it and emit their signals there.
// Everything else talks to it by posting closures (g_main_context_invoke), so GLib never runs on a CAF
// worker and no CAF actor blocks on GLib.
//
//   constructor ── starts the thread, which iterates the context until stop()
//   post(fn)    ── runs fn on the loop thread, in order, soon (from any thread)
//   stop()      ── posts a quit, joins the thread; closures posted afterwards are dropped
#pragma once

#include <atomic>
#include <functional>
#include <thread>

typedef struct _GMainContext GMainContext;
typedef struct _GMainLoop GMainLoop;

namespace firebreak::ice {

class glib_loop {
 public:
  glib_loop();
  ~glib_loop();
  glib_loop(const glib_loop&) = delete;
  glib_loop& operator=(const glib_loop&) = delete;

  GMainContext* context() const { return context_; }
  bool on_loop_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

  /// Runs `fn` on the loop thread. Returns false (and drops `fn`) once the loop is stopping.
  bool post(std::function<void()> fn);
  /// Runs `fn` on the loop thread and waits for it (never call from the loop thread itself).
  void run_sync(const std::function<void()>& fn);

  void stop();

 private:
  GMainContext* context_ = nullptr;
  GMainLoop* loop_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace firebreak::ice
