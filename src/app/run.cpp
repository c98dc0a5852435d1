#include "app/run.h"

#include <fmt/format.h>
#include <linux/capability.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "app/privileges.h"
#include "enrich/enricher.h"
#include "model/count_intervals.h"
#include "probe/tracer.h"
#include "sink/metrics.h"
#include "sink/metrics_output.h"
#include "sink/metrics_server.h"
#include "sink/sink.h"
#include "sink/top_sink.h"
#include "tcpconnect/abi.h"
#include "tcpconnect/version.h"

namespace tcpconnect {

namespace {

volatile std::sig_atomic_t g_stop = 0;

std::int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

constexpr int kPollMs = 50;  // bounds display latency at low event rates
constexpr int kHeldPollMs = 5;
constexpr std::int64_t kLostReportNs = 1'000'000'000;
// Longer than any handshake (SYN retries at their maximum back-off).
constexpr std::uint64_t kHandshakeMaxAgeNs = 600ull * 1'000'000'000;
constexpr std::int64_t kSweepEveryNs = 10'000'000'000;
// How often --metrics reads what the kernel counted (a scrape sees it at most this late).
constexpr std::int64_t kMetricsReadNs = 250'000'000;
// With --metrics the loop never waits for stdout (the counters must keep up):
// records beyond this much unwritten output are counted, not written.
constexpr std::size_t kMaxBacklog = 1 << 20;

// Once attached, the session only reads the ring buffer and maps it holds,
// /proc and its own sockets: every capability goes but the ones below.
void drop_privileges(const Plan& plan, const Tracer& tracer, std::ostream& err) {
  std::vector<KeptCapability> keep;
  if (bpf_calls_need_capability([&tracer] { return tracer.try_map_call(); })) {
    keep.push_back({CAP_BPF,
                    "this kernel checks it on every bpf() call, and the connection table and "
                    "count table are read while tracing and at exit"});
  }
  if (plan.enrich.containers || plan.enrich.metric_containers) {
    keep.push_back({CAP_DAC_READ_SEARCH, "cgroup IDs are resolved to paths by file handle"});
  }
  std::string why;
  if (!drop_capabilities(keep, why)) {
    err << "tcpconnect: warning: " << why << '\n';
    return;
  }
  if (!plan.verbose) return;
  if (keep.empty()) err << "tcpconnect: capabilities: all dropped after attach\n";
  for (const auto& k : keep)
    err << "tcpconnect: capabilities: kept " << capability_name(k.cap) << " (" << k.why << ")\n";
}

// Whether any process on the host, or a name under /run/netns (ip netns add), holds the network
// namespace with this inode: --netns takes a number that nothing else checks.
bool netns_exists(std::uint32_t inode) {
  auto is_it = [inode](const std::filesystem::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && st.st_ino == inode;
  };
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec))
    if (is_it(e.path())) return true;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (is_it(e.path() / "ns/net")) return true;
  }
  return false;
}

}  // namespace

void request_stop() { g_stop = 1; }

// One output of the session: what it takes, and whether it is live (counted in this loop: it
// never waits for a reader and sees every loss total at once, not once a second).
struct Output {
  std::unique_ptr<Sink> sink;
  Selection selection;
  bool live = false;
};

int run(const Plan& plan, std::ostream& out, FdStreamBuf& outbuf, std::ostream& err) {
  outbuf.stop_when(&g_stop);
  const std::int64_t mono_to_wall = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
  std::uint64_t events = 0;
  std::uint64_t execs = 0, dns_answers = 0;  // enrichment records received
  std::uint64_t unwritten = 0;               // records not written: stdout blocked in metrics mode

  // Not refused: a namespace can be entered after the tracer starts. But a mistyped inode
  // would trace nothing, silently.
  if (plan.netns && !netns_exists(plan.netns)) {
    err << "tcpconnect: warning: no process is in network namespace " << plan.netns
        << " (no /proc/PID/ns/net is net:[" << plan.netns << "]); tracing it anyway\n";
  }

  // Metrics: the endpoint is bound before anything is loaded, so a busy port
  // fails fast with nothing attached.
  std::vector<Output> outputs;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<MetricsServer> server;
  if (plan.metrics) {
    metrics =
        std::make_unique<Metrics>(MetricsConfig{plan.metrics->top_n, plan.metrics->by_container});
    std::string why;
    server = MetricsServer::bind(*metrics, plan.metrics->addr, plan.metrics->port, why);
    if (!server) {
      err << "tcpconnect: " << why << '\n';
      return 1;
    }
    // It takes no record: the kernel counts for it (kernel_metrics()).
    outputs.push_back({std::make_unique<MetricsOutput>(*metrics), Selection{}, true});
  }
  // The lines output is last: the live ones have counted a record before it can be dropped.
  outputs.push_back({plan.lines.top ? std::make_unique<TopSink>(plan.lines, [] { g_stop = 1; })
                                    : make_sink(plan.lines, out, err),
                     plan.lines.selection, false});
  Sink& lines = *outputs.back().sink;

  LogFn log;
  if (plan.verbose) log = [&err](const std::string& s) { err << "tcpconnect: " << s << '\n'; };

  // What reaches the lines output, once enriched (possibly after waiting for a container's
  // names).
  const Selection& line_selection = outputs.back().selection;
  std::unique_ptr<Tracer> tracer;
  Enricher enricher(
      plan.enrich,
      [&](const ConnectEvent& ev) {
        if (metrics && outbuf.backlog() >= kMaxBacklog) {
          unwritten++;
          return;
        }
        events++;
        lines.connect(ev);
      },
      [&](std::uint64_t cgroup_id) {
        if (tracer) tracer->exclude_cgroup(cgroup_id);
      },
      log);

  SampleHandler on_sample = [&](std::span<const std::uint8_t> sample) {
    switch (record_type(sample)) {
      case TC_REC_DNS:
        dns_answers++;
        if (auto dns = decode_dns(sample)) enricher.on_dns(*dns);
        return;
      case TC_REC_EXEC:
        execs++;
        if (auto exec = decode_exec(sample)) enricher.on_exec(*exec);
        return;
      case TC_REC_CGROUP:
        if (auto id = decode_cgroup(sample))
          enricher.on_cgroup(*id, static_cast<std::uint64_t>(clock_ns(CLOCK_MONOTONIC)));
        return;
      default:
        break;
    }
    auto ev = decode_connect(sample, mono_to_wall);
    if (!ev) return;
    for (Output& o : outputs)
      if (o.live && o.selection.takes(*ev)) o.sink->connect(*ev);
    if (line_selection.takes(*ev))
      enricher.push(std::move(*ev), static_cast<std::uint64_t>(clock_ns(CLOCK_MONOTONIC)));
  };

  Error error;
  tracer = Tracer::open(plan.probe, on_sample, log, error);
  if (!tracer) {
    // One line, so that logs and scripts see the reason and the remedy together.
    err << "tcpconnect: " << error.message;
    if (!error.hint.empty()) err << "; hint: " << error.hint;
    err << '\n';
    return error.exit_code;
  }

  // Metrics count in this loop: a reader that stops reading must not stop them.
  if (metrics && plan.lines.banner) outbuf.set_never_block(true);

  // Before any thread starts: threads keep the capabilities they were born with.
  drop_privileges(plan, *tracer, err);
  if (server) server->serve();

  err << plan.tracing << std::endl;
  StartInfo info{kVersion, tracer->attach_method(),
                 static_cast<std::uint64_t>(clock_ns(CLOCK_REALTIME))};
  for (Output& o : outputs)
    if (o.live || plan.lines.banner) o.sink->start(info);
  out.flush();

  const std::int64_t start = clock_ns(CLOCK_MONOTONIC);
  const std::int64_t deadline =
      plan.duration_s ? start + static_cast<std::int64_t>(*plan.duration_s * 1e9) : INT64_MAX;
  std::uint64_t lost_reported = 0, lost_execs_reported = 0, lost_dns_reported = 0;
  std::uint64_t unwritten_reported = 0;
  std::int64_t last_sweep = start;
  std::int64_t last_metrics_read = start - kMetricsReadNs;  // read at once
  auto read_metrics = [&] {
    KernelMetrics k = tracer->read_metrics();
    enricher.label_metrics(k, static_cast<std::uint64_t>(clock_ns(CLOCK_MONOTONIC)));
    for (Output& o : outputs) o.sink->kernel_metrics(k);
  };
  std::int64_t last_lost_report = 0;

  // -c --interval: a table every interval, the last one (a part of an interval) at exit.
  const auto interval_ns = static_cast<std::int64_t>(plan.lines.interval_ns);
  std::int64_t next_table = interval_ns ? start + interval_ns : INT64_MAX;
  CountIntervals tables;
  std::int64_t last_table = start;
  auto print_table = [&](bool at_exit) {
    auto rows = tables.next(tracer->read_counts(mono_to_wall), plan.lines.cumulative, 0);
    const std::int64_t now = clock_ns(CLOCK_MONOTONIC);
    // Stopped right after a table (--duration a multiple of the interval): nothing new.
    if (at_exit && rows.empty() && now - last_table < std::int64_t{2} * kPollMs * 1'000'000) return;
    last_table = now;
    lines.count_interval(rows, static_cast<std::uint64_t>(clock_ns(CLOCK_REALTIME)));
  };

  // Every kind of loss: to the live outputs at once, to the lines at most once a second (all
  // kinds together).
  auto report_lost = [&](bool force) {
    const std::uint64_t total = tracer->lost(), execs_total = tracer->lost_execs(),
                        dns_total = tracer->lost_dns();
    for (Output& o : outputs) {
      if (!o.live) continue;
      o.sink->lost(0, total);
      o.sink->lost_enrichment(Enrichment::Exec, 0, execs_total);
      o.sink->lost_enrichment(Enrichment::Dns, 0, dns_total);
    }
    const std::int64_t now = clock_ns(CLOCK_MONOTONIC);
    if (!force && now - last_lost_report < kLostReportNs) return;
    bool reported = false;
    if (total > lost_reported) {
      lines.lost(total - lost_reported, total);
      lost_reported = total;
      reported = true;
    }
    if (execs_total > lost_execs_reported) {
      lines.lost_enrichment(Enrichment::Exec, execs_total - lost_execs_reported, execs_total);
      lost_execs_reported = execs_total;
      reported = true;
    }
    if (dns_total > lost_dns_reported) {
      lines.lost_enrichment(Enrichment::Dns, dns_total - lost_dns_reported, dns_total);
      lost_dns_reported = dns_total;
      reported = true;
    }
    // Straight to stderr: stdout is the output that is blocked.
    if (unwritten > unwritten_reported) {
      err << "tcpconnect: WARNING: " << unwritten - unwritten_reported
          << " records not written: the output is blocked (total " << unwritten
          << "; metrics counted them)" << std::endl;
      unwritten_reported = unwritten;
      reported = true;
    }
    if (reported) last_lost_report = now;
  };

  while (!g_stop) {
    std::int64_t now = clock_ns(CLOCK_MONOTONIC);
    if (now >= deadline) break;
    // Events waiting for their container's names are looked at every few ms.
    int timeout = static_cast<int>(
        std::min<std::int64_t>(enricher.holding() ? kHeldPollMs : kPollMs,
                               (std::min(deadline, next_table) - now) / 1'000'000 + 1));
    int n = tracer->poll(timeout);
    if (n < 0 && n != -EINTR) {
      err << "tcpconnect: failed to poll ring buffer: " << std::strerror(-n) << '\n';
      return 1;
    }
    if (enricher.holding()) enricher.release(static_cast<std::uint64_t>(clock_ns(CLOCK_MONOTONIC)));
    report_lost(false);
    if (clock_ns(CLOCK_MONOTONIC) >= next_table) {
      print_table(false);
      next_table += interval_ns;
    }
    if (metrics && now - last_metrics_read >= kMetricsReadNs) {
      read_metrics();
      last_metrics_read = now;
    }
    const auto read_at = static_cast<std::uint64_t>(clock_ns(CLOCK_REALTIME));
    for (Output& o : outputs) o.sink->polled(read_at);
    if (now - last_sweep >= kSweepEveryNs) {
      tracer->sweep(kHandshakeMaxAgeNs);
      last_sweep = now;
    }
    out.flush();
    if (outbuf.error() || outbuf.reader_gone()) break;
  }

  // The last records and the summary wait for the reader, within the stop grace.
  outbuf.set_never_block(false);
  if (!outbuf.error()) {
    tracer->poll(0);  // what arrived before the stop
    enricher.release(static_cast<std::uint64_t>(clock_ns(CLOCK_MONOTONIC)), true);
    if (interval_ns) {
      print_table(true);
    } else if (plan.lines.count || plan.lines.hist != HistBy::None) {
      lines.counts(tracer->read_counts(mono_to_wall));
    }
    if (metrics) read_metrics();
    report_lost(true);
    // The totals just reported, not fresh reads: the end record must match the notices.
    const FinishInfo finish{lost_reported,     events,
                            tracer->skipped(), lost_execs_reported,
                            lost_dns_reported, execs,
                            dns_answers,       plan.probe.count_mode ? 0 : tracer->evicted()};
    for (Output& o : outputs) o.sink->finish(finish);
    out.flush();
  }
  if (plan.verbose && plan.enrich.dns && tracer->dns_rejected())
    err << "tcpconnect: " << tracer->dns_rejected()
        << " DNS replies ignored: not from port 53 of the server the socket queried\n";
  tracer.reset();                         // detach before exiting
  if (outbuf.error() == EPIPE) return 0;  // reader went away: not an error
  if (outbuf.error() == EINTR) {
    // Stopped while the reader was not reading: say what was not written.
    err << "tcpconnect: stopped while the output was blocked; buffered records were not "
           "written\n";
    return 0;
  }
  if (outbuf.error()) {
    err << "tcpconnect: failed to write output: " << std::strerror(outbuf.error()) << '\n';
    return 1;
  }
  return 0;
}

}  // namespace tcpconnect
