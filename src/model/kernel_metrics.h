// What the kernel counted for --metrics (bpf/metrics.bpf.c), decoded: counters by key and the
// histograms, each a running total since the tracer started. The metrics output turns a
// snapshot into Prometheus series (sink/metrics.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/outcome.h"
#include "tcpconnect/abi.h"

namespace tcpconnect {

enum class MetricKind { Connect, Accept };

// One counter of the kernel's table: connects of one outcome to one remote port by one task
// name, or accepts on one local port by one task name. A spilled counter is one the table had
// no room for: counted by kind, outcome and errno alone, with no port or name.
struct MetricCounter {
  MetricKind kind = MetricKind::Connect;
  Outcome outcome = Outcome::None;
  int err = 0;
  std::uint16_t port = 0;
  std::string comm;  // the raw task name (escaped by each output)
  bool spilled = false;
  std::uint64_t n = 0;
  std::uint64_t cgroup_id = 0;  // --metrics-container: the owner's cgroup, else 0
  // --metrics-container: the `container` label, set by the enrichment stage (the runtime's
  // name, else the short ID, else "-" for no container); "" without the option.
  std::string container;

  bool operator==(const MetricCounter&) const = default;
};

// Bucket bounds in ns, shared with the kernel: a value falls in the first bucket whose bound is
// >= it, or in the last (+Inf) one.
inline constexpr std::array<std::uint64_t, TC_LATENCY_BUCKETS> kLatencyBoundsNs{
    TC_LATENCY_BOUNDS_NS};
inline constexpr std::array<std::uint64_t, TC_DURATION_BUCKETS> kDurationBoundsNs{
    TC_DURATION_BOUNDS_NS};

template <std::size_t N>
struct HistogramCounts {
  std::array<std::uint64_t, N + 1> buckets{};  // per bucket, not cumulative; last: +Inf
  unsigned __int128 sum_ns = 0;                // summed over CPUs: 64 bits per CPU, more in total

  std::uint64_t count() const {
    std::uint64_t n = 0;
    for (auto b : buckets) n += b;
    return n;
  }
  // Adds one value, as the kernel does (for tests and user-space callers).
  void add(std::uint64_t ns, std::span<const std::uint64_t, N> bounds) {
    std::size_t b = 0;
    while (b < N && ns > bounds[b]) ++b;
    ++buckets[b];
    sum_ns += ns;
  }
  bool operator==(const HistogramCounts&) const = default;
};

using LatencyHistogram = HistogramCounts<TC_LATENCY_BUCKETS>;
using DurationHistogram = HistogramCounts<TC_DURATION_BUCKETS>;

struct KernelMetrics {
  std::vector<MetricCounter> counters;
  std::array<LatencyHistogram, TC_OUTCOMES> latency{};  // by Outcome (enum value)
  std::array<DurationHistogram, 2> duration{};          // [0] outbound, [1] inbound

  bool operator==(const KernelMetrics&) const = default;
};

// A counter from a raw tc_metric_key and its value; false when the key is malformed.
bool decode_metric(std::span<const std::uint8_t> key, std::uint64_t n, bool spilled,
                   MetricCounter& out);

// Adds one CPU's tc_metric_hists to `into`.
void add_metric_hists(const tc_metric_hists& cpu, KernelMetrics& into);

}  // namespace tcpconnect
