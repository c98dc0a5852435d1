#include "probe/tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>

#include "probe/tracefs.h"
#include "tc_bpf.skel.h"
#include "tcpconnect/abi.h"

namespace tcpconnect {

namespace {

LogFn g_log;  // libbpf's print callback is a plain C function

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  if (!g_log || level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof(buf), format, args);
  if (n > 0) {
    std::string line(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof(buf) - 1));
    while (!line.empty() && line.back() == '\n') line.pop_back();
    g_log("libbpf: " + line);
  }
  return 0;
}

struct Candidate {
  AttachMode mode;
  const char* why;  // provenance shown under --verbose
};

// Best first: tp_btf reads typed arguments directly; raw_tp needs no BTF for
// the context but still no tracefs; classic tracepoints need tracefs.
constexpr Candidate kCandidates[] = {
    {AttachMode::TpBtf, "typed BTF tracepoint, cheapest"},
    {AttachMode::RawTp, "raw tracepoint, no tracefs needed"},
    {AttachMode::Tracepoint, "perf-event tracepoint via tracefs"},
};

// Calls fn(key) for every key of the map behind `fd`.
template <typename Key, typename Fn>
void for_each_key(int fd, Fn fn) {
  Key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    fn(next);
    key = next;
    prev = &key;
  }
}

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

// File descriptors of the user's filter objects, opened once for every
// attach attempt (libbpf dups the map fds it reuses).
struct FilterFds {
  int cgroup = -1;
  int cgroupmap = -1;
  int mntnsmap = -1;
  FilterFds() = default;
  FilterFds(const FilterFds&) = delete;
  FilterFds& operator=(const FilterFds&) = delete;
  ~FilterFds() {
    for (int fd : {cgroup, cgroupmap, mntnsmap})
      if (fd >= 0) close(fd);
  }
};

// Whether `path` names /sys/fs/bpf or something below it, once the part that exists is resolved.
bool under_sys_fs_bpf(const std::string& path) {
  std::error_code ec;
  const std::string p = std::filesystem::weakly_canonical(path, ec).string();
  return !ec && (p == "/sys/fs/bpf" || p.starts_with("/sys/fs/bpf/"));
}

// Opens a bcc-style filter map: a pinned hash map with 8-byte keys.
int open_filter_map(const std::string& path, const char* option, Error& err) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    const int e = errno;
    struct statfs fs {};
    // Missing because nothing could be pinned there: only a path in the usual place says that.
    if (e == ENOENT && under_sys_fs_bpf(path) &&
        (statfs("/sys/fs/bpf", &fs) != 0 || fs.f_type != BPF_FS_MAGIC)) {
      err = {fmt::format("cannot open {} {}: no BPF filesystem is mounted at /sys/fs/bpf", option,
                         path),
             "mount it (mount -t bpf bpf /sys/fs/bpf) and pin the map there", 1};
      return -1;
    }
    // The kernel answers EACCES both for a denied path and for a file or directory that is not
    // a BPF object; only the first fails an access check of our own.
    const bool not_bpf =
        e == EINVAL || e == EPERM ||
        (e == EACCES && faccessat(AT_FDCWD, path.c_str(), R_OK | W_OK, AT_EACCESS) == 0);
    err = {fmt::format("cannot open {} {}: {}", option, path,
                       not_bpf ? "not a pinned BPF object" : errno_text(e)),
           "", 2};
    return -1;
  }
  bpf_map_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0 ||
      (info.type != BPF_MAP_TYPE_HASH && info.type != BPF_MAP_TYPE_LRU_HASH) ||
      info.key_size != 8) {
    // Usage errors stay on one line: the hint is part of the message.
    err = {fmt::format("{} {}: expected a pinned BPF hash map with 8-byte keys (bpftool map "
                       "create PATH type hash key 8 value 8 entries 128 name NAME flags 0)",
                       option, path),
           "", 2};
    close(fd);
    return -1;
  }
  return fd;
}

bool open_filters(const TracerConfig& cfg, FilterFds& fds, Error& err) {
  if (!cfg.cgroup.empty()) {
    struct statfs fs {};
    fds.cgroup = open(cfg.cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fds.cgroup < 0) {
      err = {fmt::format("cannot open --cgroup {}: {}", cfg.cgroup, errno_text(errno)), "", 2};
      return false;
    }
    if (fstatfs(fds.cgroup, &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
      err = {fmt::format("--cgroup {}: not a cgroup v2 directory (see: findmnt -t cgroup2)",
                         cfg.cgroup),
             "", 2};
      return false;
    }
  }
  if (!cfg.cgroupmap.empty() &&
      (fds.cgroupmap = open_filter_map(cfg.cgroupmap, "--cgroupmap", err)) < 0)
    return false;
  if (!cfg.mntnsmap.empty() &&
      (fds.mntnsmap = open_filter_map(cfg.mntnsmap, "--mntnsmap", err)) < 0)
    return false;
  return true;
}

// The attach mechanism a program is written for. Syscall: a classic syscalls:* tracepoint, the
// same program whichever mechanism the others use (those tracepoints exist only in tracefs).
enum class Via { TpBtf, RawTp, Tracepoint, Syscall };

bool runs_in(Via via, AttachMode mode) {
  switch (via) {
    case Via::TpBtf:
      return mode == AttachMode::TpBtf;
    case Via::RawTp:
      return mode == AttachMode::RawTp;
    case Via::Tracepoint:
      return mode == AttachMode::Tracepoint;
    case Via::Syscall:
      return true;
  }
  return false;
}

// What connection tracking follows, for the records asked for and the metrics: the handshake's
// end (outcome) and the close (lifetime). Mirrors follow_outcomes() and follow_closes() in
// bpf/tcpconnect.bpf.h.
bool follows_outcomes(const TracerConfig& c) {
  return c.want_outcome || c.want_close || c.metrics || c.count_outcomes || c.count_handshakes ||
         c.count_closes;
}
bool follows_closes(const TracerConfig& c) { return c.want_close || c.metrics || c.count_closes; }

// Connects are followed past CLOSE -> SYN_SENT to learn their source port, outcome or close;
// otherwise -c counts them and connect records are sent right there. With -c -L the count key
// needs the port. (bpf/conn.bpf.c: follow_handshakes().)
bool follows_handshakes(const TracerConfig& c) {
  if (c.count_mode) return c.count_by_sport || follows_outcomes(c);
  return c.want_sport || follows_outcomes(c);
}

// Whether any record goes through the connection ring (-c and --metrics --quiet send none).
bool sends_records(const TracerConfig& c) {
  return c.want_connect || c.want_outcome || c.want_close || c.want_accept;
}

using Progs = decltype(tc_bpf::progs);

// One row per BPF program of the skeleton (bpf/tcpconnect.bpf.c): a mode loads and attaches the
// rows that run in it and are needed, in this order (a tracepoint runs its programs in attach
// order: each primary before its backup), and leaves the others' autoload off.
struct Hook {
  const char* tracepoint;  // for messages
  bpf_program* Progs::*prog;
  bool (*needed)(const TracerConfig&);
  Via via;
  unsigned flags = 0;  // HookFlag
};

enum HookFlag : unsigned {
  // Without tracefs, left out (Tracer::open says what is missing) instead of failing the mode.
  kOptional = 1,
  // Its recursion misses are runs the kernel skipped that a record may depend on (skipped()).
  kCountsSkips = 2,
};

constexpr auto kAlways = [](const TracerConfig&) { return true; };
constexpr auto kClose = follows_closes;
constexpr auto kExec = [](const TracerConfig& c) { return c.want_exec; };
constexpr auto kAccept = [](const TracerConfig& c) {
  return c.want_accept || c.track_accepts || c.metrics;
};
constexpr auto kDns = [](const TracerConfig& c) { return c.want_dns; };
// Failures before any SYN are seen at connect()'s return, with its address from its entry.
constexpr auto kConnectEnter = [](const TracerConfig& c) {
  return follows_outcomes(c) || c.want_dns;
};

// connect()'s return: the source port of connects followed past SYN_SENT, and -d's sockets
// addressed to port 53.
constexpr auto kConnectExit = [](const TracerConfig& c) {
  return follows_handshakes(c) || c.want_dns;
};

constexpr Hook kHooks[] = {
    {"sock:inet_sock_set_state", &Progs::state_btf, kAlways, Via::TpBtf, kCountsSkips},
    {"sock:inet_sock_set_state", &Progs::state_btf_backup, follows_handshakes, Via::TpBtf},
    {"sock:inet_sock_set_state", &Progs::state_raw, kAlways, Via::RawTp, kCountsSkips},
    {"sock:inet_sock_set_state", &Progs::state_raw_backup, follows_handshakes, Via::RawTp},
    // Perf-event tracepoints skip every program while another runs: no backup there.
    {"sock:inet_sock_set_state", &Progs::state_tp, kAlways, Via::Tracepoint, kCountsSkips},
    {"tcp:tcp_destroy_sock", &Progs::destroy_btf, kClose, Via::TpBtf},
    {"tcp:tcp_destroy_sock", &Progs::destroy_raw, kClose, Via::RawTp},
    {"tcp:tcp_destroy_sock", &Progs::destroy_tp, kClose, Via::Tracepoint},
    {"tcp:tcp_retransmit_skb", &Progs::retransmit_btf, follows_handshakes, Via::TpBtf,
     kCountsSkips},
    {"tcp:tcp_retransmit_skb", &Progs::retransmit_raw, follows_handshakes, Via::RawTp,
     kCountsSkips},
    {"tcp:tcp_retransmit_skb", &Progs::retransmit_tp, follows_handshakes, Via::Tracepoint,
     kCountsSkips},
    // The source port at connect()'s return; without it, records wait for the handshake's end.
    {"syscalls:sys_exit_connect", &Progs::connect_exit_tp, kConnectExit, Via::Syscall, kOptional},
    {"syscalls:sys_enter_connect", &Progs::connect_enter_tp, kConnectEnter, Via::Syscall},
    {"syscalls:sys_exit_accept4", &Progs::accept4_exit_tp, kAccept, Via::Syscall},
    {"syscalls:sys_exit_accept", &Progs::accept_exit_tp, kAccept, Via::Syscall},
    {"sched:sched_process_exec", &Progs::exec_btf, kExec, Via::TpBtf},
    {"sched:sched_process_exec", &Progs::exec_raw, kExec, Via::RawTp},
    {"sched:sched_process_exec", &Progs::exec_tp, kExec, Via::Tracepoint},
    {"syscalls:sys_enter_sendto", &Progs::dns_sendto_enter_tp, kDns, Via::Syscall},
    {"syscalls:sys_enter_read", &Progs::dns_read_enter_tp, kDns, Via::Syscall},
    {"syscalls:sys_enter_recvfrom", &Progs::dns_recvfrom_enter_tp, kDns, Via::Syscall},
    {"syscalls:sys_enter_recvmsg", &Progs::dns_recvmsg_enter_tp, kDns, Via::Syscall},
    {"syscalls:sys_exit_read", &Progs::dns_read_exit_tp, kDns, Via::Syscall},
    {"syscalls:sys_exit_recvfrom", &Progs::dns_recvfrom_exit_tp, kDns, Via::Syscall},
    {"syscalls:sys_exit_recvmsg", &Progs::dns_recvmsg_exit_tp, kDns, Via::Syscall},
};
// The skeleton's program struct holds one pointer per program.
static_assert(sizeof(Progs) == std::size(kHooks) * sizeof(void*),
              "every BPF program needs its row in kHooks");

// The skeleton's link slot of `prog`, where tc_bpf__destroy() finds its link.
bpf_link** link_slot(tc_bpf* skel, const bpf_program* prog) {
  const bpf_object_skeleton* s = skel->skeleton;
  for (int i = 0; i < s->prog_cnt; i++)
    if (*s->progs[i].prog == prog) return s->progs[i].link;
  return nullptr;
}

struct Attempt {
  struct tc_bpf* skel = nullptr;
  std::string failure;  // empty on success
  int err = 0;
};

Attempt try_mode(const TracerConfig& cfg, const FilterFds& filters, AttachMode mode,
                 bool have_tracefs) {
  Attempt a;
  a.skel = tc_bpf__open();
  if (!a.skel) {
    a.err = errno;
    a.failure = "failed to open BPF object: " + errno_text(errno);
    return a;
  }
  auto* ro = a.skel->rodata;
  ro->filter_pid = cfg.pid;
  ro->filter_uid_on = cfg.uid_on;
  ro->filter_uid = cfg.uid;
  ro->filter_af = cfg.af;
  ro->filter_nports = static_cast<__u32>(std::min<std::size_t>(cfg.ports.size(), TC_MAX_PORTS));
  for (std::size_t i = 0; i < ro->filter_nports; i++) ro->filter_ports[i] = cfg.ports[i];
  ro->count_mode = cfg.count_mode;
  ro->count_by_process = cfg.count_by_process;
  ro->count_by_sport = cfg.count_by_sport;
  ro->count_outcomes = cfg.count_outcomes;
  ro->count_handshakes = cfg.count_handshakes;
  ro->count_closes = cfg.count_closes;
  ro->want_connect = cfg.want_connect;
  ro->want_sport = cfg.want_sport;
  ro->want_outcome = cfg.want_outcome;
  ro->failed_only = cfg.failed_only;
  ro->want_close = cfg.want_close;
  ro->want_accept = cfg.want_accept;
  ro->track_accepts = cfg.track_accepts;
  ro->shorter_than_ns = cfg.shorter_than_ns;
  ro->wakeup_interval_ns = cfg.wakeup_interval_ns;
  ro->filter_netns = cfg.netns;
  ro->filter_cgroup_on = filters.cgroup >= 0;
  ro->filter_cgroupmap_on = filters.cgroupmap >= 0;
  ro->filter_mntnsmap_on = filters.mntnsmap >= 0;
  ro->filter_excluded_on = cfg.exclude_cgroups;
  ro->want_dns = cfg.want_dns;
  ro->want_parent = cfg.want_parent;
  ro->want_exec = cfg.want_exec;
  ro->metrics_on = cfg.metrics;
  ro->metrics_by_cgroup = cfg.metrics_by_cgroup;
  for (auto [map, fd] : {std::pair{a.skel->maps.cgroupmap, filters.cgroupmap},
                         std::pair{a.skel->maps.mntnsmap, filters.mntnsmap}}) {
    if (fd >= 0 && bpf_map__reuse_fd(map, fd) != 0) {
      a.err = errno;
      a.failure = "failed to use the filter map: " + errno_text(errno);
      return a;
    }
  }
  // Rings are allocated when created and mapped twice into the tracer: an unused one gets a page.
  const std::uint32_t page = static_cast<std::uint32_t>(getpagesize());
  const std::uint32_t ring_bytes = sends_records(cfg) ? cfg.ringbuf_bytes : page;
  ro->wakeup_bytes = ring_bytes / 2;
  bpf_map__set_max_entries(a.skel->maps.events, ring_bytes);
  const std::uint32_t enrich_bytes =
      cfg.enrich_ringbuf_bytes ? cfg.enrich_ringbuf_bytes : cfg.ringbuf_bytes;
  ro->enrich_wakeup_bytes = enrich_bytes / 2;
  const bool enrichment = cfg.want_dns || cfg.want_exec;
  bpf_map__set_max_entries(a.skel->maps.enrich_events, enrichment ? enrich_bytes : page);
  ro->enrich_interval_ns = cfg.enrich_rate ? 1'000'000'000ull / cfg.enrich_rate : 0;
  ro->enrich_burst = std::max<std::uint32_t>(cfg.enrich_burst, 1);
  // Tables are allocated when created (hash tables preallocate every element, LRU tables
  // their lists too): the ones a mode does not use get one element, which also keeps the
  // start fast (the 65536-entry connection table alone takes tens of ms to create).
  auto size_map = [](bpf_map* map, bool used) {
    if (!used) bpf_map__set_max_entries(map, 1);
  };
  size_map(a.skel->maps.counts, cfg.count_mode);
  size_map(a.skel->maps.count_stats, cfg.count_handshakes || cfg.count_closes);
  size_map(a.skel->maps.metric_counts, cfg.metrics);
  size_map(a.skel->maps.excluded_cgroups, cfg.exclude_cgroups);
  size_map(a.skel->maps.seen_cgroups, cfg.metrics_by_cgroup);
  size_map(a.skel->maps.metric_spill, cfg.metrics);
  // Connections followed past SYN_SENT, and accepted ones followed to their close.
  size_map(a.skel->maps.conns, follows_handshakes(cfg) || follows_closes(cfg));
  size_map(a.skel->maps.connect_calls, follows_outcomes(cfg));
  for (bpf_map* m : {a.skel->maps.dns_socks, a.skel->maps.dns_connects, a.skel->maps.dns_reads})
    size_map(m, cfg.want_dns);
  size_map(a.skel->maps.enrich_budget, cfg.want_dns || cfg.want_exec);
  if (follows_closes(cfg)) {
    // Connections live until their close: an LRU so a missed close cannot pin an entry.
    bpf_map__set_type(a.skel->maps.conns, BPF_MAP_TYPE_LRU_HASH);
    bpf_map__set_map_flags(a.skel->maps.conns, BPF_F_NO_COMMON_LRU);
  }

  bool syscalls_missing = false;
  for (const Hook& h : kHooks) {
    bool load = runs_in(h.via, mode) && h.needed(cfg);
    if (load && h.via == Via::Syscall && !have_tracefs) {
      syscalls_missing |= !(h.flags & kOptional);
      load = false;
    }
    bpf_program__set_autoload(a.skel->progs.*h.prog, load);
  }
  if (syscalls_missing) {
    a.err = ENOENT;
    a.failure = "tracefs is not available (needed for syscalls:sys_* tracepoints)";
    return a;
  }
  if (mode == AttachMode::Tracepoint && !have_tracefs) {
    a.err = ENOENT;
    a.failure = "tracefs is not available";
    return a;
  }

  if (int err = tc_bpf__load(a.skel); err) {
    a.err = -err;
    a.failure = "failed to load BPF programs: " + errno_text(err);
    return a;
  }
  if (filters.cgroup >= 0) {
    const __u32 zero = 0;
    if (bpf_map_update_elem(bpf_map__fd(a.skel->maps.cgroup_filter), &zero, &filters.cgroup,
                            BPF_ANY) != 0) {
      a.err = errno;
      a.failure = "failed to set the cgroup filter: " + errno_text(errno);
      return a;
    }
  }

  for (const Hook& h : kHooks) {
    bpf_program* prog = a.skel->progs.*h.prog;
    if (!bpf_program__autoload(prog)) continue;
    bpf_link** link = link_slot(a.skel, prog);
    if (link) *link = bpf_program__attach(prog);
    if (!link || !*link) {
      a.err = errno;
      a.failure = fmt::format("failed to attach {}: {}", h.tracepoint, errno_text(errno));
      return a;
    }
  }
  return a;
}

}  // namespace

// Debian and Ubuntu kernels add levels above 2, at which perf_event_open()
// (classic tracepoints, also the syscalls:* ones every mode uses) needs
// CAP_SYS_ADMIN.
static int perf_event_paranoid() {
  int level = 2;
  if (std::FILE* f = std::fopen("/proc/sys/kernel/perf_event_paranoid", "re")) {
    char buf[32] = {};
    char* end = nullptr;
    if (std::fgets(buf, sizeof buf, f)) {
      const long v = std::strtol(buf, &end, 10);
      if (end != buf) level = static_cast<int>(v);
    }
    std::fclose(f);
  }
  return level;
}

std::unique_ptr<Tracer> Tracer::open(const TracerConfig& cfg, SampleHandler handler, LogFn log,
                                     Error& err) {
  g_log = log;
  libbpf_set_print(libbpf_print);
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };

  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    err = {"kernel BTF not found at /sys/kernel/btf/vmlinux",
           "tcpconnect needs a kernel built with CONFIG_DEBUG_INFO_BTF=y", 1};
    return nullptr;
  }

  // Unmounted again (if this call mounted it) once everything is attached or has failed.
  TracefsMount tracefs;
  std::string tracefs_problem = tracefs.ensure();
  bool have_tracefs = tracefs_problem.empty();
  if (tracefs.mounted()) say("mounted tracefs at /sys/kernel/tracing");
  if (!have_tracefs) say("tracefs unavailable (" + tracefs_problem + ")");

  FilterFds filters;
  if (!open_filters(cfg, filters, err)) {
    // The message holds the user's path: escape line breaks so that it stays one line.
    std::string line;
    for (char c : err.message) line += c == '\n' ? "\\n" : c == '\r' ? "\\r" : std::string(1, c);
    err.message = std::move(line);
    return nullptr;
  }
  // Syscall tracepoints exist only in tracefs: no attach mechanism does without it, so say
  // why it is missing rather than that every mechanism failed.
  if (!have_tracefs && (cfg.want_outcome || cfg.want_close || kAccept(cfg) || cfg.want_dns)) {
    err = {"tracefs is not available (" + tracefs_problem +
               "); -d, --accept, --outcome, --failed, --lifetime and --metrics need its "
               "syscalls:sys_* tracepoints",
           "", 1};
    return nullptr;
  }

  std::unique_ptr<Tracer> t(new Tracer());
  t->handler_ = std::move(handler);
  std::vector<Attempt> failed;
  std::vector<std::string> tried;
  for (const auto& c : kCandidates) {
    if (cfg.attach != AttachMode::Auto && cfg.attach != c.mode) continue;
    Attempt a = try_mode(cfg, filters, c.mode, have_tracefs);
    tried.emplace_back(attach_mode_name(c.mode));
    if (a.failure.empty()) {
      t->skel_ = a.skel;
      t->want_close_ = cfg.want_close;
      t->method_ = attach_mode_name(c.mode);
      say(fmt::format("attach: {} for sock:inet_sock_set_state and tcp:tcp_retransmit_skb ({})",
                      t->method_, c.why));
      break;
    }
    tc_bpf__destroy(a.skel);
    a.skel = nullptr;
    say(fmt::format("attach: {} unavailable: {}", attach_mode_name(c.mode), a.failure));
    failed.push_back(std::move(a));
  }
  if (!t->skel_) {
    // The best mechanism's failure is the one to show; the others are
    // usually consequences of the same cause and are under --verbose.
    err.message = failed.empty() ? "no attach mechanism to try" : failed.front().failure;
    if (tried.size() > 1)
      err.message += fmt::format(" (tried {}; -v shows each)", fmt::join(tried, ", "));
    bool refused = false, perf_refused = false;
    for (const auto& a : failed) {
      refused |= a.err == EPERM || a.err == EACCES;
      perf_refused |= a.err == EACCES;  // perf_event_open() refused by the paranoid level
    }
    if (refused) {
      err.hint = geteuid() != 0 ? "run tcpconnect as root (it needs CAP_BPF and CAP_PERFMON)"
                                : "BPF was refused; check kernel.unprivileged_bpf_disabled, "
                                  "lockdown and LSM policy";
      // Debian's kernels default to level 3, where CAP_PERFMON is not enough.
      if (const int level = perf_event_paranoid(); perf_refused && geteuid() != 0 && level > 2)
        err.hint = fmt::format(
            "kernel.perf_event_paranoid is {}: tracepoints need CAP_SYS_ADMIN at that level; "
            "set it to 2 or run tcpconnect as root",
            level);
    }
    err.exit_code = 1;
    return nullptr;
  }
  if (cfg.want_dns) {
    say("attach: tracepoints for syscalls:sys_enter_connect/sendto and sys_{enter,exit}_"
        "read/recvfrom/recvmsg (DNS answers from port 53 of the server a socket queried)");
  }
  if (follows_handshakes(cfg)) {
    if (have_tracefs) {
      say("attach: tracepoint for syscalls:sys_exit_connect (source port at connect() return)");
    } else {
      say("warning: syscalls:sys_exit_connect not attached; blocking connects are shown when "
          "their handshake ends");
    }
  }

  t->hold_connections_ = cfg.want_dns || cfg.want_exec;
  t->rb_ = ring_buffer__new(bpf_map__fd(t->skel_->maps.events), &Tracer::on_connection_sample,
                            t.get(), nullptr);
  if (!t->rb_) {
    err = {"failed to create ring buffer reader: " + errno_text(errno), "", 1};
    return nullptr;
  }
  // One reader for both rings: the handler tells records apart by their type tag.
  if (t->hold_connections_ && ring_buffer__add(t->rb_, bpf_map__fd(t->skel_->maps.enrich_events),
                                               &Tracer::on_sample, t.get()) != 0) {
    err = {"failed to create ring buffer reader: " + errno_text(errno), "", 1};
    return nullptr;
  }
  return t;
}

Tracer::~Tracer() {
  ring_buffer__free(rb_);
  tc_bpf__destroy(skel_);
}

int Tracer::on_sample(void* ctx, void* data, std::size_t size) {
  auto* self = static_cast<Tracer*>(ctx);
  self->handler_(std::span<const std::uint8_t>(static_cast<const std::uint8_t*>(data), size));
  return 0;
}

int Tracer::on_connection_sample(void* ctx, void* data, std::size_t size) {
  auto* self = static_cast<Tracer*>(ctx);
  if (!self->hold_connections_) return on_sample(ctx, data, size);
  const auto n = static_cast<std::uint32_t>(size);
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  auto& held = self->held_;
  held.insert(held.end(), reinterpret_cast<const std::uint8_t*>(&n),
              reinterpret_cast<const std::uint8_t*>(&n) + sizeof(n));
  held.insert(held.end(), bytes, bytes + size);
  return 0;
}

void Tracer::release_held() {
  std::size_t off = 0;
  while (off + sizeof(std::uint32_t) <= held_.size()) {
    std::uint32_t n = 0;
    std::memcpy(&n, held_.data() + off, sizeof(n));
    off += sizeof(n);
    handler_(std::span<const std::uint8_t>(held_.data() + off, n));
    off += n;
  }
  held_.clear();
}

// The enrichment a connection needs (the DNS answer it was resolved from, its process's exec)
// was submitted before it, but to the other ring, which the reader may reach later: connection
// records are therefore held until the enrichment ring has been read once more after them.
// ring_buffer__consume() reads the rings in the order they were added, the connection ring
// first, so the enrichment read by its end includes everything submitted before any connection
// record read in this call.
int Tracer::poll(int timeout_ms) {
  int n = ring_buffer__poll(rb_, timeout_ms);
  if (n < 0) {
    release_held();
    return n;
  }
  // Records submitted without a wake-up are only seen by consuming.
  int m = ring_buffer__consume(rb_);
  release_held();
  if (m < 0) return m;
  return n + m;
}

std::uint64_t Tracer::lost() const {
  return __atomic_load_n(&skel_->bss->lost_events, __ATOMIC_RELAXED);
}

std::uint64_t Tracer::lost_execs() const {
  return __atomic_load_n(&skel_->bss->lost_execs, __ATOMIC_RELAXED);
}

std::uint64_t Tracer::lost_dns() const {
  return __atomic_load_n(&skel_->bss->lost_dns, __ATOMIC_RELAXED);
}

std::uint64_t Tracer::dns_rejected() const {
  return __atomic_load_n(&skel_->bss->dns_rejected, __ATOMIC_RELAXED);
}

std::uint64_t Tracer::skipped() const {
  std::uint64_t missed = 0;
  // Classic tracepoints skip every program of the tracepoint while any BPF program runs on the
  // CPU; kernels from 6.7 count those runs per program too (older ones count nothing there).
  for (const Hook& h : kHooks) {
    if (!(h.flags & kCountsSkips)) continue;
    const int fd = bpf_program__fd(skel_->progs.*h.prog);
    if (fd < 0) continue;
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) missed += info.recursion_misses;
  }
  const std::uint64_t recovered = __atomic_load_n(&skel_->bss->state_recovered, __ATOMIC_RELAXED);
  return missed > recovered ? missed - recovered : 0;
}

std::uint64_t Tracer::sweep(std::uint64_t max_age_ns) {
  if (want_close_) return 0;  // an LRU there; entries live as long as connections
  timespec now_ts{};
  clock_gettime(CLOCK_MONOTONIC, &now_ts);
  const std::uint64_t now =
      static_cast<std::uint64_t>(now_ts.tv_sec) * 1'000'000'000ull + now_ts.tv_nsec;
  int fd = bpf_map__fd(skel_->maps.conns);
  std::vector<std::uint64_t> stale;
  for_each_key<std::uint64_t>(fd, [&](std::uint64_t k) {
    tc_conn c{};
    if (bpf_map_lookup_elem(fd, &k, &c) == 0 && c.ts_ns + max_age_ns < now) stale.push_back(k);
  });
  std::uint64_t removed = 0;
  for (auto k : stale) removed += bpf_map_delete_elem(fd, &k) == 0;
  return removed;
}

bool Tracer::exclude_cgroup(std::uint64_t cgroup_id) {
  const std::uint8_t one = 1;
  return bpf_map_update_elem(bpf_map__fd(skel_->maps.excluded_cgroups), &cgroup_id, &one,
                             BPF_ANY) == 0;
}

int Tracer::try_map_call() const {
  std::uint64_t key = 0;
  if (bpf_map_get_next_key(bpf_map__fd(skel_->maps.conns), nullptr, &key) == 0) return 0;
  return -errno;
}

std::uint64_t Tracer::evicted() const {
  const auto* bss = skel_->bss;
  std::uint64_t inserted = __atomic_load_n(&bss->conns_inserted, __ATOMIC_RELAXED);
  std::uint64_t deleted = __atomic_load_n(&bss->conns_deleted, __ATOMIC_RELAXED);
  std::uint64_t live = 0;
  for_each_key<std::uint64_t>(bpf_map__fd(skel_->maps.conns), [&](std::uint64_t) { live++; });
  return inserted > deleted + live ? inserted - deleted - live : 0;
}

KernelMetrics Tracer::read_metrics() const {
  KernelMetrics m;
  for (auto [map, spill] :
       {std::pair{skel_->maps.metric_counts, false}, std::pair{skel_->maps.metric_spill, true}}) {
    const int fd = bpf_map__fd(map);
    const bool spilled = spill;
    for_each_key<tc_metric_key>(fd, [&](const tc_metric_key& key) {
      std::uint64_t n = 0;
      MetricCounter c;
      if (bpf_map_lookup_elem(fd, &key, &n) == 0 &&
          decode_metric(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(&key),
                                                      sizeof(key)),
                        n, spilled, c))
        m.counters.push_back(std::move(c));
    });
  }
  const int ncpus = std::max(libbpf_num_possible_cpus(), 1);
  std::vector<tc_metric_hists> per_cpu(static_cast<std::size_t>(ncpus));
  std::uint32_t zero = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.metric_hists), &zero, per_cpu.data()) == 0)
    for (const auto& cpu : per_cpu) add_metric_hists(cpu, m);
  return m;
}

std::vector<CountRow> Tracer::read_counts(std::int64_t mono_to_wall_ns) const {
  std::vector<CountRow> rows;
  int fd = bpf_map__fd(skel_->maps.counts);
  tc_count_value value{};
  // --top, --hist: the second table, by the same keys.
  const bool with_stats = bpf_map__max_entries(skel_->maps.count_stats) > 1;
  const int stats_fd = bpf_map__fd(skel_->maps.count_stats);
  tc_count_stats stats{};
  for_each_key<tc_count_key>(fd, [&](const tc_count_key& next) {
    if (bpf_map_lookup_elem(fd, &next, &value) == 0) {
      auto row = decode_count(
          std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(&next), sizeof(next)),
          std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(&value),
                                        sizeof(value)),
          mono_to_wall_ns);
      if (row && with_stats && bpf_map_lookup_elem(stats_fd, &next, &stats) == 0)
        add_count_stats(stats, *row);
      if (row) rows.push_back(std::move(*row));
    }
  });
  return rows;
}

}  // namespace tcpconnect
