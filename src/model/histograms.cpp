#include "model/histograms.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <map>
#include <tuple>

#include "model/intervals.h"

namespace tcpconnect {

namespace {

std::size_t log2_bucket(std::uint64_t v) {
  return v < 2 ? 0 : static_cast<std::size_t>(std::bit_width(v)) - 1;
}

void add_all(Log2Hist& into, const Log2Hist& from) {
  for (std::size_t b = 0; b < from.buckets.size(); ++b) into.add(b, from.buckets[b]);
}

Log2Hist log2_of_log2(std::span<const std::uint64_t> buckets) {
  Log2Hist h;
  for (std::size_t b = 0; b < buckets.size(); ++b) h.add(b, buckets[b]);
  return h;
}

// bcc's bar: `width` stars for the biggest count, a '+' past it (never here: max is the max).
std::string stars(std::uint64_t n, std::uint64_t max, std::size_t width) {
  const std::size_t k = max ? static_cast<std::size_t>(std::min(n, max) * width / max) : 0;
  return std::string(k, '*') + std::string(width - k, ' ');
}

}  // namespace

std::uint64_t Log2Hist::total() const {
  std::uint64_t n = 0;
  for (auto b : buckets) n += b;
  return n;
}

void Log2Hist::add(std::size_t bucket, std::uint64_t n) {
  if (n == 0) return;
  if (buckets.size() <= bucket) buckets.resize(bucket + 1);
  buckets[bucket] += n;
}

Log2Hist log2_of_intervals(std::span<const std::uint64_t> interval_scale) {
  Log2Hist h;
  const std::size_t n = std::min<std::size_t>(interval_scale.size(), kIntervalBuckets);
  // A sub-bucket lies within one power of two: its lower bound's.
  for (std::size_t b = 0; b < n; ++b)
    h.add(log2_bucket(bucket_lower(static_cast<unsigned>(b))), interval_scale[b]);
  return h;
}

std::vector<HistGroup> group_histograms(const std::vector<CountRow>& rows, HistBy by) {
  std::map<std::tuple<std::uint16_t, std::uint32_t, std::string>, HistGroup> groups;
  for (const CountRow& r : rows) {
    if (r.latency.empty() && r.lifetime.empty()) continue;
    const bool port = by == HistBy::Port;
    HistGroup& g = groups[{port ? r.dport : std::uint16_t{0}, port ? 0 : r.pid,
                           port ? std::string() : r.comm}];
    if (port) {
      g.port = r.dport;
    } else {
      g.pid = r.pid;
      g.comm = r.comm;
    }
    add_all(g.latency_us, log2_of_intervals(r.latency));
    add_all(g.lifetime_ms, log2_of_log2(r.lifetime));
  }
  std::vector<HistGroup> out;
  for (auto& [key, g] : groups)
    if (g.latency_us.total() || g.lifetime_ms.total()) out.push_back(std::move(g));
  return out;
}

double latency_quantile_us(std::span<const std::uint64_t> interval_scale, double q) {
  std::uint64_t total = 0;
  for (auto n : interval_scale) total += n;
  if (total == 0) return -1;
  const auto rank = static_cast<std::uint64_t>(std::max(1.0, q * static_cast<double>(total)));
  std::uint64_t seen = 0;
  const std::size_t n = std::min<std::size_t>(interval_scale.size(), kIntervalBuckets);
  for (std::size_t b = 0; b < n; ++b) {
    seen += interval_scale[b];
    if (seen < rank) continue;
    const auto lo = static_cast<double>(bucket_lower(static_cast<unsigned>(b)));
    if (b < 8) return lo;
    if (b == kIntervalLastBucket) return lo;
    return (lo + static_cast<double>(bucket_upper(static_cast<unsigned>(b)))) / 2;
  }
  return static_cast<double>(bucket_lower(kIntervalLastBucket));
}

std::string format_log2_hist(const Log2Hist& h, std::string_view unit) {
  std::size_t last = 0;
  std::uint64_t max = 0;
  for (std::size_t b = 0; b < h.buckets.size(); ++b) {
    if (h.buckets[b]) last = b;
    max = std::max(max, h.buckets[b]);
  }
  if (max == 0) return {};
  // libbpf-tools' widths: wider value columns and a shorter bar past 2^32.
  const bool wide = last > 32;
  const int width = wide ? 20 : 10;
  const std::size_t bar = wide ? 20 : 40;
  std::string out = fmt::format("{:>{}}{:<{}} : count    distribution\n", "", wide ? 15 : 5, unit,
                                wide ? 29 : 19);
  for (std::size_t b = 0; b <= last; ++b) {
    const std::uint64_t low = b == 0 ? 0 : std::uint64_t{1} << b;
    const std::uint64_t high = (std::uint64_t{1} << (b + 1)) - 1;
    out += fmt::format("{:>{}} -> {:<{}} : {:<8} |{}|\n", low, width, high, width, h.buckets[b],
                       stars(h.buckets[b], max, bar));
  }
  return out;
}

}  // namespace tcpconnect
