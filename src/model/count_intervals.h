// -c --interval: the count table of one interval, from successive reads of the kernel's table.
// The kernel's counts only grow, so an interval's counts are the differences between two reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/event.h"

namespace tcpconnect {

class CountIntervals {
 public:
  // The rows of `now` (a full read of the table) for the interval since the previous call: those
  // with connects, failures (of connects made before, too) or closes in it, their connects,
  // failures, latencies, lifetimes and bytes in it (with `cumulative`: every row, with its totals
  // since the start). Sorted most connects first, at most `limit` rows (0: all). FIRST, LAST, EVERY
  // and PATTERN stay those since the start.
  std::vector<CountRow> next(std::vector<CountRow> now, bool cumulative, std::size_t limit);

 private:
  // The last totals of each key.
  std::map<std::string, CountRow> seen_;
};

}  // namespace tcpconnect
