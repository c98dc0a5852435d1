// Prometheus registry: the kernel's counters, labelled, and its histograms, under one mutex.
//
// update() runs on the poll thread a few times a second with the kernel's running totals; it
// admits label values by traffic and adds each counter's growth since the last update to the
// series it maps to now. render() formats the whole exposition under the same lock (a few
// kilobytes, bounded by the admission). Durations are summed as integer nanoseconds and
// bucketed by the kernel against integer bounds, so "le" is exactly inclusive and _sum does not
// drift.
#include "sink/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstddef>
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

// The "le" label of a bound in ns: the shortest text of the seconds, as Prometheus clients
// print it ("0.0001", "0.00025", "2.5", "3600").
std::string le_label(std::uint64_t ns) { return fmt::format("{}", static_cast<double>(ns) / 1e9); }

using Out = std::back_insert_iterator<std::string>;

void help_type(Out out, std::string_view name, std::string_view help, std::string_view type) {
  fmt::format_to(out, "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// `labels` is either empty or ends with a comma, so "le" can follow.
template <std::size_t N>
void render_histogram(Out out, std::string_view name, std::string_view labels,
                      const HistogramCounts<N>& h, const std::array<std::uint64_t, N>& bounds) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < N; ++i) {
    cumulative += h.buckets[i];
    fmt::format_to(out, "{}_bucket{{{}le=\"{}\"}} {}\n", name, labels, le_label(bounds[i]),
                   cumulative);
  }
  cumulative += h.buckets[N];
  fmt::format_to(out, "{}_bucket{{{}le=\"+Inf\"}} {}\n", name, labels, cumulative);
  std::string_view inner = labels.empty() ? labels : labels.substr(0, labels.size() - 1);
  std::string braces = inner.empty() ? "" : fmt::format("{{{}}}", inner);
  // Shortest round-trip text of the seconds, e.g. 0.0015 for 1'500'000 ns.
  fmt::format_to(out, "{}_sum{} {}\n", name, braces, static_cast<double>(h.sum_ns) / 1e9);
  fmt::format_to(out, "{}_count{} {}\n", name, braces, cumulative);
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
std::string other_escaped(std::string label) {
  if (label == kOtherComm) label = "\\x6fther";
  return label;
}

std::string comm_label(std::string_view comm) { return other_escaped(escape_text(comm)); }

std::string port_label(int port) { return port == kOtherPort ? "other" : std::to_string(port); }

// Label values admitted by traffic (see MetricsConfig): the busiest values get their own
// series, within a bound; admitted values stay admitted.
template <typename V>
class Admission {
 public:
  // `traffic`: counts since start per value. Admits the top_n busiest not yet admitted, while
  // fewer than 2 * top_n are.
  void update(const std::map<V, std::uint64_t>& traffic, std::size_t top_n) {
    std::vector<std::pair<std::uint64_t, V>> ranked;
    ranked.reserve(traffic.size());
    for (const auto& [v, n] : traffic) ranked.emplace_back(n, v);
    const std::size_t top = std::min(top_n, ranked.size());
    // Busiest first; ties in value order, so the choice is deterministic.
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(top),
                      ranked.end(), [](const auto& a, const auto& b) {
                        return a.first != b.first ? a.first > b.first : a.second < b.second;
                      });
    for (std::size_t i = 0; i < top && admitted_.size() < 2 * top_n; ++i)
      admitted_.insert(ranked[i].second);
  }
  bool has(const V& v) const { return admitted_.contains(v); }

 private:
  std::set<V> admitted_;
};

// A kernel counter's identity: which series it feeds is decided at each update.
using CounterKey =
    std::tuple<MetricKind, Outcome, int, std::uint16_t, std::string, std::uint64_t, bool>;

}  // namespace

struct Metrics::Impl {
  explicit Impl(MetricsConfig c) : cfg(c) {}

  MetricsConfig cfg;
  mutable std::mutex mu;
  Admission<std::string> comms;       // raw task names
  Admission<std::string> containers;  // container labels (--metrics-container)
  Admission<std::uint16_t> dports, lports;
  // What each kernel counter had at the last update: only its growth is added to a series.
  std::map<CounterKey, std::uint64_t> seen;
  // (outcome, dport, comm, container) and (lport, comm, container) labels (container "" without
  // --metrics-container); ordered, so the output is sorted.
  std::map<std::tuple<std::string, int, std::string, std::string>, std::uint64_t> connects;
  std::map<std::tuple<int, std::string, std::string>, std::uint64_t> accepts;
  KernelMetrics hists;  // the histograms, as the kernel last reported them
  std::uint64_t lost = 0;
  std::uint64_t lost_execs = 0;
  std::uint64_t lost_dns = 0;
  std::uint64_t last_read_ns = 0;  // 0: the kernel side was not read yet
  bool have_info = false;
  std::string version, attach;
};

Metrics::Metrics(MetricsConfig cfg) : impl_(std::make_unique<Impl>(cfg)) {}
Metrics::~Metrics() = default;

namespace {
// `,container="..."` with --metrics-container, else nothing.
std::string container_label(bool by_container, const std::string& container) {
  if (!by_container) return {};
  return ",container=\"" + escape_label(container) + "\"";
}
}  // namespace

void Metrics::update(const KernelMetrics& kernel) {
  std::lock_guard<std::mutex> g(impl_->mu);
  Impl& m = *impl_;
  // Traffic per label value since start: connects and accepts together for task names.
  std::map<std::string, std::uint64_t> by_comm, by_container;
  std::map<std::uint16_t, std::uint64_t> by_dport, by_lport;
  for (const auto& c : kernel.counters) {
    if (c.spilled) continue;
    by_comm[c.comm] += c.n;
    by_container[c.container] += c.n;
    (c.kind == MetricKind::Connect ? by_dport : by_lport)[c.port] += c.n;
  }
  m.comms.update(by_comm, m.cfg.top_n);
  if (m.cfg.by_container) m.containers.update(by_container, m.cfg.top_n);
  m.dports.update(by_dport, m.cfg.top_n);
  m.lports.update(by_lport, m.cfg.top_n);

  for (const auto& c : kernel.counters) {
    std::uint64_t& seen =
        m.seen[CounterKey{c.kind, c.outcome, c.err, c.port, c.comm, c.cgroup_id, c.spilled}];
    if (c.n <= seen) continue;
    const std::uint64_t growth = c.n - seen;
    seen = c.n;
    const bool own_comm = !c.spilled && m.comms.has(c.comm);
    const std::string comm = own_comm ? comm_label(c.comm) : std::string(kOtherComm);
    std::string container;
    if (m.cfg.by_container) {
      const bool own = !c.spilled && m.containers.has(c.container);
      container = own ? other_escaped(escape_text(c.container)) : std::string(kOtherComm);
    }
    if (c.kind == MetricKind::Connect) {
      const int port = !c.spilled && m.dports.has(c.port) ? c.port : kOtherPort;
      m.connects[std::make_tuple(outcome_label(c.outcome, c.err), port, comm, container)] += growth;
    } else {
      const int port = !c.spilled && m.lports.has(c.port) ? c.port : kOtherPort;
      m.accepts[std::make_tuple(port, comm, container)] += growth;
    }
  }
  m.hists.latency = kernel.latency;
  m.hists.duration = kernel.duration;
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
            "TCP connection attempts, counted when their handshake ended (or connect() failed "
            "before a SYN), by outcome, destination port and task name.",
            "counter");
  for (const auto& [key, n] : m.connects) {
    const auto& [outcome, dport, comm, container] = key;
    fmt::format_to(
        out, "tcpconnect_connects_total{{outcome=\"{}\",dport=\"{}\",comm=\"{}\"{}}} {}\n", outcome,
        port_label(dport), escape_label(comm), container_label(m.cfg.by_container, container), n);
  }

  help_type(out, "tcpconnect_accepts_total",
            "TCP connections accepted (accept() returned them), by local port and task name.",
            "counter");
  for (const auto& [key, n] : m.accepts) {
    const auto& [lport, comm, container] = key;
    fmt::format_to(out, "tcpconnect_accepts_total{{lport=\"{}\",comm=\"{}\"{}}} {}\n",
                   port_label(lport), escape_label(comm),
                   container_label(m.cfg.by_container, container), n);
  }

  // Every outcome always exists, so rate() works before the first attempt of each.
  help_type(out, "tcpconnect_handshake_latency_seconds",
            "Time from a connection attempt's SYN to the end of its handshake, by outcome: "
            "established for handshakes that completed; refused, timed_out, reset, error and "
            "aborted for attempts that failed, the time until they failed. Attempts that failed "
            "before sending a SYN have no latency.",
            "histogram");
  for (const auto& spelling : kOutcomeSpellings) {
    if (spelling.outcome == Outcome::None) continue;
    render_histogram(out, "tcpconnect_handshake_latency_seconds",
                     fmt::format("outcome=\"{}\",", spelling.label),
                     m.hists.latency[static_cast<std::size_t>(spelling.outcome)], kLatencyBoundsNs);
  }

  // Both directions always exist, so rate() works before the first close.
  help_type(out, "tcpconnect_connection_duration_seconds",
            "Lifetime of connections that were established, from the SYN (outbound) or the "
            "accept (inbound) to the close.",
            "histogram");
  render_histogram(out, "tcpconnect_connection_duration_seconds", "dir=\"in\",",
                   m.hists.duration[TC_DIR_IN], kDurationBoundsNs);
  render_histogram(out, "tcpconnect_connection_duration_seconds", "dir=\"out\",",
                   m.hists.duration[TC_DIR_OUT], kDurationBoundsNs);

  help_type(out, "tcpconnect_lost_events_total",
            "Connections not counted: records dropped because the ring buffer was full, or "
            "counters the kernel had no room for.",
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
