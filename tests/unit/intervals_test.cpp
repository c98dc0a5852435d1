#include "model/intervals.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>
#include <vector>

namespace tcpconnect {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

// What the kernel accumulates for one key: histogram + sums.
struct Recorded {
  std::array<std::uint32_t, kIntervalBuckets> hist{};
  std::uint64_t sum_us = 0;
  std::uint64_t sum_sq_us = 0;

  void add(std::uint64_t us, std::uint32_t times = 1) {
    hist[interval_bucket(us)] += times;
    sum_us += us * times;
    sum_sq_us += us * us * times;
  }
  IntervalStats stats() const { return interval_stats(hist, sum_us, sum_sq_us); }
};

// Powers of two, their neighbours, and a dense geometric sweep up to 2^64-1.
std::vector<std::uint64_t> sample_values() {
  std::vector<std::uint64_t> xs;
  for (std::uint64_t x = 0; x < 5000; ++x) xs.push_back(x);
  for (int k = 0; k < 64; ++k) {
    const std::uint64_t p = 1ULL << k;
    for (std::uint64_t d : {p - 1, p, p + 1, p + p / 2, p + p / 8, p + p / 8 - 1}) xs.push_back(d);
    if (k > 0) xs.push_back(p - 2);
  }
  for (double x = 5000; x < 1.8e19; x *= 1.0137) xs.push_back(static_cast<std::uint64_t>(x));
  xs.push_back(kMax);
  xs.push_back(kMax - 1);
  return xs;
}

// Compile-time spot checks: the function is constexpr so the kernel mirror
// can be pinned to exact values.
static_assert(interval_bucket(0) == 0);
static_assert(interval_bucket(7) == 7);
static_assert(interval_bucket(15) == 15);
static_assert(interval_bucket(16) == 16);
static_assert(interval_bucket(17) == 16);
static_assert(interval_bucket(18) == 17);
static_assert(interval_bucket(1'000'000) == 143);
static_assert(interval_bucket(kMax) == kIntervalLastBucket);

TEST(IntervalsBucket, EveryValueLiesWithinItsBucketBounds) {
  for (const std::uint64_t x : sample_values()) {
    const unsigned b = interval_bucket(x);
    ASSERT_LT(b, kIntervalBuckets) << x;
    EXPECT_LE(bucket_lower(b), x) << x;
    if (b < kIntervalLastBucket) {
      EXPECT_LT(x, bucket_upper(b)) << x;
    }
  }
}

TEST(IntervalsBucket, MonotonicInValue) {
  const auto xs = sample_values();  // ascending except the explicit extras
  unsigned prev = 0;
  std::uint64_t prev_x = 0;
  for (std::uint64_t x = 0; x < 1'000'000; ++x) {
    const unsigned b = interval_bucket(x);
    ASSERT_GE(b, prev) << x;
    ASSERT_LE(b, prev + 1) << x;  // no bucket is skipped
    prev = b;
  }
  for (const std::uint64_t x : xs) {
    if (x < prev_x) continue;
    EXPECT_GE(interval_bucket(x), interval_bucket(prev_x)) << prev_x << " -> " << x;
    prev_x = x;
  }
}

TEST(IntervalsBucket, BoundsAreContiguousAndRoundTrip) {
  EXPECT_EQ(bucket_lower(0), 0u);
  for (unsigned b = 0; b < kIntervalBuckets; ++b) {
    EXPECT_EQ(interval_bucket(bucket_lower(b)), b) << b;
    if (b < kIntervalLastBucket) {
      EXPECT_LT(bucket_lower(b), bucket_upper(b)) << b;
      EXPECT_EQ(bucket_upper(b), bucket_lower(b + 1)) << b;
      EXPECT_EQ(interval_bucket(bucket_upper(b) - 1), b) << b;
    }
  }
  EXPECT_EQ(bucket_upper(kIntervalLastBucket), kMax);
  // The last bucket starts at 15 * 2^30 us (~4.5 h): everything longer saturates.
  EXPECT_EQ(bucket_lower(kIntervalLastBucket), 15ULL << 30);
  EXPECT_EQ(interval_bucket(1ULL << 34), kIntervalLastBucket);
}

TEST(IntervalsBucket, RelativeWidthAtMostOneEighth) {
  for (unsigned b = 8; b < kIntervalLastBucket; ++b) {
    const double width = static_cast<double>(bucket_upper(b) - bucket_lower(b));
    EXPECT_LE(width / static_cast<double>(bucket_lower(b)), 1.0 / 8) << b;
  }
}

TEST(IntervalsStats, Periodic200ms) {
  Recorded r;
  const std::int64_t jitter[] = {0,    150, -200, 90,  -40, 310, -120, 60,
                                 -300, 20,  250,  -80, 10,  -10, 5};
  for (const std::int64_t j : jitter) r.add(static_cast<std::uint64_t>(200'000 + j));
  const IntervalStats st = r.stats();
  EXPECT_EQ(st.intervals, 15u);
  EXPECT_NEAR(st.median_s, 0.200, 0.200 * 0.02);
  EXPECT_GE(st.regular_fraction, 0.9);
  EXPECT_TRUE(st.periodic);
}

TEST(IntervalsStats, Periodic200msWithoutSums) {
  // The histogram alone: within one bucket width of the truth, still periodic.
  Recorded r;
  for (int i = 0; i < 15; ++i) r.add(200'000 + (i % 3) * 100);
  const IntervalStats st = interval_stats(r.hist, 0, 0);
  const unsigned b = interval_bucket(200'000);
  const double width_s = static_cast<double>(bucket_upper(b) - bucket_lower(b)) / 1e6;
  EXPECT_NEAR(st.median_s, 0.200, width_s);
  EXPECT_GE(st.regular_fraction, 0.9);
  EXPECT_TRUE(st.periodic);
}

TEST(IntervalsStats, Periodic2sHealthCheck) {
  // 57 connects every 2 s: 56 gaps with a few ms of scheduling noise.
  Recorded r;
  for (int i = 0; i < 56; ++i) r.add(2'000'000 + (i % 7) * 1'500 - 4'000);
  const IntervalStats st = r.stats();
  EXPECT_EQ(st.intervals, 56u);
  EXPECT_NEAR(st.median_s, 2.0, 2.0 * 0.02);
  EXPECT_DOUBLE_EQ(st.regular_fraction, 1.0);
  EXPECT_TRUE(st.periodic);
  EXPECT_EQ(format_interval(st.median_s), "2.00s");
}

TEST(IntervalsStats, PeriodicAcrossABucketBoundary) {
  // 1.048576 s = 2^20 us is a bucket (and octave) edge: gaps straddle it.
  Recorded r;
  for (int i = 0; i < 20; ++i) r.add(i % 2 ? (1ULL << 20) + 3'000 : (1ULL << 20) - 3'000);
  const IntervalStats st = r.stats();
  EXPECT_NEAR(st.median_s, 1.048576, 1.048576 / 8);
  EXPECT_DOUBLE_EQ(st.regular_fraction, 1.0);
  EXPECT_TRUE(st.periodic);
}

TEST(IntervalsStats, PeriodicWithOneMissedBeat) {
  Recorded r;
  r.add(500'000, 19);
  r.add(1'000'000);  // one skipped run
  const IntervalStats st = r.stats();
  EXPECT_NEAR(st.median_s, 0.5, 0.5 * 0.01);  // the sum still pins it
  EXPECT_NEAR(st.regular_fraction, 19.0 / 20, 1e-9);
  EXPECT_TRUE(st.periodic);
  EXPECT_EQ(format_interval(st.median_s), "0.50s");
  // Histogram alone: within a bucket width.
  EXPECT_NEAR(interval_stats(r.hist, 0, 0).median_s, 0.5, 0.5 / 8);
}

TEST(IntervalsStats, Periodic2sAfterAnOddFirstGap) {
  Recorded r;
  r.add(300'000);  // first run right after startup
  for (int i = 0; i < 56; ++i) r.add(2'000'000 + (i % 5) * 1'000 - 2'000);
  const IntervalStats st = r.stats();
  EXPECT_EQ(format_interval(st.median_s), "2.00s");
  EXPECT_TRUE(st.periodic);
}

TEST(IntervalsStats, BurstIsNotPeriodic) {
  Recorded r;
  for (int i = 0; i < 100; ++i) r.add(48 + i % 5);  // ~50 us apart
  r.add(10'000'000, 3);                             // three 10 s pauses
  const IntervalStats st = r.stats();
  EXPECT_EQ(st.intervals, 103u);
  EXPECT_NEAR(st.median_s, 50e-6, 50e-6 / 8);
  EXPECT_FALSE(st.periodic);  // regular bursts are still bursts (< 10 ms)
}

TEST(IntervalsStats, IrregularIsNotPeriodic) {
  // Slow enough to be a schedule, but the gaps are all over the place.
  Recorded r;
  for (int round = 0; round < 5; ++round) {
    for (std::uint64_t us : {20'000, 50'000, 100'000, 200'000, 500'000, 1'000'000, 2'000'000}) {
      r.add(us);
    }
  }
  const IntervalStats st = r.stats();
  EXPECT_NEAR(st.median_s, 0.2, 0.2 / 8);
  EXPECT_LT(st.regular_fraction, 0.5);
  EXPECT_FALSE(st.periodic);
}

TEST(IntervalsStats, EmptyHistogram) {
  const std::array<std::uint32_t, kIntervalBuckets> hist{};
  const IntervalStats st = interval_stats(hist, 0, 0);
  EXPECT_EQ(st.intervals, 0u);
  EXPECT_EQ(st.median_s, 0.0);
  EXPECT_EQ(st.regular_fraction, 0.0);
  EXPECT_FALSE(st.periodic);
  EXPECT_EQ(format_interval(st.median_s), "-");
  EXPECT_EQ(interval_stats({}, 0, 0).median_s, 0.0);  // empty span
}

TEST(IntervalsStats, SingleInterval) {
  Recorded r;
  r.add(750'000);
  const IntervalStats st = r.stats();
  EXPECT_EQ(st.intervals, 1u);
  EXPECT_DOUBLE_EQ(st.median_s, 0.75);  // exact from the sum
  EXPECT_DOUBLE_EQ(st.regular_fraction, 1.0);
  EXPECT_FALSE(st.periodic);  // one gap is no schedule

  // Without the sum: the bucket midpoint.
  const unsigned b = interval_bucket(750'000);
  const double mid = static_cast<double>(bucket_lower(b) + bucket_upper(b)) / 2 / 1e6;
  EXPECT_DOUBLE_EQ(interval_stats(r.hist, 0, 0).median_s, mid);
}

TEST(IntervalsStats, TwoIntervalsAreNotEnough) {
  Recorded r;
  r.add(1'000'000, 2);
  EXPECT_FALSE(r.stats().periodic);
  r.add(1'000'000);
  EXPECT_TRUE(r.stats().periodic);
}

TEST(IntervalsStats, SaturatedIntervals) {
  Recorded r;
  r.add(10ULL * 3600 * 1'000'000, 3);  // 10 h: beyond the last bucket
  EXPECT_EQ(r.hist[kIntervalLastBucket], 3u);
  EXPECT_NEAR(r.stats().median_s, 36'000, 1e-6);  // the sum still knows
  // Without the sum only the last bucket's floor (~4.5 h) is known.
  EXPECT_NEAR(interval_stats(r.hist, 0, 0).median_s, (15ULL << 30) / 1e6, 1e-6);
}

TEST(IntervalsFormat, GoldenStrings) {
  EXPECT_EQ(format_interval(0), "-");
  EXPECT_EQ(format_interval(-1), "-");
  EXPECT_EQ(format_interval(std::numeric_limits<double>::quiet_NaN()), "-");
  EXPECT_EQ(format_interval(std::numeric_limits<double>::infinity()), "-");
  EXPECT_EQ(format_interval(0.2e-6), "<1us");
  EXPECT_EQ(format_interval(1e-6), "1us");
  EXPECT_EQ(format_interval(50e-6), "50us");
  EXPECT_EQ(format_interval(850e-6), "850us");
  EXPECT_EQ(format_interval(999e-6), "999us");
  EXPECT_EQ(format_interval(999.7e-6), "1.0ms");  // not "1000us"
  EXPECT_EQ(format_interval(1e-3), "1.0ms");
  EXPECT_EQ(format_interval(12.34e-3), "12.3ms");
  EXPECT_EQ(format_interval(99.9e-3), "99.9ms");
  EXPECT_EQ(format_interval(99.97e-3), "0.10s");  // not "100.0ms"
  EXPECT_EQ(format_interval(0.2), "0.20s");
  EXPECT_EQ(format_interval(2.0), "2.00s");
  EXPECT_EQ(format_interval(2.004), "2.00s");
  EXPECT_EQ(format_interval(59.99), "59.99s");
  EXPECT_EQ(format_interval(59.999), "60.0s");  // not "60.00s"
  EXPECT_EQ(format_interval(95.0), "95.0s");
  EXPECT_EQ(format_interval(99.96), "1.7m");  // not "100.0s"
  EXPECT_EQ(format_interval(750), "12.5m");
  EXPECT_EQ(format_interval(3500), "58.3m");
  EXPECT_EQ(format_interval(3599.9), "1.0h");  // not "60.0m"
  EXPECT_EQ(format_interval(3.2 * 3600), "3.2h");
  EXPECT_EQ(format_interval(150.0 * 3600), "150h");
}

TEST(IntervalsFormat, AtMostSixCharacters) {
  for (double s = 1e-7; s < 1e6; s *= 1.001) {
    EXPECT_LE(format_interval(s).size(), 6u) << s;
  }
}

}  // namespace
}  // namespace tcpconnect
