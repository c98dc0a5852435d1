// Prometheus metrics: a sink that aggregates events into counters and
// histograms, rendered in the text exposition format on each scrape.
//
// The poll thread calls observe()/set_*(); the HTTP thread calls render().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "model/event.h"

namespace tcpconnect {

struct MetricsConfig {
  // Label cardinality bound: each of the `comm`, `dport` and `lport` labels
  // admits its first `top_n` distinct values; later values are counted under
  // "other". Admitted values keep their series for the whole run, so counters
  // stay monotonic. A task really named "other" is labelled "\\x6fther"
  // (its escaped form, see sink/escape.h), so "other" is only the overflow.
  std::size_t top_n = 20;
};

class Metrics {
 public:
  explicit Metrics(MetricsConfig cfg = {});
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Outcome records: tcpconnect_connects_total{outcome,dport,comm} and, when
  // latency_ns > 0, tcpconnect_handshake_latency_seconds. Accept records:
  // tcpconnect_accepts_total{lport,comm}. Close records of connections that
  // were established (outcome established or reset): tcpconnect_connection_
  // duration_seconds{dir}. Connect records are not counted (the outcome
  // record of the same attempt is).
  void observe(const ConnectEvent& ev);
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
