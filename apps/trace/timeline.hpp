// Reading actor traces back (the lines actors/trace/trace_recorder.hpp writes): several files, from
// several processes, merged into one timeline and filtered.
//
//   files ──read_trace (skips and counts what it cannot read)──> events ──merge──> one timeline
//                                                                       ──trace_filter──> what a person asked for
//
// Ordering: across processes by wall clock; within a process by its sequence number, even if its
// wall clock stepped back (each event is placed no earlier than the one before it in that process).
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <vector>

namespace firebreak::trace_view {

struct event {
  std::uint64_t seq = 0;
  std::int64_t mono_ns = 0, wall_us = 0;
  std::int64_t order_us = 0;  // wall_us, made monotone within its process by merge()
  std::int64_t wall_ms() const { return wall_us / 1000; }
  std::string role, proc, from, to, type, client, gateway, resource, conn, summary;
};

/// What could not be read, per kind; rendered as a note beside the timeline.
struct read_report {
  std::size_t files = 0, lines = 0, events = 0;
  std::size_t corrupt = 0;        // not JSON, or a field of the wrong type
  std::size_t truncated = 0;      // a last line cut short (the process stopped mid-write)
  std::size_t other_version = 0;  // "v" other than this build's format
  std::vector<std::string> unreadable_files;
  bool clean() const { return corrupt == 0 && truncated == 0 && other_version == 0 && unreadable_files.empty(); }
  std::string describe() const;
};

/// Reads one trace file's lines; appends to `out`.
void read_trace(std::istream& in, std::vector<event>& out, read_report& report);
/// Reads files by name (a missing or unreadable one is reported, the rest read).
std::vector<event> read_files(const std::vector<std::string>& paths, read_report& report);

/// Sorts into one timeline (see the top of this file).
void merge(std::vector<event>& events);

struct trace_filter {
  std::string client, gateway, resource, conn;
  std::optional<std::int64_t> from_ms, to_ms;  // wall clock, inclusive
  /// A client matches where it is named, and on a gateway where it is the connection's peer; a
  /// gateway likewise on a client.
  bool matches(const event& e) const;
};

/// "1795680181309" (unix ms) or "2026-11-26T08:03:01.309Z" / "2026-11-26T08:03:01" (UTC); nullopt if
/// neither.
std::optional<std::int64_t> parse_time(const std::string& text);

}  // namespace firebreak::trace_view
