// Prometheus registry: a handful of fixed families aggregated under one mutex.
//
// observe() runs on the poll thread for every record, so it only bumps
// integers in small ordered maps; render() formats the whole exposition
// under the same lock (a few kilobytes, bounded by the top_n admission).
// Durations are summed as integer nanoseconds and bucketed against integer
// bounds, so "le" is exactly inclusive and _sum does not drift.
#include "sink/metrics.h"

#include <fmt/format.h>

#include <array>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <tuple>
#include <vector>

#include "sink/escape.h"

namespace tcpconnect {
namespace {

// A port label: admitted ports sort numerically, "other" last.
constexpr int kOtherPort = 65536;

struct Bucket {
  std::uint64_t le_ns;
  const char* le;  // the label text, as Prometheus clients print it
};

constexpr std::uint64_t kMs = 1'000'000;
constexpr std::uint64_t kSec = 1'000'000'000;

constexpr std::array<Bucket, 16> kLatencyBuckets{{
    {100'000, "0.0001"},
    {250'000, "0.00025"},
    {500'000, "0.0005"},
    {1 * kMs, "0.001"},
    {2'500'000, "0.0025"},
    {5 * kMs, "0.005"},
    {10 * kMs, "0.01"},
    {25 * kMs, "0.025"},
    {50 * kMs, "0.05"},
    {100 * kMs, "0.1"},
    {250 * kMs, "0.25"},
    {500 * kMs, "0.5"},
    {1 * kSec, "1"},
    {2'500 * kMs, "2.5"},
    {5 * kSec, "5"},
    {10 * kSec, "10"},
}};

constexpr std::array<Bucket, 12> kDurationBuckets{{
    {1 * kMs, "0.001"},
    {10 * kMs, "0.01"},
    {100 * kMs, "0.1"},
    {500 * kMs, "0.5"},
    {1 * kSec, "1"},
    {5 * kSec, "5"},
    {10 * kSec, "10"},
    {30 * kSec, "30"},
    {60 * kSec, "60"},
    {300 * kSec, "300"},
    {900 * kSec, "900"},
    {3600 * kSec, "3600"},
}};

template <std::size_t N>
struct Histogram {
  const std::array<Bucket, N>* bounds;
  std::array<std::uint64_t, N + 1> counts{};  // per bucket, not cumulative; last is +Inf
  unsigned __int128 sum_ns = 0;               // 64 bits would wrap after weeks of durations
  std::uint64_t count = 0;

  void observe(std::uint64_t ns) {
    std::size_t i = 0;
    while (i < N && ns > (*bounds)[i].le_ns) ++i;
    ++counts[i];
    sum_ns += ns;
    ++count;
  }
};

using Out = std::back_insert_iterator<std::string>;

void help_type(Out out, std::string_view name, std::string_view help, std::string_view type) {
  fmt::format_to(out, "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// `labels` is either empty or ends with a comma, so "le" can follow.
template <std::size_t N>
void render_histogram(Out out, std::string_view name, std::string_view labels,
                      const Histogram<N>& h) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < N; ++i) {
    cumulative += h.counts[i];
    fmt::format_to(out, "{}_bucket{{{}le=\"{}\"}} {}\n", name, labels, (*h.bounds)[i].le,
                   cumulative);
  }
  fmt::format_to(out, "{}_bucket{{{}le=\"+Inf\"}} {}\n", name, labels, h.count);
  std::string_view inner = labels.empty() ? labels : labels.substr(0, labels.size() - 1);
  std::string braces = inner.empty() ? "" : fmt::format("{{{}}}", inner);
  // Shortest round-trip text of the seconds, e.g. 0.0015 for 1'500'000 ns.
  fmt::format_to(out, "{}_sum{} {}\n", name, braces, static_cast<double>(h.sum_ns) / 1e9);
  fmt::format_to(out, "{}_count{} {}\n", name, braces, h.count);
}

// The exposition format escapes backslash, double quote and newline in label values.
std::string escape_label(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The value of the overflow series of the `comm` label.
constexpr std::string_view kOtherComm = "other";

// The `comm` label of a task name: its escaped form (sink/escape.h), like
// the text output's COMM column but never cut. The one value the overflow
// series owns is "other", so a task really named "other" writes its first
// byte escaped, "\x6fther": still the name when unescaped, and no other name
// escapes to it (a literal backslash becomes "\\").
std::string comm_label(std::string_view comm) {
  std::string label = escape_text(comm);
  if (label == kOtherComm) label = "\\x6fther";
  return label;
}

std::string port_label(int port) { return port == kOtherPort ? "other" : std::to_string(port); }

}  // namespace

struct Metrics::Impl {
  explicit Impl(MetricsConfig c) : cfg(c) {}

  // First-come admission: a value keeps its own series once admitted.
  int admit_port(std::set<int>& admitted, int port) const {
    if (admitted.contains(port)) return port;
    if (admitted.size() >= cfg.top_n) return kOtherPort;
    admitted.insert(port);
    return port;
  }
  std::string admit_comm(std::string comm) {
    if (comms.contains(comm)) return comm;
    if (comms.size() >= cfg.top_n) return std::string(kOtherComm);
    comms.insert(comm);
    return comm;
  }

  MetricsConfig cfg;
  mutable std::mutex mu;
  std::set<std::string> comms;  // comm_label() values
  std::set<int> dports;
  std::set<int> lports;
  // (outcome, dport, comm) and (lport, comm); ordered, so the output is sorted.
  std::map<std::tuple<std::string, int, std::string>, std::uint64_t> connects;
  std::map<std::pair<int, std::string>, std::uint64_t> accepts;
  Histogram<kLatencyBuckets.size()> latency{&kLatencyBuckets};
  Histogram<kDurationBuckets.size()> duration_in{&kDurationBuckets};
  Histogram<kDurationBuckets.size()> duration_out{&kDurationBuckets};
  std::uint64_t lost = 0;
  std::uint64_t lost_execs = 0;
  std::uint64_t lost_dns = 0;
  std::uint64_t last_read_ns = 0;  // 0: the kernel side was not read yet
  bool have_info = false;
  std::string version, attach;
};

Metrics::Metrics(MetricsConfig cfg) : impl_(std::make_unique<Impl>(cfg)) {}
Metrics::~Metrics() = default;

void Metrics::observe(const ConnectEvent& ev) {
  if (ev.kind == EventKind::Connect) return;
  // Formatted before taking the lock: errno_name() and escaping allocate.
  std::string outcome, comm;
  if (ev.kind == EventKind::Outcome) outcome = outcome_label(ev.outcome, ev.err);
  if (ev.kind != EventKind::Close) comm = comm_label(ev.comm);

  std::lock_guard<std::mutex> g(impl_->mu);
  Impl& m = *impl_;
  switch (ev.kind) {
    case EventKind::Outcome: {
      int dport = m.admit_port(m.dports, ev.dport);
      ++m.connects[{std::move(outcome), dport, m.admit_comm(std::move(comm))}];
      if (ev.latency_ns > 0) m.latency.observe(ev.latency_ns);
      break;
    }
    case EventKind::Accept: {
      int lport = m.admit_port(m.lports, ev.sport);
      ++m.accepts[{lport, m.admit_comm(std::move(comm))}];
      break;
    }
    case EventKind::Close:
      // Only connections that were up have a lifetime worth a histogram.
      if (ev.outcome == Outcome::Established || ev.outcome == Outcome::Reset)
        (ev.inbound ? m.duration_in : m.duration_out).observe(ev.duration_ns);
      break;
    case EventKind::Connect:
      break;
  }
}

void Metrics::set_lost(std::uint64_t total) {
  std::lock_guard<std::mutex> g(impl_->mu);
  impl_->lost = total;
}

void Metrics::set_lost_enrichment(std::uint64_t execs, std::uint64_t dns) {
  std::lock_guard<std::mutex> g(impl_->mu);
  impl_->lost_execs = execs;
  impl_->lost_dns = dns;
}

void Metrics::set_last_read(std::uint64_t wall_ns) {
  std::lock_guard<std::mutex> g(impl_->mu);
  impl_->last_read_ns = wall_ns;
}

void Metrics::set_info(const std::string& version, const std::string& attach) {
  std::lock_guard<std::mutex> g(impl_->mu);
  impl_->have_info = true;
  impl_->version = version;
  impl_->attach = attach;
}

std::string Metrics::render() const {
  std::string s;
  s.reserve(4096);
  Out out(s);
  std::lock_guard<std::mutex> g(impl_->mu);
  const Impl& m = *impl_;

  help_type(out, "tcpconnect_connects_total",
            "TCP connection attempts by outcome, destination port and task name.", "counter");
  for (const auto& [key, n] : m.connects) {
    const auto& [outcome, dport, comm] = key;
    fmt::format_to(out, "tcpconnect_connects_total{{outcome=\"{}\",dport=\"{}\",comm=\"{}\"}} {}\n",
                   outcome, port_label(dport), escape_label(comm), n);
  }

  help_type(out, "tcpconnect_accepts_total",
            "TCP connections accepted, by local port and task name.", "counter");
  for (const auto& [key, n] : m.accepts) {
    fmt::format_to(out, "tcpconnect_accepts_total{{lport=\"{}\",comm=\"{}\"}} {}\n",
                   port_label(key.first), escape_label(key.second), n);
  }

  help_type(out, "tcpconnect_handshake_latency_seconds",
            "Time from SYN to the outcome of a connection attempt.", "histogram");
  render_histogram(out, "tcpconnect_handshake_latency_seconds", "", m.latency);

  // Both directions always exist, so rate() works before the first close.
  help_type(out, "tcpconnect_connection_duration_seconds",
            "Lifetime of established connections, from SYN (or accept) to close.", "histogram");
  render_histogram(out, "tcpconnect_connection_duration_seconds", "dir=\"in\",", m.duration_in);
  render_histogram(out, "tcpconnect_connection_duration_seconds", "dir=\"out\",", m.duration_out);

  help_type(out, "tcpconnect_lost_events_total", "Events dropped because the ring buffer was full.",
            "counter");
  fmt::format_to(out, "tcpconnect_lost_events_total {}\n", m.lost);

  // Both kinds always exist, so an alert on either works before the first loss.
  help_type(out, "tcpconnect_lost_enrichment_total",
            "Command lines (kind exec) and DNS answers (kind dns) the kernel could not deliver; "
            "no connection is missing.",
            "counter");
  fmt::format_to(out, "tcpconnect_lost_enrichment_total{{kind=\"exec\"}} {}\n", m.lost_execs);
  fmt::format_to(out, "tcpconnect_lost_enrichment_total{{kind=\"dns\"}} {}\n", m.lost_dns);

  // No sample before the first read: a made-up 0 would read as "stale since
  // 1970" rather than "not started"; absent() tells the two apart. Printed
  // from integers, so the text carries every nanosecond the caller gave.
  help_type(out, "tcpconnect_last_read_timestamp_seconds",
            "When the tracer last read the kernel side, in seconds since the Unix epoch.", "gauge");
  if (m.last_read_ns > 0) {
    fmt::format_to(out, "tcpconnect_last_read_timestamp_seconds {}.{:09}\n",
                   m.last_read_ns / 1'000'000'000, m.last_read_ns % 1'000'000'000);
  }

  help_type(out, "tcpconnect_build_info", "Version and attach method of the running tracer.",
            "gauge");
  if (m.have_info) {
    fmt::format_to(out, "tcpconnect_build_info{{version=\"{}\",attach=\"{}\"}} 1\n",
                   escape_label(m.version), escape_label(m.attach));
  }
  return s;
}

}  // namespace tcpconnect
