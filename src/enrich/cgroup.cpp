#include "enrich/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace tcpconnect {
namespace {

constexpr std::size_t kIdLen = 64;

bool is_id(std::string_view s) {
  if (s.size() != kIdLen) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The container ID one path component names, or "".
std::string_view id_of_component(std::string_view c) {
  // cgroupfs drivers name the container's cgroup by its bare ID: docker's
  // "/docker/<id>", containerd's "/<namespace>/<id>", kubelet's
  // "/kubepods/<qos>/pod<uid>/<id>".
  if (is_id(c)) return c;
  // podman's cgroupfs driver: "/libpod_parent/libpod-<id>".
  if (c.starts_with("libpod-") && is_id(c.substr(7))) return c.substr(7);
  // systemd drivers: "<runtime>-<id>.scope" (docker, cri-containerd, crio,
  // libpod, ...). Other unit types (.mount, .service, .slice) hold no
  // container's processes even when their names embed an ID.
  constexpr std::string_view kScope = ".scope";
  if (!c.ends_with(kScope)) return {};
  c.remove_suffix(kScope.size());
  std::size_t dash = c.rfind('-');
  if (dash == std::string_view::npos || dash == 0) return {};
  // CRI-O's "crio-conmon-<id>.scope" holds conmon, the monitor CRI-O runs
  // next to the container on the host: the ID is the container's, but the
  // processes are not in it.
  if (c.substr(0, dash) == "crio-conmon") return {};
  std::string_view id = c.substr(dash + 1);
  return is_id(id) ? id : std::string_view{};
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view s) {
  auto oct = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && oct(s[i + 1]) && oct(s[i + 2]) && oct(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The 8-byte kernfs file handle of a cgroup2 directory is its id, which is
// what the BPF helpers report. Where file handles are not available (seccomp
// filters, old kernels), the inode number is the id on 64-bit kernels.
std::optional<std::uint64_t> id_at(int dirfd, const char* name) {
  struct {
    file_handle fh;
    unsigned char bytes[MAX_HANDLE_SZ];
  } h{};
  h.fh.handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  if (name_to_handle_at(dirfd, name, &h.fh, &mount_id, 0) == 0 && h.fh.handle_bytes == 8) {
    std::uint64_t id;
    std::memcpy(&id, h.fh.f_handle, sizeof id);
    return id;
  }
  struct stat st {};
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(st.st_ino);
}

std::uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string fd_path(int fd) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  std::string buf(4096, '\0');
  ssize_t n = readlink(link, buf.data(), buf.size());
  if (n <= 0 || static_cast<std::size_t>(n) >= buf.size()) return {};
  buf.resize(n);
  return buf;
}

constexpr int kFileidKernfs = 0xfe;                       // FILEID_KERNFS, not in the uapi headers
constexpr std::uint64_t kWalkIntervalNs = 1000000000;     // at most one walk a second
constexpr std::uint64_t kMissTtlNs = 10ull * 1000000000;  // how long a miss is remembered
constexpr std::size_t kMaxCached = 65536;                 // ids -> paths kept
// ... and their bytes: a user with a delegated subtree can make deep paths with long names.
constexpr std::size_t kMaxCachedBytes = 16u << 20;
constexpr std::size_t kMaxWalked = 65536;  // directories one walk visits
constexpr int kMaxDepth = 32;

const std::string kEmpty;

// Running out of descriptors is the one failure here that is neither the
// cgroup's doing nor lasting, yet it empties every path looked up meanwhile:
// said once on stderr, so that empty cgroup fields are not a silent mystery.
void warn_if_out_of_fds(int err) {
  static bool warned = false;
  if (warned || (err != EMFILE && err != ENFILE)) return;
  warned = true;
  std::fprintf(stderr,
               "tcpconnect: warning: cannot resolve cgroup paths: %s; cgroup fields are empty "
               "until descriptors are freed\n",
               std::strerror(err));
}

}  // namespace

std::string container_id_from_cgroup(std::string_view path) {
  // Walk the components from the innermost out: processes inside a container
  // may sit in sub-cgroups of it ("docker-<id>.scope/init.scope",
  // "libpod-<id>.scope/container"), and nested runtimes name the inner
  // container last.
  while (!path.empty()) {
    std::size_t slash = path.rfind('/');
    std::string_view comp = slash == std::string_view::npos ? path : path.substr(slash + 1);
    std::string_view id = id_of_component(comp);
    if (!id.empty()) return std::string(id);
    if (slash == std::string_view::npos) break;
    path = path.substr(0, slash);
  }
  return {};
}

std::optional<std::string> cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::optional<std::string> any;
  std::string line;
  while (std::getline(in, line)) {
    // "<id> <parent> <maj:min> <root> <mount point> <options> [optional...] - <fstype> ..."
    std::size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype;
    if (!(tail >> fstype) || fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, sep));
    std::string id, parent, dev, root, point;
    if (!(head >> id >> parent >> dev >> root >> point)) continue;
    // A mount of the hierarchy's root is what path_of()'s paths are relative
    // to; bind mounts of a subtree are only a last resort.
    if (root == "/") return unescape_octal(point);
    if (!any) any = unescape_octal(point);
  }
  return any;
}

std::optional<std::uint64_t> cgroup_id_of(const std::string& dir) {
  return id_at(AT_FDCWD, dir.c_str());
}

CgroupPaths::CgroupPaths(std::optional<std::string> mount) : mount_(std::move(mount)) {
  if (!mount_) return;
  mount_fd_ = open(mount_->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mount_fd_ < 0) return;
  // The mount as the kernel spells it, which is what readlink() of a
  // directory opened by handle starts with.
  prefix_ = fd_path(mount_fd_);
  if (prefix_.empty()) prefix_ = *mount_;
  if (auto root = id_at(mount_fd_, ".")) cache_.emplace(*root, "/");
}

CgroupPaths::~CgroupPaths() {
  if (mount_fd_ >= 0) close(mount_fd_);
}

const std::string& CgroupPaths::path_of(std::uint64_t id) {
  if (auto it = cache_.find(id); it != cache_.end()) return it->second;
  if (mount_fd_ < 0) return kEmpty;

  std::uint64_t now = now_ns();
  if (auto it = misses_.find(id); it != misses_.end()) {
    if (now < it->second) return kEmpty;
    misses_.erase(it);
  }
  if (cache_.size() >= kMaxCached || cache_bytes_ >= kMaxCachedBytes) {
    cache_.clear();
    cache_bytes_ = 0;
  }

  bool gone = false;
  if (by_handle_) {
    std::string path = open_by_id(id, gone);
    if (!path.empty()) {
      cache_bytes_ += path.size();
      return cache_.insert_or_assign(id, std::move(path)).first->second;
    }
  }
  // The kernel saying the id does not exist (ESTALE) is final: a walk cannot
  // find it either.
  if (!gone) {
    // Walked too recently: leave the id unremembered so that a later event
    // for it can trigger the next walk.
    if (now - last_walk_ns_ < kWalkIntervalNs) return kEmpty;
    last_walk_ns_ = now;
    walk();
    if (auto it = cache_.find(id); it != cache_.end()) return it->second;
  }
  if (misses_.size() >= kMaxCached) {
    std::erase_if(misses_, [now](const auto& m) { return m.second <= now; });
    if (misses_.size() >= kMaxCached) misses_.clear();
  }
  misses_[id] = now + kMissTtlNs;
  return kEmpty;
}

std::string CgroupPaths::open_by_id(std::uint64_t id, bool& gone) {
  struct {
    file_handle fh;
    unsigned char bytes[sizeof(std::uint64_t)];
  } h{};
  h.fh.handle_bytes = sizeof id;
  h.fh.handle_type = kFileidKernfs;
  std::memcpy(h.fh.f_handle, &id, sizeof id);
  int fd = open_by_handle_at(mount_fd_, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    warn_if_out_of_fds(errno);
    if (errno == ESTALE || errno == ENOENT) {
      gone = true;
    } else if (errno == EPERM || errno == ENOSYS || errno == EOPNOTSUPP) {
      // No CAP_DAC_READ_SEARCH (or no support): will not change, stop trying.
      by_handle_ = false;
    }
    return {};
  }
  std::string abs = fd_path(fd);
  close(fd);
  // A directory removed since it was opened reads "<path> (deleted)".
  if (abs.ends_with(" (deleted)")) {
    gone = true;
    return {};
  }
  if (prefix_ == "/") return abs;
  if (!abs.starts_with(prefix_)) return {};
  if (abs.size() == prefix_.size()) return "/";
  if (abs[prefix_.size()] != '/') return {};
  return abs.substr(prefix_.size());
}

void CgroupPaths::walk() {
  // Depth-first over the hierarchy, remembering every id met so that one walk
  // answers the misses that follow it. Directories are reopened by path from
  // the mount rather than kept open, so a wide tree costs no descriptors.
  struct Dir {
    std::string path;  // relative to the mount, "" for the root
    int depth;
  };
  if (auto root = id_at(mount_fd_, ".")) cache_.emplace(*root, "/");
  std::vector<Dir> stack{{"", 0}};
  std::size_t visited = 0;
  while (!stack.empty() && visited < kMaxWalked) {
    Dir d = std::move(stack.back());
    stack.pop_back();
    const char* rel = d.path.empty() ? "." : d.path.c_str() + 1;
    int fd = openat(mount_fd_, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {  // removed meanwhile, or out of descriptors
      warn_if_out_of_fds(errno);
      continue;
    }
    DIR* dir = fdopendir(fd);
    if (!dir) {
      close(fd);
      continue;
    }
    while (dirent* e = readdir(dir)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      if (e->d_type != DT_DIR) {
        struct stat st {};
        if (e->d_type != DT_UNKNOWN || fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(st.st_mode)) {
          continue;
        }
      }
      if (++visited > kMaxWalked) break;
      auto id = id_at(fd, e->d_name);
      if (!id) continue;
      std::string path = d.path + "/" + e->d_name;
      if (cache_.size() < kMaxCached && cache_bytes_ < kMaxCachedBytes &&
          cache_.emplace(*id, path).second)
        cache_bytes_ += path.size();
      if (d.depth + 1 < kMaxDepth) stack.push_back({std::move(path), d.depth + 1});
    }
    closedir(dir);
  }
}

}  // namespace tcpconnect
