// Output sinks: the last stage of the pipeline (kernel -> decode -> sinks).
// Sinks write to injected streams so tests can compare strings.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "model/event.h"
#include "model/kernel_metrics.h"
#include "sink/config.h"

namespace tcpconnect {

struct StartInfo {
  std::string version;        // e.g. "0.1.0"
  std::string attach_method;  // e.g. "tp_btf"
  std::uint64_t ts_ns = 0;    // wall clock at start, ns since epoch
};

struct FinishInfo {
  std::uint64_t lost_total = 0;
  std::uint64_t events = 0;  // connect events seen (not counted in -c mode)
  // Tracepoint runs the kernel skipped (recursion protection) that no backup
  // took over: events may be missing, though most such runs carry nothing.
  std::uint64_t skipped = 0;
  // Enrichment records lost (command lines, DNS answers): shown as "?" or no
  // QUERY, not missing connections.
  std::uint64_t lost_execs = 0;
  std::uint64_t lost_dns = 0;
  // Enrichment records received from the kernel, so that made = received +
  // lost can be checked for them too.
  std::uint64_t execs = 0;
  std::uint64_t dns_answers = 0;
  // Connections whose entry left the kernel's table before their outcome or
  // close was seen: those records are missing.
  std::uint64_t untracked = 0;
};

// Records that only enrich connection records, lost apart from them.
enum class Enrichment { Exec, Dns };

class Sink {
 public:
  virtual ~Sink() = default;
  // Called once every program is attached: header line / start record.
  virtual void start(const StartInfo& info) = 0;
  virtual void connect(const ConnectEvent& ev) = 0;
  // `delta` events were lost since the last call; `total` since start.
  virtual void lost(std::uint64_t delta, std::uint64_t total) = 0;
  // The same for command lines (Exec) or DNS answers (Dns): no connection
  // is missing, only what would have named its process or destination.
  virtual void lost_enrichment(Enrichment kind, std::uint64_t delta, std::uint64_t total) = 0;
  // The kernel side was read (wall clock, ns since the epoch): after every poll.
  virtual void polled(std::uint64_t /*wall_ns*/) {}
  // --metrics, a few times a second and at exit: what the kernel counted so far.
  virtual void kernel_metrics(const KernelMetrics& /*metrics*/) {}
  // -c mode, at exit: rows from the kernel's count map (unsorted).
  virtual void counts(std::vector<CountRow> rows) = 0;
  // -c --interval, every interval and at exit instead of counts(): the table of the interval
  // ending at `wall_ns` (ns since the epoch), sorted and cut (model/count_intervals.h).
  virtual void count_interval(const std::vector<CountRow>& rows, std::uint64_t wall_ns) = 0;
  virtual void finish(const FinishInfo& info) = 0;
};

// Text (bcc-compatible columns) or JSON lines, as the plan chose.
// `out` receives events; `err` receives warnings (text mode lost notices).
std::unique_ptr<Sink> make_sink(const OutputConfig& cfg, std::ostream& out, std::ostream& err);

}  // namespace tcpconnect
