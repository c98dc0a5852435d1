#include "enrich/process_cache.h"

#include <fstream>
#include <iterator>

namespace tcpconnect {

std::string join_argv(std::span<const std::uint8_t> args, bool truncated) {
  std::string out(args.begin(), args.end());
  while (!out.empty() && out.back() == '\0') out.pop_back();
  for (char& c : out) {
    if (c == '\0') c = ' ';
  }
  if (truncated) out += "...";
  return out;
}

ProcessCache::ProcessCache(std::size_t max_entries, std::string proc_root)
    : max_entries_(max_entries ? max_entries : 1), proc_root_(std::move(proc_root)) {}

void ProcessCache::put(std::uint32_t pid, std::string cmdline) {
  if (auto it = index_.find(pid); it != index_.end()) {
    it->second->cmdline = std::move(cmdline);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(Entry{pid, std::move(cmdline)});
  index_[pid] = lru_.begin();
  while (index_.size() > max_entries_) {
    index_.erase(lru_.back().pid);
    lru_.pop_back();
  }
}

void ProcessCache::on_exec(std::uint32_t pid, std::string cmdline) { put(pid, std::move(cmdline)); }

std::string_view ProcessCache::cmdline(std::uint32_t pid) {
  if (auto it = index_.find(pid); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->cmdline;
  }
  // Started before the tracer (or its exec record was lost): ask /proc while
  // the process is still there. Kernel threads and zombies have no argv.
  std::string raw;
  try {
    std::ifstream in(proc_root_ + "/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    raw.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return unknown_;
  } catch (const std::ios_base::failure&) {
    // The process exited between open() and read() (ESRCH), which libstdc++'s
    // filebuf reports by throwing.
    return unknown_;
  }
  if (raw.empty()) return unknown_;
  put(pid,
      join_argv(std::span(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()), false));
  return lru_.front().cmdline;
}

}  // namespace tcpconnect
