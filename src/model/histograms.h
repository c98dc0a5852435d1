// --hist and --top: what the kernel's per-key latency and lifetime buckets say. Handshake
// latencies are kept on the interval scale (model/intervals.h, 8 sub-buckets per power of two),
// lifetimes on a log2 scale; --hist folds them into log2 histograms per destination port or per
// process and draws them as bcc's histogram tools do, --top reads percentiles from them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/event.h"

namespace tcpconnect {

// --hist-by: one histogram per destination port, or per process (PID and COMM).
enum class HistBy { None, Port, Process };

// Bucket 0 holds 0 and 1, bucket k (k >= 1) 2^k to 2^(k+1)-1 (bcc's log2 histograms).
struct Log2Hist {
  std::vector<std::uint64_t> buckets;

  std::uint64_t total() const;
  void add(std::size_t bucket, std::uint64_t n);
};

// The log2 histogram of latencies kept on the interval scale (values in us).
Log2Hist log2_of_intervals(std::span<const std::uint64_t> interval_scale);

// One group of --hist: its port, or its process; handshake latency in us, lifetime in ms.
struct HistGroup {
  std::uint16_t port = 0;  // HistBy::Port
  std::uint32_t pid = 0;   // HistBy::Process
  std::string comm;        // HistBy::Process (raw task name: outputs escape it)
  Log2Hist latency_us;
  Log2Hist lifetime_ms;
};

// The rows' histograms summed by `by`: groups with no latency and no lifetime are left out;
// sorted by port, or by PID then COMM.
std::vector<HistGroup> group_histograms(const std::vector<CountRow>& rows, HistBy by);

// The latency (us) below which a fraction q (0 < q <= 1) of those in `interval_scale` fall: the
// middle of the bucket that holds it (exact below 8 us). Negative when there are none.
double latency_quantile_us(std::span<const std::uint64_t> interval_scale, double q);

// A histogram as bcc's tools draw it: a header naming the unit, then one line per bucket from
// the first to the last non-empty one, "low -> high : count |stars|". Nothing when empty.
std::string format_log2_hist(const Log2Hist& h, std::string_view unit);

}  // namespace tcpconnect
