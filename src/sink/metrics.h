// Prometheus metrics: the counters and histograms the kernel keeps, labelled and rendered in
// the text exposition format on each scrape.
//
// The poll thread calls update()/set_*(); the HTTP thread calls render().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "model/kernel_metrics.h"

namespace tcpconnect {

struct MetricsConfig {
  // Label cardinality bound, for each of the `comm`, `dport`, `lport` (and `container`) labels. At
  // every update, the top_n busiest values of a label (by connects and accepts counted since start)
  // get their own series if they have none yet, as long as fewer than 2 * top_n values of that
  // label have one; every other value is counted under "other". A series, once exported, stays
  // (it is never removed or reset), and what "other" counted stays there: a value admitted
  // later starts its own series from what it counts after that update. So every counter is
  // monotonic and the series of a family always add up to everything the kernel counted. A
  // task really named "other" is labelled "\\x6fther" (its escaped form, see sink/escape.h),
  // so "other" is only the overflow.
  std::size_t top_n = 20;
  // --metrics-container: connects and accepts also by a `container` label (set on each
  // counter by the enrichment stage), bounded like the others.
  bool by_container = false;
};

class Metrics {
 public:
  explicit Metrics(MetricsConfig cfg = {});
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // What the kernel counted so far (running totals, see model/kernel_metrics.h):
  // tcpconnect_connects_total{outcome,dport,comm}, tcpconnect_accepts_total{lport,comm},
  // tcpconnect_handshake_latency_seconds{outcome} and tcpconnect_connection_duration_
  // seconds{dir}. Counters the kernel had no room for (spilled) are labelled "other".
  void update(const KernelMetrics& kernel);
  // tcpconnect_lost_events_total: the tracer's running total.
  void set_lost(std::uint64_t total);
  // tcpconnect_lost_enrichment_total{kind="exec"|"dns"}: command lines and
  // DNS answers the kernel could not deliver (running totals). Kept out of
  // the family above: no connection is missing when they are lost.
  void set_lost_enrichment(std::uint64_t execs, std::uint64_t dns);
  // tcpconnect_last_read_timestamp_seconds: when the kernel side was last
  // read (wall clock, ns since the Unix epoch); no sample until the first call.
  void set_last_read(std::uint64_t wall_ns);
  // tcpconnect_build_info{version,attach} 1.
  void set_info(const std::string& version, const std::string& attach);

  // The whole exposition (text format 0.0.4), every family with HELP/TYPE.
  std::string render() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tcpconnect
