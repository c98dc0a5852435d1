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

// A process's arguments as the cache keeps them: `args` holds each argument
// followed by one NUL, cut to kCmdlineMax bytes; `truncated` when the last
// one was cut short (here or by the kernel).
struct ArgvBytes {
  std::string args;
  bool truncated = false;
};
// argv as the kernel keeps it (NUL-separated, NUL-terminated unless cut short)
// -> ArgvBytes. Bytes past a final NUL are an argument cut short.
ArgvBytes argv_bytes(std::span<const std::uint8_t> args, bool truncated);

class ProcessCache {
 public:
  // `proc_root` is where to read PID/cmdline and PID/stat from (tests point it elsewhere).
  explicit ProcessCache(std::size_t max_entries, std::string proc_root = "/proc");

  // A process exec'd: its new arguments replace anything known of the PID.
  // start_ns 0 means the start time is unknown (then it is not checked).
  void on_exec(std::uint32_t pid, std::uint64_t start_ns, ArgvBytes argv);

  struct CommandLine {
    std::string_view text;  // arguments joined by spaces ("..." when cut short); "?" unknown
    std::string_view args;  // ArgvBytes::args; empty when unknown
    bool truncated = false;
  };
  // The command line of the process `pid` started at `start_ns`; unknown
  // (text "?") when the process is gone and was not seen exec'ing, or its PID
  // now belongs to another process. Valid until the next call.
  CommandLine command_line(std::uint32_t pid, std::uint64_t start_ns);
  // command_line(pid, start_ns).text.
  std::string_view cmdline(std::uint32_t pid, std::uint64_t start_ns) {
    return command_line(pid, start_ns).text;
  }

  std::size_t size() const { return index_.size(); }
  // Bytes of arguments held (at most size() * (kCmdlineMax + 1)).
  std::size_t bytes() const { return bytes_; }

 private:
  struct Entry {
    std::uint32_t pid;
    std::uint64_t start_ns;
    ArgvBytes argv;
  };
  void put(std::uint32_t pid, std::uint64_t start_ns, ArgvBytes argv);
  CommandLine joined(const Entry& e);
  void erase(std::list<Entry>::iterator it);
  // The start time /proc gives for `pid`, in clock ticks since boot, or -1.
  long long proc_start_ticks(std::uint32_t pid) const;

  std::size_t max_entries_;
  std::string proc_root_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::uint32_t, std::list<Entry>::iterator> index_;
  std::size_t bytes_ = 0;
  long ns_per_tick_;
  std::string text_;  // the joined form of the last command line returned
};

}  // namespace tcpconnect
