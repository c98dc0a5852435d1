// Command lines by PID: taken from exec records as processes start, else
// from /proc/PID/cmdline (processes started before the tracer). Bounded:
// the least recently used entries go first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tcpconnect {

// argv as the kernel keeps it (NUL-separated, maybe NUL-terminated) -> one
// line: arguments joined by spaces, "..." appended when cut short.
std::string join_argv(std::span<const std::uint8_t> args, bool truncated);

class ProcessCache {
 public:
  // `proc_root` is where to read PID/cmdline from (tests point it elsewhere).
  explicit ProcessCache(std::size_t max_entries, std::string proc_root = "/proc");

  // A process exec'd: its new command line replaces anything known of the PID.
  void on_exec(std::uint32_t pid, std::string cmdline);
  // The command line of `pid`, or "?" when it is unknown (the process is
  // gone and was not seen exec'ing). Valid until the next call.
  std::string_view cmdline(std::uint32_t pid);

  std::size_t size() const { return index_.size(); }

 private:
  struct Entry {
    std::uint32_t pid;
    std::string cmdline;
  };
  void put(std::uint32_t pid, std::string cmdline);

  std::size_t max_entries_;
  std::string proc_root_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::uint32_t, std::list<Entry>::iterator> index_;
  std::string unknown_ = "?";
};

}  // namespace tcpconnect
