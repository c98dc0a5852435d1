// The plan: the one place where the command line becomes what each part of the pipeline does.
// The kernel side gets a TracerConfig (filters, which records to send), the per-event output and
// the metrics output each a configuration of what they print, the enricher what to look up.
// Nothing downstream sees Options. Pure; unit-tested (tests/unit/plan_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cli/options.h"
#include "enrich/config.h"
#include "probe/config.h"
#include "sink/config.h"

namespace tcpconnect {

struct Plan {
  TracerConfig probe;                          // what the kernel sends
  OutputConfig lines;                          // text or JSON on stdout
  std::optional<MetricsOutputConfig> metrics;  // --metrics
  EnrichConfig enrich;                         // what the enricher looks up
  std::optional<double> duration_s;            // --duration
  bool verbose = false;                        // -v
  std::uint32_t netns = 0;                     // --netns, checked against the host's processes
  std::string tracing;                         // the line on stderr once tracing has started

  bool operator==(const Plan&) const = default;
};

// `terminal`: stdout is a terminal (--top draws there, or falls back to interval tables).
Plan make_plan(const Options& opts, bool terminal = false);

}  // namespace tcpconnect
