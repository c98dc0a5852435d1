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

#include "model/event.h"
#include "model/kernel_metrics.h"
#include "probe/config.h"

struct tc_bpf;       // bpftool skeleton
struct ring_buffer;  // libbpf

namespace tcpconnect {

struct Error {
  std::string message;  // "failed to <verb> <object>: <reason>"
  std::string hint;     // what the user can do, may be empty
  int exit_code = 1;
};

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
  // --metrics: what the kernel counted so far (running totals).
  KernelMetrics read_metrics() const;
  const std::string& attach_method() const { return method_; }
  // One bpf() call on a map we hold: 0 or -errno (EPERM where the kernel
  // wants CAP_BPF for every bpf() command; see app/privileges.h).
  int try_map_call() const;
  // From now on, drops in the kernel the connections of tasks in this cgroup (with
  // TracerConfig::exclude_cgroups). False when the table refused it.
  bool exclude_cgroup(std::uint64_t cgroup_id);
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
