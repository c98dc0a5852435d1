// What each output prints: made by the plan (src/plan) from the command line; the outputs never
// see the options themselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "model/event.h"

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

  bool takes(const ConnectEvent& ev) const {
    switch (ev.kind) {
      case EventKind::Connect:
        return connect;
      case EventKind::Outcome:
        return outcome && (!failed_only || ev.failed);
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
};

// Optional columns of the text output (and the matching JSON fields where JSON leaves them out).
struct Columns {
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

  bool operator==(const Columns&) const = default;
};

enum class Format { Text, Json };

// The per-event output on stdout (text or JSON lines). With --quiet it takes no record and
// prints no banner: warnings still go to stderr.
struct OutputConfig {
  Format format = Format::Text;
  Selection selection;
  Columns columns;
  bool banner = true;       // header line / start record
  bool count = false;       // -c: the count table at exit instead of per-event lines
  bool by_process = false;  // -c --by-process: PID and COMM in the key

  bool operator==(const OutputConfig&) const = default;
};

// The Prometheus output: an HTTP endpoint and the label bound.
struct MetricsOutputConfig {
  std::string addr;  // IP literal
  std::uint16_t port = 0;
  std::size_t top_n = 20;  // label values per label (see sink/metrics.h)

  bool operator==(const MetricsOutputConfig&) const = default;
};

}  // namespace tcpconnect
