// Connect-interval statistics for `-c --by-process`: the kernel keeps, per
// (process, destination), a log-scale histogram of the gaps between
// consecutive connects; user space turns it into "median gap" and "how
// regular", so a fixed schedule ("every 2.00 s") stands out from bursts.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>
#include <span>
#include <string>

#include "tcpconnect/abi.h"

namespace tcpconnect {

// Histogram size shared with the kernel (TC_IVL_BUCKETS; the kernel side has
// its own interval_bucket() in C, which must compute the same buckets). 256
// buckets reach 2^34 us (~4.8 h); anything longer saturates into the last one.
inline constexpr unsigned kIntervalBuckets = 256;
inline constexpr unsigned kIntervalLastBucket = kIntervalBuckets - 1;
#ifdef TC_IVL_BUCKETS
static_assert(TC_IVL_BUCKETS == kIntervalBuckets, "ABI: interval histogram size");
#endif

// Bucket of an interval in microseconds. "HDR-like": values below 8 are
// exact; above, each power of two [2^m, 2^(m+1)) is split into 8 equal
// sub-buckets selected by the 3 bits below the MSB, so a bucket is at most
// 1/8 (12.5%) of its lower bound wide. Cheap enough for the kernel: one MSB
// search, a shift and a mask, no loops.
constexpr unsigned interval_bucket(std::uint64_t us) {
  if (us < 8) return static_cast<unsigned>(us);
  const unsigned m = static_cast<unsigned>(std::bit_width(us)) - 1;  // MSB index, >= 3
  const std::uint64_t b = (m - 2) * 8ULL + ((us >> (m - 3)) & 7);
  return b < kIntervalBuckets ? static_cast<unsigned>(b) : kIntervalLastBucket;
}

// Smallest interval (us) that lands in bucket `b` (b < kIntervalBuckets).
constexpr std::uint64_t bucket_lower(unsigned b) {
  if (b < 8) return b;
  const unsigned m = b / 8 + 2;      // MSB index of the bucket's values
  return (8ULL + b % 8) << (m - 3);  // 1.sss (binary) x 2^m
}

// Exclusive upper bound of bucket `b`. The last bucket also holds every
// saturated (longer) interval, so it is open-ended: UINT64_MAX.
constexpr std::uint64_t bucket_upper(unsigned b) {
  if (b >= kIntervalLastBucket) return std::numeric_limits<std::uint64_t>::max();
  return bucket_lower(b + 1);  // buckets are contiguous
}

struct IntervalStats {
  std::uint64_t intervals = 0;  // number of gaps (connects - 1 per key)
  double median_s = 0;          // typical gap; 0 when there are no intervals
  double regular_fraction = 0;  // share of gaps within ~±10% of the median
  bool periodic = false;        // looks like a schedule, not a burst
};

// Statistics of one interval histogram (`hist[b]` = gaps in bucket b; at
// most kIntervalBuckets entries, extra entries count as saturated).
// `sum_us` (sum of all gaps) sharpens the median when nearly all gaps share
// one bucket, the common case for a periodic caller ("2.00s" rather than the
// bucket's "2.03s"); pass 0 if not tracked. `sum_sq_us` is accepted for
// symmetry with a kernel that tracks it and is currently unused (may be 0).
IntervalStats interval_stats(std::span<const std::uint32_t> hist, std::uint64_t sum_us,
                             std::uint64_t sum_sq_us);

// Compact text for the EVERY column, at most 6 characters:
//   "-" (0, negative or not finite), "<1us", "850us", "12.3ms",
//   "0.20s" .. "59.99s", "95.0s" (below 100 s), "12.5m" (below 60 min), "3.2h".
// Unit boundaries follow the rounded text, so 999.7 us is "1.0ms", never
// "1000us".
std::string format_interval(double seconds);

}  // namespace tcpconnect
