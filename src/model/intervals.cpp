#include "model/intervals.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace tcpconnect {
namespace {

// Gaps within this relative distance of the median count as "regular".
constexpr double kRegularTolerance = 0.10;
// A schedule needs this share of regular gaps ...
constexpr double kPeriodicMinFraction = 0.8;
// ... at least this many gaps (two are always "regular" with each other) ...
constexpr std::uint64_t kPeriodicMinIntervals = 3;
// ... and a median of at least 10 ms: faster than that is a burst.
constexpr double kPeriodicMinMedianS = 0.010;

// Entries past the last bucket are treated as saturated, like the kernel's
// clamp, rather than dropped.
unsigned bucket_of_index(std::size_t i) {
  return static_cast<unsigned>(std::min<std::size_t>(i, kIntervalLastBucket));
}

// Mean of the gaps in bucket `med` alone, recovered from `sum_us` by taking
// every other bucket out at its midpoint. Returns a negative value when that
// is less certain than interpolating inside `med` (worst case: each other gap
// is off by half its bucket width, vs. half of `med`'s width), when an other
// gap is saturated (unbounded), or when the result contradicts the bucket
// (e.g. sum_us not tracked: 0).
double bucket_mean_us(std::span<const std::uint32_t> hist, std::size_t med, std::uint64_t sum_us) {
  const unsigned mb = bucket_of_index(med);
  const double lower = static_cast<double>(bucket_lower(mb));
  const double upper = static_cast<double>(bucket_upper(mb));
  double others = 0;
  double others_err = 0;
  for (std::size_t i = 0; i < hist.size(); ++i) {
    if (i == med || hist[i] == 0) continue;
    const unsigned b = bucket_of_index(i);
    if (b == kIntervalLastBucket) return -1;
    const double lo = static_cast<double>(bucket_lower(b));
    const double width = static_cast<double>(bucket_upper(b)) - lo;
    others += hist[i] * (lo + width / 2);
    others_err += hist[i] * (width / 2);
  }
  const double n = hist[med];
  const double mean = (static_cast<double>(sum_us) - others) / n;
  if (others_err / n >= (upper - lower) / 2) return -1;
  return mean >= lower && mean < upper ? mean : -1;
}

// Median in microseconds. Walks the cumulative histogram to the bucket that
// holds rank N/2 and interpolates linearly inside it, assuming its gaps are
// spread evenly over [lower, upper): the error stays within one bucket width
// (up to ~6% at the midpoint). For a periodic caller nearly all gaps share
// one bucket, and their mean (from sum_us) is far closer: "2.00s", not
// "2.03s", even with a missed beat or an odd first gap.
double median_us(std::span<const std::uint32_t> hist, std::uint64_t total, std::uint64_t sum_us) {
  const double target = static_cast<double>(total) / 2;
  std::uint64_t before = 0;
  for (std::size_t i = 0; i < hist.size(); ++i) {
    const std::uint64_t n = hist[i];
    if (n == 0) continue;
    if (static_cast<double>(before + n) < target) {
      before += n;
      continue;
    }
    if (const double mean = bucket_mean_us(hist, i, sum_us); mean >= 0) return mean;
    const unsigned b = bucket_of_index(i);
    const double lower = static_cast<double>(bucket_lower(b));
    // The saturated bucket has no upper bound: report its floor.
    if (b == kIntervalLastBucket) return lower;
    const double frac = (target - static_cast<double>(before)) / static_cast<double>(n);
    return lower + frac * (static_cast<double>(bucket_upper(b)) - lower);
  }
  return 0;  // not reached when total > 0
}

}  // namespace

IntervalStats interval_stats(std::span<const std::uint32_t> hist, std::uint64_t sum_us,
                             std::uint64_t /*sum_sq_us*/) {
  IntervalStats st;
  for (const std::uint32_t n : hist) st.intervals += n;
  if (st.intervals == 0) return st;  // all zero: no NaN from 0/0

  const double med = median_us(hist, st.intervals, sum_us);
  st.median_s = med / 1e6;

  // Whole buckets are counted when they overlap [0.9, 1.1] x median: the
  // histogram cannot split a bucket, and a bucket (<= 12.5% wide) straddling
  // the window edge mostly holds near-median gaps anyway.
  const double lo = med * (1 - kRegularTolerance);
  const double hi = med * (1 + kRegularTolerance);
  std::uint64_t regular = 0;
  for (std::size_t i = 0; i < hist.size(); ++i) {
    if (hist[i] == 0) continue;
    const unsigned b = bucket_of_index(i);
    if (static_cast<double>(bucket_lower(b)) <= hi && static_cast<double>(bucket_upper(b)) > lo)
      regular += hist[i];
  }
  st.regular_fraction = static_cast<double>(regular) / static_cast<double>(st.intervals);
  st.periodic = st.intervals >= kPeriodicMinIntervals &&
                st.regular_fraction >= kPeriodicMinFraction && st.median_s >= kPeriodicMinMedianS;
  return st;
}

std::string format_interval(double seconds) {
  if (!std::isfinite(seconds) || seconds <= 0) return "-";
  // Each threshold is where the current unit's rounded text would reach the
  // next unit ("1000us", "100.0ms", "60.00s", ...), so the switch happens on
  // what is shown, not on the raw value.
  const double us = seconds * 1e6;
  if (us < 0.5) return "<1us";  // would print as "0us", which reads as "none"
  if (us < 999.5) return fmt::format("{:.0f}us", us);
  const double ms = seconds * 1e3;
  if (ms < 99.95) return fmt::format("{:.1f}ms", ms);
  if (seconds < 59.995) return fmt::format("{:.2f}s", seconds);  // the schedule range
  if (seconds < 99.95) return fmt::format("{:.1f}s", seconds);
  const double minutes = seconds / 60;
  if (minutes < 59.95) return fmt::format("{:.1f}m", minutes);
  const double hours = seconds / 3600;
  if (hours < 99.95) return fmt::format("{:.1f}h", hours);
  return fmt::format("{:.0f}h", hours);
}

}  // namespace tcpconnect
