#include "model/count_intervals.h"

namespace tcpconnect {

namespace {

// The bytes that tell two rows' keys apart.
std::string key_of(const CountRow& r) {
  std::string k;
  k.reserve(48 + r.comm.size());
  k.push_back(static_cast<char>(r.ip));
  k.append(reinterpret_cast<const char*>(r.saddr.data()), r.saddr.size());
  k.append(reinterpret_cast<const char*>(r.daddr.data()), r.daddr.size());
  for (std::uint32_t v : {std::uint32_t{r.dport}, std::uint32_t{r.sport}, r.pid}) {
    k.append(reinterpret_cast<const char*>(&v), sizeof(v));
  }
  k.append(r.comm);
  return k;
}

}  // namespace

std::vector<CountRow> CountIntervals::next(std::vector<CountRow> now, bool cumulative,
                                           std::size_t limit) {
  std::vector<CountRow> out;
  out.reserve(now.size());
  for (CountRow& r : now) {
    auto& [connects, failed] = seen_[key_of(r)];
    const std::uint64_t total = r.count, total_failed = r.failed;
    if (!cumulative) {
      r.count = total >= connects ? total - connects : total;
      r.failed = total_failed >= failed ? total_failed - failed : total_failed;
    }
    connects = total;
    failed = total_failed;
    if (r.count > 0) out.push_back(std::move(r));
  }
  sort_count_rows(out);
  if (limit && out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace tcpconnect
