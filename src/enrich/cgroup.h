// cgroup v2 ids to paths, and the container a path names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tcpconnect {

// The container ID a cgroup path names, or "" when it names none. Knows
// docker (".../docker-<id>.scope", "/docker/<id>"), containerd/CRI
// ("cri-containerd-<id>.scope", "/kubepods/.../<id>"), CRI-O ("crio-<id>.scope"),
// podman/libpod ("libpod-<id>.scope", "/libpod_parent/libpod-<id>") and other
// systemd "<prefix>-<64 hex>.scope" units. IDs are 64 lower-case hex digits;
// the innermost (last) match wins.
std::string container_id_from_cgroup(std::string_view path);

// Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup on unified
// systems, /sys/fs/cgroup/unified on hybrid ones), from /proc/self/mountinfo;
// nullopt when it is not mounted.
std::optional<std::string> cgroup2_mount();

// The cgroup v2 id of a cgroup directory (what bpf_get_current_cgroup_id()
// returns for a task in it), or nullopt with errno set.
std::optional<std::uint64_t> cgroup_id_of(const std::string& dir);

// cgroup id -> path relative to the cgroup2 mount ("/system.slice/x.scope",
// "/" for the root), cached. Unknown ids (cgroup already removed, no cgroup2
// mount) give "".
class CgroupPaths {
 public:
  explicit CgroupPaths(std::optional<std::string> mount = cgroup2_mount());
  ~CgroupPaths();
  CgroupPaths(const CgroupPaths&) = delete;
  CgroupPaths& operator=(const CgroupPaths&) = delete;

  // Resolves by file handle (needs CAP_DAC_READ_SEARCH), else by walking the
  // mount, at most once a second; misses are remembered for a few seconds.
  // The reference is valid until the next call. Not thread-safe.
  const std::string& path_of(std::uint64_t id);

 private:
  std::string open_by_id(std::uint64_t id, bool& gone);
  void walk();

  std::optional<std::string> mount_;
  int mount_fd_ = -1;
  std::string prefix_;     // the mount as readlink() spells it
  bool by_handle_ = true;  // cleared once open_by_handle_at() is refused
  std::uint64_t last_walk_ns_ = 0;
  std::unordered_map<std::uint64_t, std::string> cache_;
  std::size_t cache_bytes_ = 0;                              // of the paths in cache_
  std::unordered_map<std::uint64_t, std::uint64_t> misses_;  // id -> forget after (steady ns)
};

}  // namespace tcpconnect
