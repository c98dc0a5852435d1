// Command lines by process: taken from exec records as processes start, else
// from /proc/PID/cmdline (processes started before the tracer, or forked
// children that never exec'd). Bounded in entries and, because every line is
// cut to kCmdlineMax bytes whatever its source, in bytes; the least recently
// used entries go first.
//
// A process is its PID and its start time (ns since boot, as the kernel
// keeps it): a PID reused by a later process never shows the earlier
// process's command line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "tcpconnect/abi.h"

namespace tcpconnect {

// Longest command line kept, in bytes of argv, whatever its source: what the
// kernel side copies at exec. Longer ones end in "...".
inline constexpr std::size_t kCmdlineMax = TC_CMDLINE_MAX;

// argv as the kernel keeps it (NUL-separated, maybe NUL-terminated) -> one
// line: arguments joined by spaces, cut to kCmdlineMax bytes, "..." appended
// when cut short (here or by the kernel: `truncated`).
std::string join_argv(std::span<const std::uint8_t> args, bool truncated);

class ProcessCache {
 public:
  // `proc_root` is where to read PID/cmdline and PID/stat from (tests point it elsewhere).
  explicit ProcessCache(std::size_t max_entries, std::string proc_root = "/proc");

  // A process exec'd: its new command line replaces anything known of the PID.
  // start_ns 0 means the start time is unknown (then it is not checked).
  void on_exec(std::uint32_t pid, std::uint64_t start_ns, std::string cmdline);
  // The command line of the process `pid` started at `start_ns`, or "?" when
  // it is unknown (the process is gone and was not seen exec'ing, or its PID
  // now belongs to another process). Valid until the next call.
  std::string_view cmdline(std::uint32_t pid, std::uint64_t start_ns);

  std::size_t size() const { return index_.size(); }
  // Bytes of command lines held (at most size() * (kCmdlineMax + 3)).
  std::size_t bytes() const { return bytes_; }

 private:
  struct Entry {
    std::uint32_t pid;
    std::uint64_t start_ns;
    std::string cmdline;
  };
  void put(std::uint32_t pid, std::uint64_t start_ns, std::string cmdline);
  void erase(std::list<Entry>::iterator it);
  // The start time /proc gives for `pid`, in clock ticks since boot, or -1.
  long long proc_start_ticks(std::uint32_t pid) const;

  std::size_t max_entries_;
  std::string proc_root_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::uint32_t, std::list<Entry>::iterator> index_;
  std::size_t bytes_ = 0;
  long ns_per_tick_;
  std::string unknown_ = "?";
};

}  // namespace tcpconnect
