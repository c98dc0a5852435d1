#include "model/event.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <string>
#include <tuple>

#include "model/intervals.h"
#include "tcpconnect/abi.h"

namespace tcpconnect {
namespace {

// Kernel address family -> bcc's IP column (4/6); 0 for anything else.
int ip_version(unsigned af) {
  switch (af) {
    case TC_AF_INET:
      return 4;
    case TC_AF_INET6:
      return 6;
    default:
      return 0;
  }
}

// Copies a 16-byte kernel address. For IPv4 only the first 4 bytes are
// meaningful; the rest is zeroed so equal addresses compare equal.
AddrBytes copy_addr(const std::uint8_t (&src)[16], int ip) {
  AddrBytes out{};
  std::memcpy(out.data(), src, ip == 4 ? 4 : out.size());
  return out;
}

// A kernel task name: the bytes up to the first NUL, at most TC_COMM_LEN.
std::string comm_of(const char (&raw)[TC_COMM_LEN]) {
  const void* nul = std::memchr(raw, '\0', sizeof(raw));
  return std::string(
      raw, nul ? static_cast<std::size_t>(static_cast<const char*>(nul) - raw) : sizeof(raw));
}

}  // namespace

int record_type(std::span<const std::uint8_t> sample) {
  constexpr std::size_t off = offsetof(tc_connect_record, type);
  return sample.size() > off ? sample[off] : 0;
}

std::optional<std::uint64_t> decode_cgroup(std::span<const std::uint8_t> sample) {
  tc_cgroup_record raw;
  if (sample.size() < sizeof(raw)) return std::nullopt;
  std::memcpy(&raw, sample.data(), sizeof(raw));
  if (raw.type != TC_REC_CGROUP) return std::nullopt;
  return raw.cgroup_id;
}

std::optional<DnsSample> decode_dns(std::span<const std::uint8_t> sample) {
  constexpr std::size_t hdr = offsetof(tc_dns_record, data);
  tc_dns_record raw;
  if (sample.size() < hdr) return std::nullopt;
  std::memcpy(&raw, sample.data(), hdr);
  if (raw.type != TC_REC_DNS || raw.len > TC_DNS_MAX || sample.size() < hdr + raw.len)
    return std::nullopt;
  DnsSample d;
  d.mono_ns = raw.ts_ns;
  d.pid = raw.pid;
  d.tid = raw.tid;
  d.netns = raw.netns;
  d.stream = raw.stream != 0;
  d.data = sample.subspan(hdr, raw.len);
  return d;
}

std::optional<ExecSample> decode_exec(std::span<const std::uint8_t> sample) {
  constexpr std::size_t hdr = offsetof(tc_exec_record, args);
  tc_exec_record raw;
  if (sample.size() < hdr) return std::nullopt;
  std::memcpy(&raw, sample.data(), hdr);
  if (raw.type != TC_REC_EXEC || raw.len > TC_CMDLINE_MAX || sample.size() < hdr + raw.len)
    return std::nullopt;
  ExecSample e;
  e.mono_ns = raw.ts_ns;
  e.pid = raw.pid;
  e.ppid = raw.ppid;
  e.start_ns = raw.start_ns;
  e.truncated = raw.truncated != 0;
  e.args = sample.subspan(hdr, raw.len);
  return e;
}

std::optional<ConnectEvent> decode_connect(std::span<const std::uint8_t> sample,
                                           std::int64_t mono_to_wall_ns) {
  tc_connect_record raw;
  if (sample.size() < sizeof(raw)) return std::nullopt;
  // Ring-buffer samples carry no alignment guarantee: copy, never cast.
  std::memcpy(&raw, sample.data(), sizeof(raw));
  if (raw.type < TC_REC_CONNECT || raw.type > TC_REC_ACCEPT) return std::nullopt;
  if (raw.outcome > TC_OUT_ABORTED) return std::nullopt;
  const int ip = ip_version(raw.af);
  if (ip == 0) return std::nullopt;

  ConnectEvent ev;
  ev.kind = static_cast<EventKind>(raw.type);
  ev.inbound = raw.dir == TC_DIR_IN;
  ev.outcome = static_cast<Outcome>(raw.outcome);
  ev.failed = (raw.flags & TC_F_FAILED) != 0;
  ev.err = raw.err;
  ev.latency_ns = raw.latency_ns;
  ev.duration_ns = raw.duration_ns;
  ev.tx_bytes = raw.tx_bytes;
  ev.rx_bytes = raw.rx_bytes;
  ev.mono_ns = raw.ts_ns;
  // Unsigned wrap-around makes a negative offset subtract.
  ev.ts_ns = raw.ts_ns + static_cast<std::uint64_t>(mono_to_wall_ns);
  ev.pid = raw.pid;
  ev.tid = raw.tid;
  ev.uid = raw.uid;
  ev.ip = ip;
  ev.saddr = copy_addr(raw.saddr, ip);
  ev.daddr = copy_addr(raw.daddr, ip);
  ev.sport = raw.sport;
  ev.dport = raw.dport;
  ev.comm = comm_of(raw.comm);
  ev.netns = raw.netns;
  ev.mntns = raw.mntns;
  ev.cgroup_id = raw.cgroup_id;
  ev.ppid = raw.ppid;
  ev.pcomm = comm_of(raw.pcomm);
  ev.start_ns = raw.start_ns;
  return ev;
}

std::optional<CountRow> decode_count(std::span<const std::uint8_t> key, std::uint64_t value) {
  tc_count_key raw;
  if (key.size() != sizeof(raw)) return std::nullopt;
  std::memcpy(&raw, key.data(), sizeof(raw));
  const int ip = ip_version(raw.af);
  if (ip == 0) return std::nullopt;

  CountRow row;
  row.ip = ip;
  row.saddr = copy_addr(raw.saddr, ip);
  row.daddr = copy_addr(raw.daddr, ip);
  row.dport = raw.dport;
  row.sport = raw.sport;
  row.count = value;
  row.pid = raw.pid;
  row.comm = comm_of(raw.comm);
  return row;
}

std::optional<CountRow> decode_count(std::span<const std::uint8_t> key,
                                     std::span<const std::uint8_t> value,
                                     std::int64_t mono_to_wall_ns) {
  tc_count_value raw;
  if (value.size() != sizeof(raw)) return std::nullopt;
  std::memcpy(&raw, value.data(), sizeof(raw));
  auto row = decode_count(key, raw.connects);
  if (!row) return row;
  row->failed = raw.failed;
  const auto offset = static_cast<std::uint64_t>(mono_to_wall_ns);
  row->first_ns = raw.first_ns ? raw.first_ns + offset : 0;
  row->last_ns = raw.last_ns ? raw.last_ns + offset : 0;
  const IntervalStats st = interval_stats(raw.ivl_hist, raw.sum_ivl_us, 0);
  row->intervals = st.intervals;
  row->interval_median_s = st.median_s;
  row->regular_fraction = st.regular_fraction;
  row->periodic = st.periodic;
  return row;
}

void add_count_stats(const tc_count_stats& stats, CountRow& row) {
  row.latency.resize(TC_IVL_BUCKETS);
  row.lifetime.resize(TC_LIFE_BUCKETS);
  for (std::size_t b = 0; b < TC_IVL_BUCKETS; ++b) row.latency[b] += stats.lat_hist[b];
  for (std::size_t b = 0; b < TC_LIFE_BUCKETS; ++b) row.lifetime[b] += stats.life_hist[b];
  row.closed += stats.closed;
  row.tx_bytes += stats.tx_bytes;
  row.rx_bytes += stats.rx_bytes;
}

std::string format_hms(std::uint64_t wall_ns) {
  const auto secs = static_cast<std::time_t>(wall_ns / 1'000'000'000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  return fmt::format("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string format_address(int ip, const AddrBytes& bytes) {
  char buf[INET6_ADDRSTRLEN];
  const int af = ip == 4 ? AF_INET : AF_INET6;
  if (inet_ntop(af, bytes.data(), buf, sizeof(buf)) == nullptr) return {};
  return buf;
}

void sort_count_rows(std::vector<CountRow>& rows) {
  std::sort(rows.begin(), rows.end(), [](const CountRow& a, const CountRow& b) {
    if (a.count != b.count) return a.count > b.count;
    return std::tie(a.ip, a.saddr, a.daddr, a.dport, a.sport) <
           std::tie(b.ip, b.saddr, b.daddr, b.dport, b.sport);
  });
}

}  // namespace tcpconnect
