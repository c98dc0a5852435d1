#include "sink/top_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "model/histograms.h"
#include "model/intervals.h"
#include "sink/escape.h"

namespace tcpconnect {

namespace {

double rate(const CountRow& r, double interval_s) {
  return interval_s > 0 ? static_cast<double>(r.count) / interval_s : 0;
}

// Failures in the interval of connects made in it or before (a SYN retried for seconds): at
// most 100%.
double failed_pct(const CountRow& r) {
  if (r.failed >= r.count) return r.failed ? 100 : 0;
  return 100.0 * static_cast<double>(r.failed) / static_cast<double>(r.count);
}

// A byte count in at most 6 characters: 512, 12.3K, 4.0M, 1.2G.
std::string bytes_text(std::uint64_t n) {
  if (n < 1024) return std::to_string(n);
  const char* units = "KMGTP";
  auto v = static_cast<double>(n) / 1024;
  std::size_t u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.1f}{}", v, units[u]);
}

std::string latency_text(const std::vector<std::uint64_t>& hist, double q) {
  const double us = latency_quantile_us(hist, q);
  return us < 0 ? "-" : format_interval(us / 1e6);
}

std::string destination(const CountRow& r) {
  const std::string addr = format_address(r.ip, r.daddr);
  return r.ip == 6 ? fmt::format("[{}]:{}", addr, r.dport) : fmt::format("{}:{}", addr, r.dport);
}

std::string cut(std::string s, std::size_t width) {
  if (width && s.size() > width) s.resize(width);
  return s;
}

}  // namespace

TopSort next_sort(TopSort s, bool bytes) {
  switch (s) {
    case TopSort::Rate:
      return TopSort::Failed;
    case TopSort::Failed:
      return TopSort::Latency;
    case TopSort::Latency:
      return bytes ? TopSort::Bytes : TopSort::Rate;
    case TopSort::Bytes:
      break;
  }
  return TopSort::Rate;
}

const char* sort_name(TopSort s) {
  switch (s) {
    case TopSort::Rate:
      return "CONN/s";
    case TopSort::Failed:
      return "FAIL%";
    case TopSort::Latency:
      return "LAT99";
    case TopSort::Bytes:
      return "TX+RX";
  }
  return "";
}

std::vector<std::string> top_lines(std::vector<CountRow> rows, const TopView& view,
                                   std::size_t width, std::size_t max_rows) {
  auto key = [&view](const CountRow& r) -> double {
    switch (view.sort) {
      case TopSort::Rate:
        return static_cast<double>(r.count);
      case TopSort::Failed:
        return failed_pct(r);
      case TopSort::Latency:
        return latency_quantile_us(r.latency, 0.99);
      case TopSort::Bytes:
        return static_cast<double>(r.tx_bytes + r.rx_bytes);
    }
    return 0;
  };
  // The keys once per row (a latency quantile walks the row's buckets), then the rows in their
  // order. Ties: the busier first, then the lower PID, for a table that does not flicker.
  std::vector<std::pair<double, std::size_t>> order;
  order.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) order.emplace_back(key(rows[i]), i);
  std::stable_sort(order.begin(), order.end(), [&rows](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first > b.first;
    const CountRow& ra = rows[a.second];
    const CountRow& rb = rows[b.second];
    if (ra.count != rb.count) return ra.count > rb.count;
    return ra.pid < rb.pid;
  });
  std::vector<CountRow> sorted;
  sorted.reserve(rows.size());
  for (const auto& [k, i] : order) sorted.push_back(std::move(rows[i]));
  rows = std::move(sorted);

  std::uint64_t connects = 0, failed = 0;
  for (const CountRow& r : rows) {
    connects += r.count;
    failed += r.failed;
  }
  std::vector<std::string> lines;
  lines.push_back(
      cut(fmt::format("tcpconnect --top - {}  every {:.1f}s  {:.1f} connects/s, {} "
                      "failed  {} keys{}{}",
                      format_hms(view.wall_ns), view.interval_s,
                      view.interval_s > 0 ? static_cast<double>(connects) / view.interval_s : 0,
                      failed, rows.size(), view.lost ? fmt::format("  {} lost", view.lost) : "",
                      view.paused ? "  PAUSED" : ""),
          width));
  lines.push_back(cut(fmt::format("q quit  s sort (by {})  p pause", sort_name(view.sort)), width));
  lines.emplace_back();
  std::string header =
      fmt::format("{:>7} {:<16} {:<30} {:>8} {:>6} {:>7} {:>7} {:>7} {:<15}", "PID", "COMM",
                  "DESTINATION", "CONN/s", "FAIL%", "LAT50", "LAT99", "EVERY", "PATTERN");
  if (view.bytes) header += fmt::format(" {:>7} {:>7}", "TX", "RX");
  lines.push_back(cut(std::move(header), width));
  for (std::size_t i = 0; i < rows.size() && (!max_rows || i < max_rows); ++i) {
    const CountRow& r = rows[i];
    const std::string pattern =
        r.intervals >= 2 ? fmt::format("{} ({:.0f}%)", r.periodic ? "periodic" : "irregular",
                                       r.regular_fraction * 100)
                         : "-";
    std::string line =
        fmt::format("{:>7} {:<16} {:<30} {:>8.1f} {:>6.1f} {:>7} {:>7} {:>7} {:<15}", r.pid,
                    escape_text(r.comm, 16), destination(r), rate(r, view.interval_s),
                    failed_pct(r), latency_text(r.latency, 0.5), latency_text(r.latency, 0.99),
                    r.intervals ? format_interval(r.interval_median_s) : "-", pattern);
    if (view.bytes)
      line += fmt::format(" {:>7} {:>7}", bytes_text(r.tx_bytes), bytes_text(r.rx_bytes));
    lines.push_back(cut(std::move(line), width));
  }
  return lines;
}

}  // namespace tcpconnect
