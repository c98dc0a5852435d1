// What each output prints: made by the plan (src/plan) from the command line; the outputs never
// see the options themselves.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/event.h"
#include "model/histograms.h"

namespace tcpconnect {

// The connection records an output takes. The kernel sends the union of what the outputs take
// (see plan.cpp), so an output may be offered records it does not want.
struct Selection {
  bool connect = false;               // connect records (an attempt, as bcc's tcpconnect prints it)
  bool outcome = false;               // handshake ended
  bool close = false;                 // connection ended (lifetime)
  bool accept = false;                // accepted
  bool failed_only = false;           // outcome and close records: only failed handshakes
  std::uint64_t shorter_than_ns = 0;  // close records: only shorter lifetimes; 0 = all

  // tcpconnlat: outcome records of answered handshakes only (established, or refused by the
  // peer's RST), at least this slow.
  bool answered_only = false;
  std::uint64_t min_latency_ns = 0;
  // tcplife -L/-D: the local and remote ports of the records taken; empty = any.
  std::vector<std::uint16_t> local_ports;
  std::vector<std::uint16_t> remote_ports;

  bool takes(const ConnectEvent& ev) const {
    if (!in(local_ports, ev.sport) || !in(remote_ports, ev.dport)) return false;
    switch (ev.kind) {
      case EventKind::Connect:
        return connect;
      case EventKind::Outcome:
        return outcome && (!failed_only || ev.failed) &&
               (!answered_only || ev.outcome == Outcome::Established ||
                ev.outcome == Outcome::Refused) &&
               ev.latency_ns >= min_latency_ns;
      case EventKind::Close:
        return close && (!failed_only || ev.failed) &&
               (!shorter_than_ns || ev.duration_ns < shorter_than_ns);
      case EventKind::Accept:
        return accept;
    }
    return false;
  }
  bool any() const { return connect || outcome || close || accept; }
  bool operator==(const Selection&) const = default;

 private:
  static bool in(const std::vector<std::uint16_t>& ports, std::uint16_t port) {
    return ports.empty() || std::find(ports.begin(), ports.end(), port) != ports.end();
  }
};

// Which tool's lines the text output prints: tcpconnect's, or those of tcpaccept, tcplife or
// tcpconnlat (their columns, widths and number formats; text_sink.cpp).
enum class Layout { Tcpconnect, Tcpaccept, Tcplife, Tcpconnlat };

// Optional columns of the text output (and the matching JSON fields where JSON leaves them out).
struct Columns {
  bool time = false;       // -T: TIME (HH:MM:SS)
  bool timestamp = false;  // -t: TIME(s)
  bool uid = false;        // -U: UID
  bool lport = false;      // -L/-s: LPORT (in -c: the source port is part of the key)
  bool dir = false;        // --accept: DIR
  bool outcome = false;    // OUTCOME and LAT(ms)
  bool lifetime = false;   // DUR(ms), TX and RX
  bool container = false;  // NETNS and CONTAINER
  bool dns = false;        // -d: QUERY
  bool parent = false;     // PPID and PCOMM
  bool cmdline = false;    // CMDLINE
  bool wide = false;       // tcplife -w: wider columns, with IP
  bool failed = false;     // -c --interval: FAILED (handshakes that did not establish)

  bool operator==(const Columns&) const = default;
};

// Csv: tcplife -s, the text layout's values separated by commas, unpadded, with a header.
enum class Format { Text, Json, Csv };

// The per-event output on stdout (text or JSON lines). With --quiet it takes no record and
// prints no banner: warnings still go to stderr.
struct OutputConfig {
  Format format = Format::Text;
  Layout layout = Layout::Tcpconnect;
  Selection selection;
  Columns columns;
  bool banner = true;       // header line / start record
  bool count = false;       // -c: the count table at exit instead of per-event lines
  bool by_process = false;  // -c --by-process: PID and COMM in the key
  // -c --interval: a table every interval (counts of that interval, or since the start with
  // `cumulative`), the last one at exit; at most `rows` rows per table (0: all).
  std::uint64_t interval_ns = 0;
  bool cumulative = false;
  std::size_t rows = 0;
  // --top on a terminal: the rows drawn on a full screen every interval instead (sink/top_sink.h).
  bool top = false;
  // --hist: histograms of the rows' latencies and lifetimes, at exit and every interval.
  HistBy hist = HistBy::None;

  bool operator==(const OutputConfig&) const = default;
};

// The Prometheus output: an HTTP endpoint and the label bound.
struct MetricsOutputConfig {
  std::string addr;  // IP literal
  std::uint16_t port = 0;
  std::size_t top_n = 20;     // label values per label (see sink/metrics.h)
  bool by_container = false;  // --metrics-container: a `container` label on the counters

  bool operator==(const MetricsOutputConfig&) const = default;
};

}  // namespace tcpconnect
