#include "plan/plan.h"

#include "tcpconnect/abi.h"

namespace tcpconnect {

namespace {

// What the per-event output prints. Every connection gives at most one line: the attempt
// (default), its outcome (--outcome/--failed), or its end (--lifetime, whose line carries the
// outcome and latency too, so it replaces the outcome line). The other tools print one kind:
// tcpaccept the accepts, tcplife the ends of sessions both ways, tcpconnlat the answered
// handshakes.
Selection lines_selection(const Options& o) {
  Selection s;
  if (o.quiet || o.count) return s;  // no per-event lines: nothing, or the table at exit
  switch (o.tool) {
    case Tool::Tcpaccept:
      s.accept = true;
      return s;
    case Tool::Tcplife:
      s.close = true;
      s.local_ports = o.local_ports;
      s.remote_ports = o.remote_ports;
      return s;
    case Tool::Tcpconnlat:
      s.outcome = true;
      s.answered_only = true;
      s.min_latency_ns = o.min_latency_ns.value_or(0);
      return s;
    case Tool::Tcpconnect:
      break;
  }
  const bool lifecycle = o.outcome || o.failed || o.lifetime;
  s.connect = !lifecycle;
  s.outcome = (o.outcome || o.failed) && !o.lifetime;
  s.close = o.lifetime;
  // Accepted connections: a line when accepted, or with --lifetime one when they end.
  s.accept = o.accept && !o.lifetime;
  s.failed_only = o.failed;
  s.shorter_than_ns = o.shorter_than_ns.value_or(0);
  return s;
}

// What each tool prints: its lines' layout, and the line on stderr once tracing has started.
struct ToolOutput {
  Tool tool;
  Layout layout;
  const char* tracing;
};
constexpr ToolOutput kToolOutputs[] = {
    {Tool::Tcpconnect, Layout::Tcpconnect, "Tracing connect ... Hit Ctrl-C to end"},
    {Tool::Tcpaccept, Layout::Tcpaccept, "Tracing accept ... Hit Ctrl-C to end"},
    {Tool::Tcplife, Layout::Tcplife, "Tracing TCP sessions ... Hit Ctrl-C to end"},
    {Tool::Tcpconnlat, Layout::Tcpconnlat, "Tracing connect latency ... Hit Ctrl-C to end"},
};

const ToolOutput& output_of(Tool tool) {
  for (const ToolOutput& t : kToolOutputs)
    if (t.tool == tool) return t;
  return kToolOutputs[0];
}

}  // namespace

Plan make_plan(const Options& o, bool terminal) {
  Plan p;
  const bool lines = !o.quiet;
  // Tables (-c, --top, --hist) read the kernel's count table and print nothing per event.
  const bool tables = o.count || o.top || o.hist;
  // Lines per event: what the process context (parent, command line, containers) is for.
  const bool per_event = lines && !tables;
  // --top refreshes every second unless told otherwise.
  constexpr std::uint64_t kTopIntervalNs = 1'000'000'000;

  OutputConfig& out = p.lines;
  out.format = o.json && lines ? Format::Json : o.csv ? Format::Csv : Format::Text;
  out.layout = output_of(o.tool).layout;
  out.selection = lines_selection(o);
  if (tables) out.selection = Selection{};  // connects are counted, not sent
  out.banner = lines;
  // --top's rows are the -c --by-process rows (the table itself where there is no terminal).
  out.count = o.count || o.top;
  out.top = o.top && terminal;
  out.hist = !o.hist ? HistBy::None : o.hist_by_process ? HistBy::Process : HistBy::Port;
  out.by_process = o.by_process || o.top;
  out.interval_ns = o.interval_ns.value_or(o.top ? kTopIntervalNs : 0);
  out.cumulative = o.cumulative;
  out.rows = o.rows;
  Columns& c = out.columns;
  c.lport = o.lport;  // -c: the source port is part of the key
  c.failed = out.count && out.interval_ns;
  c.lifetime = o.top && o.lifetime;  // --top: TX and RX of the connections that ended
  if (!tables) {                     // the count table has none of the per-event columns
    c.time = o.time;
    c.timestamp = o.timestamp;
    c.uid = o.print_uid;
    c.dir = o.accept;
    c.outcome = o.outcome || o.failed || o.lifetime;
    c.lifetime = o.lifetime;
    c.container = o.container;
    c.dns = o.dns;
    c.parent = o.parent;
    c.cmdline = o.cmdline;
    c.wide = o.wide;
  }

  if (o.metrics_addr) {
    p.metrics =
        MetricsOutputConfig{*o.metrics_addr, o.metrics_port, o.metrics_top, o.metrics_container};
  }

  // The kernel sends what the lines take; the metrics are counted in the kernel (every
  // outcome, accept and close, whatever the lines print) and read from there.
  const Selection& ls = out.selection;
  TracerConfig& t = p.probe;
  t.pid = o.pid.value_or(0);
  t.uid_on = o.uid.has_value();
  t.uid = o.uid.value_or(0);
  t.af = o.ipv4 ? TC_AF_INET : o.ipv6 ? TC_AF_INET6 : 0;
  t.ports = o.ports;
  t.count_mode = tables;
  t.count_by_process = out.by_process || out.hist == HistBy::Process;
  t.count_by_sport = tables && o.lport;
  // Interval tables show how many connects failed: the kernel follows them to their outcome.
  t.count_outcomes = c.failed;
  // --top's latency percentiles and --hist's histograms; lifetimes and bytes for --hist and
  // --top --lifetime.
  t.count_handshakes = o.top || o.hist;
  t.count_closes = o.hist || (o.top && o.lifetime);
  t.attach = o.attach;
  t.ringbuf_bytes = o.ringbuf_bytes;
  t.want_connect = ls.connect;
  // The LPORT column and JSON's sport; without them connect records go out at SYN_SENT.
  t.want_sport = c.lport || out.format == Format::Json;
  t.want_outcome = ls.outcome;
  t.want_close = ls.close;
  t.want_accept = ls.accept;
  // Accepted sockets are followed to their close for close records (--accept --lifetime,
  // tcplife).
  t.track_accepts = ls.close && (o.accept || o.tool == Tool::Tcplife);
  t.failed_only = ls.failed_only;
  t.shorter_than_ns = ls.shorter_than_ns;
  t.metrics = p.metrics.has_value();
  t.metrics_by_cgroup = t.metrics && o.metrics_container;
  t.netns = o.netns.value_or(0);
  t.cgroup = o.cgroup.value_or("");
  t.cgroupmap = o.cgroupmap.value_or("");
  t.mntnsmap = o.mntnsmap.value_or("");
  const ContainerFilter filter{o.container_names, o.pods, o.pod_namespaces};
  // User space decides from the runtime's names; the kernel then drops what was decided.
  t.exclude_cgroups = per_event && filter.on();
  t.want_dns = o.dns;
  t.want_parent = per_event && (o.json || o.parent);
  t.want_exec = per_event && (o.json || o.cmdline);

  EnrichConfig& e = p.enrich;
  e.containers = per_event && (o.json || o.container || filter.on());
  e.metric_containers = t.metrics_by_cgroup;
  e.container_names = e.containers || e.metric_containers;
  e.runtime_socket = o.runtime_socket.value_or("");
  if (per_event) e.filter = filter;
  e.dns = o.dns;
  e.cmdlines = per_event && (o.json || o.cmdline);
  e.dns_cache_size = o.dns_cache_size;
  e.dns_max_age_ns = o.dns_max_age_ns;
  e.exec_cache_size = o.exec_cache_size;

  p.tracing = output_of(o.tool).tracing;
  p.duration_s = o.duration_s;
  p.verbose = o.verbose;
  p.netns = o.netns.value_or(0);
  return p;
}

}  // namespace tcpconnect
