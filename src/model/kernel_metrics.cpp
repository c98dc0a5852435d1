#include "model/kernel_metrics.h"

#include <cstring>

namespace tcpconnect {

bool decode_metric(std::span<const std::uint8_t> key, std::uint64_t n, bool spilled,
                   MetricCounter& out) {
  tc_metric_key k{};
  if (key.size() != sizeof(k)) return false;
  std::memcpy(&k, key.data(), sizeof(k));
  if (k.kind != TC_MK_CONNECT && k.kind != TC_MK_ACCEPT) return false;
  if (k.outcome >= TC_OUTCOMES) return false;
  out.kind = k.kind == TC_MK_CONNECT ? MetricKind::Connect : MetricKind::Accept;
  out.outcome = static_cast<Outcome>(k.outcome);
  out.err = static_cast<int>(k.err);
  out.port = k.port;
  out.comm.assign(k.comm, strnlen(k.comm, sizeof(k.comm)));
  out.cgroup_id = k.cgroup_id;
  out.spilled = spilled;
  out.n = n;
  return true;
}

void add_metric_hists(const tc_metric_hists& cpu, KernelMetrics& into) {
  for (std::size_t o = 0; o < into.latency.size(); ++o) {
    for (std::size_t b = 0; b < into.latency[o].buckets.size(); ++b)
      into.latency[o].buckets[b] += cpu.latency[o].buckets[b];
    into.latency[o].sum_ns += cpu.latency[o].sum_ns;
  }
  for (std::size_t d = 0; d < into.duration.size(); ++d) {
    for (std::size_t b = 0; b < into.duration[d].buckets.size(); ++b)
      into.duration[d].buckets[b] += cpu.duration[d].buckets[b];
    into.duration[d].sum_ns += cpu.duration[d].sum_ns;
  }
}

}  // namespace tcpconnect
