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

std::uint64_t minus(std::uint64_t now, std::uint64_t before) {
  return now >= before ? now - before : now;  // a key stored again after it was dropped
}

void minus(std::vector<std::uint64_t>& now, const std::vector<std::uint64_t>& before) {
  for (std::size_t b = 0; b < now.size() && b < before.size(); ++b)
    now[b] = minus(now[b], before[b]);
}

// What `r` (totals) gained since `before` (totals).
void since(CountRow& r, const CountRow& before) {
  r.count = minus(r.count, before.count);
  r.failed = minus(r.failed, before.failed);
  minus(r.latency, before.latency);
  minus(r.lifetime, before.lifetime);
  r.closed = minus(r.closed, before.closed);
  r.tx_bytes = minus(r.tx_bytes, before.tx_bytes);
  r.rx_bytes = minus(r.rx_bytes, before.rx_bytes);
}

}  // namespace

std::vector<CountRow> CountIntervals::next(std::vector<CountRow> now, bool cumulative,
                                           std::size_t limit) {
  std::vector<CountRow> out;
  out.reserve(now.size());
  for (CountRow& r : now) {
    CountRow& before = seen_[key_of(r)];
    CountRow totals = r;
    if (!cumulative) since(r, before);
    before = std::move(totals);
    if (r.count > 0 || r.failed > 0 || r.closed > 0) out.push_back(std::move(r));
  }
  sort_count_rows(out);
  if (limit && out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace tcpconnect
