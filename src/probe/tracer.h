// The kernel side seen from user space: load the BPF object, pick an attach
// mechanism by probing, poll the ring buffer, read counters. RAII over libbpf:
// destroying a Tracer detaches and unloads everything.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cli/options.h"
#include "model/event.h"

struct tc_bpf;       // bpftool skeleton
struct ring_buffer;  // libbpf

namespace tcpconnect {

struct Error {
  std::string message;  // "failed to <verb> <object>: <reason>"
  std::string hint;     // what the user can do, may be empty
  int exit_code = 1;
};

struct TracerConfig {
  std::uint32_t pid = 0;  // 0 = any
  bool uid_on = false;
  std::uint32_t uid = 0;
  std::uint16_t af = 0;  // TC_AF_INET / TC_AF_INET6, 0 = both
  std::vector<std::uint16_t> ports;
  bool count_mode = false;
  bool count_by_process = false;
  AttachMode attach = AttachMode::Auto;
  std::uint32_t ringbuf_bytes = 4u << 20;  // the connection ring (--ringbuf-size)
  // The enrichment ring (DNS answers, command lines); 0: as big as the connection ring, so that
  // --ringbuf-size sizes both.
  std::uint32_t enrich_ringbuf_bytes = 0;
  // Enrichment records per user (uid) the kernel sends: a burst, then a steady rate per second;
  // the rest is counted lost (lost_execs, lost_dns). rate 0: no budget. Root is never budgeted.
  std::uint32_t enrich_burst = 64;
  std::uint32_t enrich_rate = 64;
  bool want_connect = true;  // records to send: see bpf/tcpconnect.bpf.h
  bool want_outcome = false;
  bool failed_only = false;
  bool want_close = false;
  bool want_accept = false;
  std::uint64_t shorter_than_ns = 0;
  std::uint64_t wakeup_interval_ns = 50'000'000;
  // Containers: a network namespace inode (0 = any) and paths given by the
  // user, opened and checked by Tracer::open.
  std::uint32_t netns = 0;
  std::string cgroup;     // cgroup v2 directory
  std::string cgroupmap;  // pinned hash maps, 8-byte keys (bcc)
  std::string mntnsmap;
  bool want_dns = false;     // DNS answer records (-d)
  bool want_parent = false;  // owners' parent PID and name in records
  bool want_exec = false;    // command-line records at exec
};

TracerConfig tracer_config_from(const Options& opts);

using SampleHandler = std::function<void(std::span<const std::uint8_t>)>;
using LogFn = std::function<void(const std::string&)>;

class Tracer {
 public:
  // Loads and attaches. `log` receives --verbose diagnostics (may be empty).
  static std::unique_ptr<Tracer> open(const TracerConfig& cfg, SampleHandler handler, LogFn log,
                                      Error& err);
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // Waits up to timeout_ms for a wake-up, then consumes everything queued.
  // Returns the number of records handled, or -errno (-EINTR on a signal).
  int poll(int timeout_ms);
  // Records the kernel could not deliver (ring full, count table full).
  std::uint64_t lost() const;
  // Enrichment records the kernel could not deliver: command lines at exec
  // and DNS answers. Kept apart from lost(): no connection went missing.
  std::uint64_t lost_execs() const;
  std::uint64_t lost_dns() const;
  // Reads on sockets watched for DNS whose data did not come from port 53 of a server the
  // socket queried: not taken as answers (forged, or unprovable).
  std::uint64_t dns_rejected() const;
  // Runs of our programs the kernel skipped (recursion protection) that the
  // backup state program did not take over. Most carry no event we need, so
  // they are reported apart from lost().
  std::uint64_t skipped() const;
  // -c mode: the kernel's count table; times converted with mono_to_wall_ns.
  std::vector<CountRow> read_counts(std::int64_t mono_to_wall_ns) const;
  const std::string& attach_method() const { return method_; }
  // One bpf() call on a map we hold: 0 or -errno (EPERM where the kernel
  // wants CAP_BPF for every bpf() command; see app/privileges.h).
  int try_map_call() const;
  // Connections dropped from the kernel's LRU table before we saw them end.
  std::uint64_t evicted() const;
  // Drops handshake entries older than max_age_ns (a transition the kernel
  // skipped); they count as evicted. Returns how many.
  std::uint64_t sweep(std::uint64_t max_age_ns);

 private:
  Tracer() = default;
  struct ::tc_bpf* skel_ = nullptr;
  struct ::ring_buffer* rb_ = nullptr;
  SampleHandler handler_;
  std::string method_;
  bool want_close_ = false;
  // Connection records read in this poll, handed on once the enrichment ring has been read
  // after them (see poll()). Each is its size, then its bytes.
  bool hold_connections_ = false;
  std::vector<std::uint8_t> held_;
  static int on_sample(void* ctx, void* data, std::size_t size);
  static int on_connection_sample(void* ctx, void* data, std::size_t size);
  void release_held();
};

}  // namespace tcpconnect
