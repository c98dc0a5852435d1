// --top: the screen's text, from one interval's count rows. Pure (the drawing is top_sink.h's),
// so that what the screen says is tested without a terminal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/event.h"

namespace tcpconnect {

// The column the rows are sorted by; the sort key cycles through them in this order (Bytes only
// when the bytes are shown).
enum class TopSort { Rate, Failed, Latency, Bytes };

TopSort next_sort(TopSort s, bool bytes);
const char* sort_name(TopSort s);

struct TopView {
  double interval_s = 1;  // how long the rows' counts took to gather
  TopSort sort = TopSort::Rate;
  bool bytes = false;   // TX and RX columns (--top --lifetime)
  bool paused = false;  // the title says so
  std::uint64_t wall_ns = 0;
  std::uint64_t lost = 0;  // records the kernel could not count, since the start
};

// The lines of the screen: a title, the keys, a blank line, the header, then at most `max_rows`
// rows (0: all) of the busiest keys; each line cut to `width` columns (0: not cut). Text from
// outside the tool (COMM) is escaped.
std::vector<std::string> top_lines(std::vector<CountRow> rows, const TopView& view,
                                   std::size_t width, std::size_t max_rows);

}  // namespace tcpconnect
