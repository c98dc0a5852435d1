#include "app/run.h"

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>

#include "enrich/enricher.h"
#include "probe/tracer.h"
#include "sink/sink.h"
#include "tcpconnect/abi.h"

#ifndef TCPCONNECT_VERSION
#define TCPCONNECT_VERSION "0.0.0"
#endif

namespace tcpconnect {

namespace {

volatile std::sig_atomic_t g_stop = 0;

std::int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

constexpr int kPollMs = 50;  // bounds display latency at low event rates
constexpr std::int64_t kLostReportNs = 1'000'000'000;
// Longer than any handshake (SYN retries at their maximum back-off).
constexpr std::uint64_t kHandshakeMaxAgeNs = 600ull * 1'000'000'000;
constexpr std::int64_t kSweepEveryNs = 10'000'000'000;

}  // namespace

void request_stop() { g_stop = 1; }

int run(const Options& opts, std::ostream& out, FdStreamBuf& outbuf, std::ostream& err) {
  std::unique_ptr<Sink> sink = make_sink(opts, out, err);
  const std::int64_t mono_to_wall = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
  std::uint64_t events = 0;

  Enricher enricher(opts);

  SampleHandler on_sample = [&](std::span<const std::uint8_t> sample) {
    if (record_type(sample) == TC_REC_DNS) {
      if (auto dns = decode_dns(sample)) enricher.on_dns(*dns);
      return;
    }
    if (auto ev = decode_connect(sample, mono_to_wall)) {
      events++;
      enricher.enrich(*ev);
      sink->connect(*ev);
    }
  };
  LogFn log;
  if (opts.verbose) log = [&err](const std::string& s) { err << "tcpconnect: " << s << '\n'; };

  Error error;
  auto tracer = Tracer::open(tracer_config_from(opts), on_sample, log, error);
  if (!tracer) {
    err << "tcpconnect: " << error.message << '\n';
    if (!error.hint.empty()) err << "hint: " << error.hint << '\n';
    return error.exit_code;
  }

  err << "Tracing connect ... Hit Ctrl-C to end" << std::endl;
  StartInfo info{TCPCONNECT_VERSION, tracer->attach_method(),
                 static_cast<std::uint64_t>(clock_ns(CLOCK_REALTIME))};
  sink->start(info);
  out.flush();

  const std::int64_t start = clock_ns(CLOCK_MONOTONIC);
  const std::int64_t deadline =
      opts.duration_s ? start + static_cast<std::int64_t>(*opts.duration_s * 1e9) : INT64_MAX;
  std::uint64_t lost_reported = 0;
  std::int64_t last_sweep = start;
  std::int64_t last_lost_report = 0;

  auto report_lost = [&](bool force) {
    std::uint64_t total = tracer->lost();
    std::int64_t now = clock_ns(CLOCK_MONOTONIC);
    if (total > lost_reported && (force || now - last_lost_report >= kLostReportNs)) {
      sink->lost(total - lost_reported, total);
      lost_reported = total;
      last_lost_report = now;
    }
  };

  while (!g_stop) {
    std::int64_t now = clock_ns(CLOCK_MONOTONIC);
    if (now >= deadline) break;
    int timeout =
        static_cast<int>(std::min<std::int64_t>(kPollMs, (deadline - now) / 1'000'000 + 1));
    int n = tracer->poll(timeout);
    if (n < 0 && n != -EINTR) {
      err << "tcpconnect: failed to poll ring buffer: " << std::strerror(-n) << '\n';
      return 1;
    }
    report_lost(false);
    if (now - last_sweep >= kSweepEveryNs) {
      tracer->sweep(kHandshakeMaxAgeNs);
      last_sweep = now;
    }
    out.flush();
    if (outbuf.error() || outbuf.reader_gone()) break;
  }

  if (!outbuf.error()) {
    tracer->poll(0);  // what arrived before the stop
    if (opts.count) sink->counts(tracer->read_counts(mono_to_wall));
    report_lost(true);
    sink->finish(FinishInfo{tracer->lost(), events, tracer->skipped()});
    out.flush();
  }
  if (opts.verbose) {
    if (auto n = tracer->evicted()) {
      err << "tcpconnect: " << n
          << " connection entries were evicted from the kernel's table before they closed\n";
    }
  }
  tracer.reset();                         // detach before exiting
  if (outbuf.error() == EPIPE) return 0;  // reader went away: not an error
  if (outbuf.error()) {
    err << "tcpconnect: failed to write output: " << std::strerror(outbuf.error()) << '\n';
    return 1;
  }
  return 0;
}

}  // namespace tcpconnect
