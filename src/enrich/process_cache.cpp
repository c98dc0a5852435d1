#include "enrich/process_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <string_view>

namespace tcpconnect {

namespace {

constexpr std::string_view kCut = "...";

// Reads at most `max` bytes of a /proc file; false when it cannot be opened
// or read (the process is gone). `full` tells whether the file had no more.
bool read_capped(const std::string& path, std::size_t max, std::string& out, bool& full) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out.assign(max + 1, '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0) {
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  full = got <= max;
  out.resize(std::min(got, max));
  return true;
}

}  // namespace

std::string join_argv(std::span<const std::uint8_t> args, bool truncated) {
  if (args.size() > kCmdlineMax) {
    args = args.first(kCmdlineMax);
    truncated = true;
  }
  std::string out(args.begin(), args.end());
  while (!out.empty() && out.back() == '\0') out.pop_back();
  std::replace(out.begin(), out.end(), '\0', ' ');
  if (truncated) out += kCut;
  return out;
}

ArgvBytes argv_bytes(std::span<const std::uint8_t> args, bool truncated) {
  if (args.size() > kCmdlineMax) {
    args = args.first(kCmdlineMax);
    truncated = true;
  }
  ArgvBytes out{std::string(args.begin(), args.end()), truncated};
  // Each argument ends in a NUL; an argument cut short has none of its own.
  if (!out.args.empty() && out.args.back() != '\0') out.args.push_back('\0');
  return out;
}

ProcessCache::ProcessCache(std::size_t max_entries, std::string proc_root)
    : max_entries_(max_entries ? max_entries : 1), proc_root_(std::move(proc_root)) {
  const long hz = sysconf(_SC_CLK_TCK);
  ns_per_tick_ = hz > 0 ? 1'000'000'000 / hz : 10'000'000;
}

void ProcessCache::erase(std::list<Entry>::iterator it) {
  bytes_ -= it->argv.args.size();
  index_.erase(it->pid);
  lru_.erase(it);
}

void ProcessCache::put(std::uint32_t pid, std::uint64_t start_ns, ArgvBytes argv) {
  if (argv.args.size() > kCmdlineMax + 1) {
    argv.args.resize(kCmdlineMax);
    argv.args.push_back('\0');
    argv.truncated = true;
  }
  if (auto it = index_.find(pid); it != index_.end()) erase(it->second);
  bytes_ += argv.args.size();
  lru_.push_front(Entry{pid, start_ns, std::move(argv)});
  index_[pid] = lru_.begin();
  while (index_.size() > max_entries_) erase(std::prev(lru_.end()));
}

void ProcessCache::on_exec(std::uint32_t pid, std::uint64_t start_ns, ArgvBytes argv) {
  put(pid, start_ns, std::move(argv));
}

ProcessCache::CommandLine ProcessCache::joined(const Entry& e) {
  const std::string& a = e.argv.args;
  // Without the NUL that ends the last argument: at most kCmdlineMax bytes.
  const std::size_t n = a.empty() ? 0 : a.size() - 1;
  text_ =
      join_argv(std::span(reinterpret_cast<const std::uint8_t*>(a.data()), n), e.argv.truncated);
  return CommandLine{text_, a, e.argv.truncated};
}

long long ProcessCache::proc_start_ticks(std::uint32_t pid) const {
  std::string stat;
  bool full = false;
  // The command name, in parentheses, may hold spaces and ')': fields are counted
  // from the last ')'. 512 bytes reach field 22 whatever the name.
  if (!read_capped(proc_root_ + "/" + std::to_string(pid) + "/stat", 512, stat, full)) return -1;
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  // After ") ": field 3 (state) is the first; starttime is field 22.
  std::size_t pos = close + 1;
  for (int field = 3; field < 22; ++field) {
    pos = stat.find(' ', pos + 1);
    if (pos == std::string::npos) return -1;
  }
  char* end = nullptr;
  const long long ticks = std::strtoll(stat.c_str() + pos + 1, &end, 10);
  return end == stat.c_str() + pos + 1 ? -1 : ticks;
}

ProcessCache::CommandLine ProcessCache::command_line(std::uint32_t pid, std::uint64_t start_ns) {
  static constexpr CommandLine kUnknown{"?", {}, false};
  if (auto it = index_.find(pid); it != index_.end()) {
    auto entry = it->second;
    if (start_ns == 0 || entry->start_ns == 0 || entry->start_ns == start_ns) {
      lru_.splice(lru_.begin(), lru_, entry);
      return joined(*entry);
    }
    erase(entry);  // the PID now belongs to another process
  }
  // Started before the tracer, forked without exec'ing, or its exec record was
  // lost: ask /proc while the process is still there. Kernel threads and zombies
  // have no argv. The start time is read after the command line, so a PID reused
  // in between is noticed.
  std::string raw;
  bool full = false;
  if (!read_capped(proc_root_ + "/" + std::to_string(pid) + "/cmdline", kCmdlineMax, raw, full) ||
      raw.empty())
    return kUnknown;
  if (start_ns != 0) {
    const long long ticks = proc_start_ticks(pid);
    if (ticks < 0 || static_cast<std::uint64_t>(ticks) != start_ns / ns_per_tick_) return kUnknown;
  }
  put(pid, start_ns,
      argv_bytes(std::span(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()), !full));
  return joined(lru_.front());
}

}  // namespace tcpconnect
