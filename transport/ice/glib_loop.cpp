#include "transport/ice/glib_loop.hpp"

#include <glib.h>

#include <future>

namespace firebreak::ice {

namespace {

gboolean run_closure(gpointer data) {
  (*static_cast<std::function<void()>*>(data))();
  return G_SOURCE_REMOVE;
}

void free_closure(gpointer data) { delete static_cast<std::function<void()>*>(data); }

}  // namespace

glib_loop::glib_loop() : context_(g_main_context_new()), loop_(g_main_loop_new(context_, FALSE)) {
  thread_ = std::thread([this] {
    g_main_context_push_thread_default(context_);
    g_main_loop_run(loop_);
    // Let what the last iteration scheduled (close callbacks, frees) run before the thread ends.
    while (g_main_context_iteration(context_, FALSE)) {
    }
    g_main_context_pop_thread_default(context_);
  });
}

glib_loop::~glib_loop() {
  stop();
  g_main_loop_unref(loop_);
  g_main_context_unref(context_);
}

bool glib_loop::post(std::function<void()> fn) {
  if (stopping_.load()) return false;
  g_main_context_invoke_full(context_, G_PRIORITY_DEFAULT, run_closure, new std::function<void()>(std::move(fn)),
                             free_closure);
  return true;
}

void glib_loop::run_sync(const std::function<void()>& fn) {
  std::promise<void> done;
  if (!post([&] {
        fn();
        done.set_value();
      }))
    return;
  done.get_future().wait();
}

void glib_loop::stop() {
  if (stopping_.exchange(true)) {
    if (thread_.joinable()) thread_.join();
    return;
  }
  g_main_context_invoke(context_, [](gpointer loop) -> gboolean {
    g_main_loop_quit(static_cast<GMainLoop*>(loop));
    return G_SOURCE_REMOVE;
  }, loop_);
  if (thread_.joinable()) thread_.join();
}

}  // namespace firebreak::ice
