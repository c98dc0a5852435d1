#include "sink/text_sink.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "plan/plan.h"
#include "sink/address_cache.h"
#include "sink/json_sink.h"
#include "sink/sink.h"

namespace tcpconnect {
namespace {

// What the plan gives the per-event output for these options.
OutputConfig lines_config(const Options& o) { return make_plan(o).lines; }

constexpr const char* kLongV6 = "2001:db8:85a3:1234:5678:8a2e:370:7334";  // 37 chars

AddrBytes addr(int ip, const char* text) {
  AddrBytes a{};
  EXPECT_EQ(inet_pton(ip == 4 ? AF_INET : AF_INET6, text, a.data()), 1) << text;
  return a;
}

ConnectEvent event(std::uint64_t mono_ns, std::uint32_t pid, std::uint32_t uid, std::string comm,
                   int ip, const char* saddr, std::uint16_t sport, const char* daddr,
                   std::uint16_t dport) {
  ConnectEvent ev;
  ev.mono_ns = mono_ns;
  ev.ts_ns = mono_ns + 1'700'000'000'000'000'000ULL;
  ev.pid = pid;
  ev.tid = pid;
  ev.uid = uid;
  ev.comm = std::move(comm);
  ev.ip = ip;
  ev.saddr = addr(ip, saddr);
  ev.sport = sport;
  ev.daddr = addr(ip, daddr);
  ev.dport = dport;
  return ev;
}

ConnectEvent curl_v4(std::uint64_t mono_ns = 1'000'000'000) {
  return event(mono_ns, 1234, 1000, "curl", 4, "10.0.0.1", 40000, "93.184.216.34", 80);
}

ConnectEvent ssh_v6() { return event(1'250'400'000, 4321, 0, "ssh", 6, "::1", 51234, "::1", 22); }

struct Flags {
  bool t = false;
  bool U = false;
  bool L = false;
  bool c = false;
};

Options options(Flags f) {
  Options o;
  o.timestamp = f.t;
  o.print_uid = f.U;
  o.lport = f.L;
  o.count = f.c;
  return o;
}

// Runs a whole text session (start, events, finish) and returns stdout.
std::string run(Flags f, const std::vector<ConnectEvent>& evs) {
  std::ostringstream out, err;
  TextSink sink(lines_config(options(f)), out, err);
  sink.start(StartInfo{"0.1.0", "tp_btf", 1});
  for (const auto& ev : evs) sink.connect(ev);
  sink.finish(FinishInfo{0, evs.size()});
  EXPECT_EQ(err.str(), "");
  return out.str();
}

TEST(TextSink, Default) {
  EXPECT_EQ(run({}, {curl_v4(), ssh_v6()}),
            "PID     COMM         IP SADDR            DADDR            DPORT\n"
            "1234    curl         4  10.0.0.1         93.184.216.34    80\n"
            "4321    ssh          6  ::1              ::1              22\n");
}

TEST(TextSink, Timestamp) {
  EXPECT_EQ(run({.t = true}, {curl_v4(), ssh_v6()}),
            "TIME(s)  PID     COMM         IP SADDR            DADDR            DPORT\n"
            "0.000    1234    curl         4  10.0.0.1         93.184.216.34    80\n"
            "0.250    4321    ssh          6  ::1              ::1              22\n");
}

TEST(TextSink, Uid) {
  EXPECT_EQ(run({.U = true}, {curl_v4(), ssh_v6()}),
            "UID   PID     COMM         IP SADDR            DADDR            DPORT\n"
            "1000  1234    curl         4  10.0.0.1         93.184.216.34    80\n"
            "0     4321    ssh          6  ::1              ::1              22\n");
}

TEST(TextSink, Lport) {
  EXPECT_EQ(run({.L = true}, {curl_v4(), ssh_v6()}),
            "PID     COMM         IP SADDR            LPORT  DADDR            DPORT\n"
            "1234    curl         4  10.0.0.1         40000  93.184.216.34    80\n"
            "4321    ssh          6  ::1              51234  ::1              22\n");
}

TEST(TextSink, TimestampUidLport) {
  EXPECT_EQ(
      run({.t = true, .U = true, .L = true}, {curl_v4(), ssh_v6()}),
      "TIME(s)  UID   PID     COMM         IP SADDR            LPORT  DADDR            DPORT\n"
      "0.000    1000  1234    curl         4  10.0.0.1         40000  93.184.216.34    80\n"
      "0.250    0     4321    ssh          6  ::1              51234  ::1              22\n");
}

// bcc's TIME(s) and UID columns have no separator after them; a value that
// fills the column still gets one space.
TEST(TextSink, WideTimeAndUidKeepASeparator) {
  auto late = curl_v4(1'000'000'000 + 12'345'678'000'000ULL);
  late.uid = 4294967294u;
  EXPECT_EQ(run({.t = true, .U = true}, {curl_v4(), late}),
            "TIME(s)  UID   PID     COMM         IP SADDR            DADDR            DPORT\n"
            "0.000    1000  1234    curl         4  10.0.0.1         93.184.216.34    80\n"
            "12345.678 4294967294 1234    curl         4  10.0.0.1         93.184.216.34    80\n");
}

TEST(TextSink, TimestampRelativeToFirstEvent) {
  EXPECT_EQ(run({.t = true}, {curl_v4(5'000'000'123), curl_v4(5'001'234'690),
                              curl_v4(17'345'678'024), curl_v4(4'000'000'123)}),
            "TIME(s)  PID     COMM         IP SADDR            DADDR            DPORT\n"
            "0.000    1234    curl         4  10.0.0.1         93.184.216.34    80\n"
            "0.001    1234    curl         4  10.0.0.1         93.184.216.34    80\n"
            "12.346   1234    curl         4  10.0.0.1         93.184.216.34    80\n"
            // Emitted after the first record but stamped before it.
            "-1.000   1234    curl         4  10.0.0.1         93.184.216.34    80\n");
}

// A long IPv6 address widens its column (to len + 1) for this and every
// later row; the other column keeps its width; comm is cut to 12 bytes and
// control bytes are escaped.
TEST(TextSink, LongSaddrGrowsColumn) {
  const std::vector<ConnectEvent> evs = {
      curl_v4(),
      event(2'000'000'000, 77, 0, "a-very-long-co", 6, kLongV6, 1, "2001:db8::1", 443),
      event(3'123'456'789, 1234, 1000, "x\x01y\xc3\xa9", 4, "10.0.0.1", 40000, "93.184.216.34", 80),
  };
  EXPECT_EQ(
      run({}, evs),
      "PID     COMM         IP SADDR            DADDR            DPORT\n"
      "1234    curl         4  10.0.0.1         93.184.216.34    80\n"
      "PID     COMM         IP SADDR                                  DADDR            DPORT\n"
      "77      a-very-long- 6  2001:db8:85a3:1234:5678:8a2e:370:7334  2001:db8::1      443\n"
      "1234    x\\x01y\xc3\xa9     4  10.0.0.1                               93.184.216.34    "
      "80\n");
  EXPECT_EQ(
      run({.t = true, .L = true}, evs),
      "TIME(s)  PID     COMM         IP SADDR            LPORT  DADDR            DPORT\n"
      "0.000    1234    curl         4  10.0.0.1         40000  93.184.216.34    80\n"
      "TIME(s)  PID     COMM         IP SADDR                                  LPORT  DADDR"
      "            DPORT\n"
      "1.000    77      a-very-long- 6  2001:db8:85a3:1234:5678:8a2e:370:7334  1      2001:db8::1"
      "      443\n"
      "2.123    1234    x\\x01y\xc3\xa9     4  10.0.0.1                               40000  "
      "93.184.216.34    80\n");
}

TEST(TextSink, LongDaddrGrowsColumn) {
  auto v6 = ssh_v6();
  v6.daddr = addr(6, kLongV6);
  EXPECT_EQ(
      run({}, {curl_v4(), v6, curl_v4()}),
      "PID     COMM         IP SADDR            DADDR            DPORT\n"
      "1234    curl         4  10.0.0.1         93.184.216.34    80\n"
      "PID     COMM         IP SADDR            DADDR                                  DPORT\n"
      "4321    ssh          6  ::1              2001:db8:85a3:1234:5678:8a2e:370:7334  22\n"
      "1234    curl         4  10.0.0.1         93.184.216.34                          80\n");
}

TEST(TextSink, SixteenCharAddressKeepsASpace) {
  // "2001:db8::1:2:3a" is 16 characters: bcc's %-16s would leave no padding.
  auto ev = ssh_v6();
  ev.saddr = addr(6, "2001:db8::1:2:3a");
  EXPECT_EQ(run({}, {ev}),
            "PID     COMM         IP SADDR            DADDR            DPORT\n"
            "PID     COMM         IP SADDR             DADDR            DPORT\n"
            "4321    ssh          6  2001:db8::1:2:3a  ::1              22\n");
}

// The header is printed again right before the first row at new widths, once per row however
// many columns grew, and only then.
TEST(TextSink, HeaderReprintedOnlyWhenAColumnGrows) {
  auto wide = ssh_v6();
  wide.saddr = addr(6, "2001:db8::1:2:3a");
  wide.daddr = addr(6, "2001:db8::1:2:3b");
  auto wider = ssh_v6();
  wider.daddr = addr(6, kLongV6);
  EXPECT_EQ(
      run({.U = true}, {curl_v4(), wide, wide, curl_v4(), wider, wide}),
      "UID   PID     COMM         IP SADDR            DADDR            DPORT\n"
      "1000  1234    curl         4  10.0.0.1         93.184.216.34    80\n"
      "UID   PID     COMM         IP SADDR             DADDR             DPORT\n"
      "0     4321    ssh          6  2001:db8::1:2:3a  2001:db8::1:2:3b  22\n"
      "0     4321    ssh          6  2001:db8::1:2:3a  2001:db8::1:2:3b  22\n"
      "1000  1234    curl         4  10.0.0.1          93.184.216.34     80\n"
      "UID   PID     COMM         IP SADDR             DADDR                                  "
      "DPORT\n"
      "0     4321    ssh          6  ::1               2001:db8:85a3:1234:5678:8a2e:370:7334  22\n"
      "0     4321    ssh          6  2001:db8::1:2:3a  2001:db8::1:2:3b                       "
      "22\n");
}

// Escapes count toward the 12 bytes at their printed length, and an escape
// that would not fit whole is left out, so the column stays aligned.
TEST(TextSink, CommTruncatedAndEscaped) {
  auto a = curl_v4();
  a.comm = "0123456789abcdef";
  auto b = curl_v4();
  b.comm = std::string("\ttab\nnl\x7f\x80", 9);
  auto c = curl_v4();
  c.comm = "";
  auto d = curl_v4();
  d.comm = std::string("a\0b", 3);
  EXPECT_EQ(run({}, {a, b, c, d}),
            "PID     COMM         IP SADDR            DADDR            DPORT\n"
            "1234    0123456789ab 4  10.0.0.1         93.184.216.34    80\n"
            "1234    \\x09tab\\x0an 4  10.0.0.1         93.184.216.34    80\n"
            "1234                 4  10.0.0.1         93.184.216.34    80\n"
            "1234    a\\x00b       4  10.0.0.1         93.184.216.34    80\n");
}

// Valid non-ASCII names pass through; one that does not fit in 12 bytes is
// cut before its last whole character, never inside it.
TEST(TextSink, NonAsciiCommIsKeptAndCutOnACharacterBoundary) {
  auto a = curl_v4();
  a.comm = "caf\xc3\xa9";
  auto b = curl_v4();
  b.comm = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83\x86\xe3\x82\xb9";  // 5 CJK, 15 bytes
  auto c = curl_v4();
  c.comm = "0123456789a\xc3\xa9";  // the 2-byte character would end at byte 13
  EXPECT_EQ(run({}, {a, b, c}),
            "PID     COMM         IP SADDR            DADDR            DPORT\n"
            "1234    caf\xc3\xa9        4  10.0.0.1         93.184.216.34    80\n"
            "1234    \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83\x86 4  10.0.0.1         "
            "93.184.216.34    80\n"
            "1234    0123456789a  4  10.0.0.1         93.184.216.34    80\n");
}

// -c --by-process: COMM is 16 bytes wide there, with the same escaping.
TEST(TextSink, CountTableCommIsEscaped) {
  Options o;
  o.count = true;
  o.by_process = true;
  std::ostringstream out, err;
  TextSink sink(lines_config(o), out, err);
  sink.start(StartInfo{"0.1.0", "tp_btf", 1});
  CountRow r;
  r.ip = 4;
  r.saddr = addr(4, "10.0.0.1");
  r.daddr = addr(4, "10.0.0.2");
  r.dport = 80;
  r.count = 1;
  r.pid = 42;
  r.comm =
      "\x9b"
      "6n\xc2\x9b"
      "6n";
  sink.counts({r});
  sink.finish(FinishInfo{0, 0});
  EXPECT_NE(out.str().find("\n42      \\x9b6n\\xc2\\x9b6n 10.0.0.1 "), std::string::npos)
      << out.str();
}

CountRow row(int ip, const char* s, const char* d, std::uint16_t port, std::uint64_t count) {
  CountRow r;
  r.ip = ip;
  r.saddr = addr(ip, s);
  r.daddr = addr(ip, d);
  r.dport = port;
  r.count = count;
  return r;
}

TEST(TextSink, CountModeTable) {
  std::ostringstream out, err;
  TextSink sink(lines_config(options({.c = true})), out, err);
  sink.start(StartInfo{"0.1.0", "tp_btf", 1});
  EXPECT_EQ(out.str(), "");  // no header in -c mode
  sink.counts({
      row(6, "::1", "::2", 80, 5),
      row(4, "10.0.0.1", "10.0.0.3", 443, 5),
      row(4, "10.0.0.1", "10.0.0.2", 80, 5),
      row(6, "::1", "::1", 22, 10),
      row(4, "10.0.0.1", "10.0.0.2", 22, 5),
  });
  sink.finish(FinishInfo{0, 0});
  EXPECT_EQ(out.str(),
            "\n"
            "LADDR                     RADDR                     RPORT                CONNECTS   "
            "FIRST        LAST         EVERY   PATTERN\n"
            "::1                       ::1                       22                   10         - "
            "           -            -       -\n"
            "10.0.0.1                  10.0.0.2                  22                   5          - "
            "           -            -       -\n"
            "10.0.0.1                  10.0.0.2                  80                   5          - "
            "           -            -       -\n"
            "10.0.0.1                  10.0.0.3                  443                  5          - "
            "           -            -       -\n"
            "::1                       ::2                       80                   5          - "
            "           -            -       -\n");
  EXPECT_EQ(err.str(), "");
}

TEST(TextSink, CountTableWidensForLongIPv6) {
  std::ostringstream out, err;
  TextSink sink(lines_config(options({.c = true})), out, err);
  sink.start(StartInfo{});
  sink.counts({row(6, kLongV6, "2001:db8::1", 443, 1), row(4, "10.0.0.1", "10.0.0.2", 80, 3)});
  EXPECT_EQ(out.str(),
            "\n"
            "LADDR                                  RADDR                     RPORT                "
            "CONNECTS   FIRST        LAST         EVERY   PATTERN\n"
            "10.0.0.1                               10.0.0.2                  80                   "
            "3          -            -            -       -\n"
            "2001:db8:85a3:1234:5678:8a2e:370:7334  2001:db8::1               443                  "
            "1          -            -            -       -\n");
}

TEST(TextSink, CountTableEmpty) {
  std::ostringstream out, err;
  TextSink sink(lines_config(options({.c = true})), out, err);
  sink.counts({});
  EXPECT_EQ(out.str(),
            "\nLADDR                     RADDR                     RPORT                CONNECTS   "
            "FIRST        LAST         EVERY   PATTERN\n");
}

// -c -L: the kernel keys by source port, and LPORT stands between RADDR and RPORT, %-20s as in
// libbpf-tools' tcpconnect. Keys that differ only by source port are ordered by it.
TEST(TextSink, CountTableWithLport) {
  std::ostringstream out, err;
  TextSink sink(lines_config(options({.L = true, .c = true})), out, err);
  sink.start(StartInfo{});
  EXPECT_EQ(out.str(), "");
  CountRow a = row(4, "10.0.0.1", "10.0.0.2", 80, 3);
  a.sport = 40001;
  CountRow b = row(4, "10.0.0.1", "10.0.0.2", 80, 3);
  b.sport = 40000;
  CountRow c = row(6, kLongV6, "::1", 22, 7);
  c.sport = 5;
  sink.counts({a, b, c});
  EXPECT_EQ(out.str(),
            "\n"
            "LADDR                                  RADDR                     LPORT                "
            "RPORT                CONNECTS   FIRST        LAST         EVERY   PATTERN\n"
            "2001:db8:85a3:1234:5678:8a2e:370:7334  ::1                       5                    "
            "22                   7          -            -            -       -\n"
            "10.0.0.1                               10.0.0.2                  40000                "
            "80                   3          -            -            -       -\n"
            "10.0.0.1                               10.0.0.2                  40001                "
            "80                   3          -            -            -       -\n");
  EXPECT_EQ(err.str(), "");
}

// The per-event LPORT column is the -L layout's; without -L neither table has one.
TEST(TextSink, CountTableWithoutLportHasNoLportColumn) {
  std::ostringstream out, err;
  TextSink sink(lines_config(options({.c = true})), out, err);
  CountRow r = row(4, "10.0.0.1", "10.0.0.2", 80, 1);
  r.sport = 40000;
  sink.counts({r});
  EXPECT_EQ(out.str().find("LPORT"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("40000"), std::string::npos) << out.str();
}

TEST(TextSink, LostWarnings) {
  std::ostringstream out, err;
  TextSink sink(lines_config(options({})), out, err);
  sink.start(StartInfo{});
  out.str("");
  sink.lost(3, 3);
  sink.lost(10, 13);
  EXPECT_EQ(err.str(),
            "WARNING: 3 events lost (total 3)\n"
            "WARNING: 10 events lost (total 13)\n");
  sink.finish(FinishInfo{13, 100});
  EXPECT_EQ(err.str(),
            "WARNING: 3 events lost (total 3)\n"
            "WARNING: 10 events lost (total 13)\n"
            "WARNING: 13 events lost in total\n");
  EXPECT_EQ(out.str(), "");
}

TEST(TextSink, LostEnrichmentWarnings) {
  std::ostringstream out, err;
  TextSink sink(lines_config(options({})), out, err);
  sink.start(StartInfo{});
  out.str("");
  sink.lost_enrichment(Enrichment::Exec, 5, 5);
  sink.lost_enrichment(Enrichment::Dns, 2, 2);
  sink.lost_enrichment(Enrichment::Exec, 1, 6);
  EXPECT_EQ(err.str(),
            "WARNING: 5 command lines lost (total 5)\n"
            "WARNING: 2 DNS answers lost (total 2)\n"
            "WARNING: 1 command lines lost (total 6)\n");
  err.str("");
  sink.finish(FinishInfo{0, 100, 0, 6, 2, 30, 8});
  EXPECT_EQ(err.str(),
            "WARNING: 6 command lines and 2 DNS answers lost (30 and 8 received; CMDLINE may show "
            "?, QUERY may be empty)\n");
  EXPECT_EQ(out.str(), "");
}

TEST(TextSink, FinishWithoutLossPrintsNothing) {
  std::ostringstream out, err;
  TextSink sink(lines_config(options({})), out, err);
  sink.finish(FinishInfo{0, 5});
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(), "");
}

TEST(TextSinkAddressCache, MatchesFormatAddress) {
  AddressCache cache;
  std::mt19937 rng(42);
  // Few distinct addresses (mostly hits) drawn in random order, with both
  // families sharing byte patterns, so slots collide and get replaced.
  std::vector<std::pair<int, AddrBytes>> pool;
  for (int i = 0; i < 300; ++i) {
    AddrBytes a{};
    const int ip = i % 3 ? 6 : 4;
    for (int b = 0; b < (ip == 4 ? 4 : 16); ++b) a[b] = static_cast<std::uint8_t>(rng() % 3);
    pool.emplace_back(ip, a);
  }
  for (int i = 0; i < 20000; ++i) {
    const auto& [ip, a] = pool[rng() % pool.size()];
    ASSERT_EQ(cache.get(ip, a), format_address(ip, a)) << i;
  }
}

TEST(TextSink, MakeSinkChoosesByOptions) {
  std::ostringstream out, err;
  Options o;
  EXPECT_NE(dynamic_cast<TextSink*>(make_sink(lines_config(o), out, err).get()), nullptr);
  o.json = true;
  EXPECT_NE(dynamic_cast<JsonSink*>(make_sink(lines_config(o), out, err).get()), nullptr);
}

}  // namespace
}  // namespace tcpconnect

namespace tcpconnect {
namespace {

TEST(TextSink, LifetimeColumns) {
  Options o;
  o.lifetime = true;
  o.accept = true;
  std::ostringstream out, err;
  TextSink sink(lines_config(o), out, err);
  sink.start(StartInfo{"0.1.0", "tp_btf", 1});
  ConnectEvent ev = curl_v4();
  ev.kind = EventKind::Close;
  ev.outcome = Outcome::Established;
  ev.latency_ns = 1'234'567;
  ev.duration_ns = 301'500'000;
  ev.tx_bytes = 100;
  ev.rx_bytes = 2000;
  sink.connect(ev);
  ConnectEvent in = ssh_v6();
  in.kind = EventKind::Close;
  in.inbound = true;
  in.outcome = Outcome::Established;
  in.duration_ns = 5'000'000;
  sink.connect(in);
  EXPECT_EQ(out.str(),
            "PID     COMM         IP DIR SADDR            DADDR            DPORT  OUTCOME      "
            "LAT(ms)  DUR(ms)   TX         RX\n"
            "1234    curl         4  out 10.0.0.1         93.184.216.34    80     established  "
            "1.235    301.500   100        2000\n"
            "4321    ssh          6  in  ::1              ::1              22     established  "
            "-        5.000     0          0\n");
}

TEST(TextSink, FailedColumns) {
  Options o;
  o.failed = true;
  o.lport = true;
  std::ostringstream out, err;
  TextSink sink(lines_config(o), out, err);
  sink.start(StartInfo{"0.1.0", "tp_btf", 1});
  ConnectEvent ev = curl_v4();
  ev.kind = EventKind::Outcome;
  ev.outcome = Outcome::Error;
  ev.err = 101;
  ev.sport = 0;
  sink.connect(ev);
  ev.outcome = Outcome::TimedOut;
  ev.err = 110;
  ev.latency_ns = 3'001'000'000;
  sink.connect(ev);
  EXPECT_EQ(
      out.str(),
      "PID     COMM         IP SADDR            LPORT  DADDR            DPORT OUTCOME      "
      "LAT(ms)\n"
      "1234    curl         4  10.0.0.1         0      93.184.216.34    80    ENETUNREACH  -\n"
      "1234    curl         4  10.0.0.1         0      93.184.216.34    80    timed out    "
      "3001.000\n");
}

}  // namespace
}  // namespace tcpconnect

namespace tcpconnect {
namespace {

TEST(TextSink, SkippedRunsAreReportedApartFromLost) {
  std::ostringstream out, err;
  TextSink sink(lines_config(options({})), out, err);
  sink.finish(FinishInfo{0, 10, 3});
  EXPECT_EQ(err.str(),
            "WARNING: the kernel skipped 3 tracepoint runs (recursion protection); some events "
            "may be missing\n");
}

TEST(TextSink, UntrackedConnectionsAreReported) {
  std::ostringstream out, err;
  TextSink sink(lines_config(options({})), out, err);
  FinishInfo info;
  info.untracked = 2;
  sink.finish(info);
  EXPECT_EQ(err.str(),
            "WARNING: 2 connections left the kernel's table before their end was seen; their "
            "outcome or close records are missing\n");
}

}  // namespace
}  // namespace tcpconnect

namespace tcpconnect {
namespace {

std::string run_with(const Options& o, const std::vector<ConnectEvent>& evs) {
  std::ostringstream out, err;
  TextSink sink(lines_config(o), out, err);
  sink.start(StartInfo{"0.1.0", "tp_btf", 1});
  for (const auto& ev : evs) sink.connect(ev);
  sink.finish(FinishInfo{0, evs.size()});
  return out.str();
}

TEST(TextSinkContainers, NetnsAndContainerColumns) {
  Options o;
  o.container = true;
  ConnectEvent docker = curl_v4();
  docker.netns = 4026532281;
  docker.cgroup =
      "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope";
  docker.container = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  ConnectEvent service = ssh_v6();
  service.netns = 4026531840;
  service.cgroup = "/system.slice/ssh.service";
  ConnectEvent root = curl_v4();
  root.netns = 4026531840;
  root.cgroup = "/";
  ConnectEvent unknown = curl_v4();  // cgroup not resolved
  EXPECT_EQ(
      run_with(o, {docker, service, root, unknown}),
      "PID     COMM         IP SADDR            DADDR            DPORT  NETNS      CONTAINER\n"
      "1234    curl         4  10.0.0.1         93.184.216.34    80     4026532281 0123456789ab\n"
      "4321    ssh          6  ::1              ::1              22     4026531840 ssh.service\n"
      "1234    curl         4  10.0.0.1         93.184.216.34    80     4026531840 -\n"
      "1234    curl         4  10.0.0.1         93.184.216.34    80     0          -\n");
}

TEST(TextSinkDns, QueryColumnIsLast) {
  Options o;
  o.dns = true;
  o.container = true;
  ConnectEvent named = curl_v4();
  named.query = "example.com (250.400ms)";
  ConnectEvent none = ssh_v6();
  none.query = "No DNS Query";
  EXPECT_EQ(run_with(o, {named, none}),
            "PID     COMM         IP SADDR            DADDR            DPORT  NETNS      CONTAINER "
            "    QUERY\n"
            "1234    curl         4  10.0.0.1         93.184.216.34    80     0          -         "
            "    example.com (250.400ms)\n"
            "4321    ssh          6  ::1              ::1              22     0          -         "
            "    No DNS Query\n");
  o.container = false;
  EXPECT_EQ(
      run_with(o, {named}),
      "PID     COMM         IP SADDR            DADDR            DPORT  QUERY\n"
      "1234    curl         4  10.0.0.1         93.184.216.34    80     example.com (250.400ms)\n");
}

}  // namespace
}  // namespace tcpconnect

namespace tcpconnect {
namespace {

TEST(TextSinkProcess, ParentAndCmdlineColumns) {
  Options o;
  o.parent = true;
  o.cmdline = true;
  o.dns = true;
  ConnectEvent ev = curl_v4();
  ev.ppid = 1;
  ev.pcomm = "systemd";
  ev.cmdline = "curl -s https://example.com/\x01";
  ev.query = "example.com";
  EXPECT_EQ(run_with(o, {ev}),
            "PID     COMM         IP SADDR            DADDR            DPORT  PPID    PCOMM        "
            "QUERY CMDLINE\n"
            "1234    curl         4  10.0.0.1         93.184.216.34    80     1       systemd      "
            "example.com curl -s https://example.com/\\x01\n");
}

// A hostile name in every text column: nothing of it reaches the terminal
// unescaped, and the fixed-width columns keep their widths.
TEST(TextSink, HostileTextInEveryColumnIsEscaped) {
  Options o;
  o.parent = true;
  o.container = true;
  o.dns = true;
  o.cmdline = true;
  ConnectEvent ev = curl_v4();
  ev.comm =
      "\xc2\x9b"
      "2J";  // CSI, UTF-8 encoded
  ev.ppid = 1;
  ev.pcomm =
      "\xe2\x80\xae"
      "evil";  // RLO
  ev.netns = 7;
  ev.cgroup = "/x/\x9b\x1b]0;x\x07";  // raw C1, OSC
  ev.query = "a\x1b[2J.example (300.001ms)";
  ev.cmdline = "sh -c \x1b]0;x\x07 \xe2\x81\xa6 back\\slash";
  // CONTAINER grows for the whole escaped name (the header is printed again at the new width).
  EXPECT_EQ(run_with(o, {ev}),
            "PID     COMM         IP SADDR            DADDR            DPORT  PPID    PCOMM        "
            "NETNS      CONTAINER     QUERY CMDLINE\n"
            "PID     COMM         IP SADDR            DADDR            DPORT  PPID    PCOMM        "
            "NETNS      CONTAINER         QUERY CMDLINE\n"
            "1234    \\xc2\\x9b2J   4  10.0.0.1         93.184.216.34    80     1       "
            "\\xe2\\x80\\xae 7          \\x9b\\x1b]0;x\\x07  "
            "a\\x1b[2J.example (300.001ms) sh -c \\x1b]0;x\\x07 \\xe2\\x81\\xa6 back\\\\slash\n");
}

// With a docker ID the CONTAINER column is hex; without one it is the
// cgroup's last component, escaped like any other outside text.
TEST(TextSink, ContainerFromCgroupNameIsEscaped) {
  Options o;
  o.container = true;
  ConnectEvent ev = curl_v4();
  ev.cgroup = "/a/caf\xc3\xa9\xe2\x80\x8f";  // LRM after valid UTF-8
  EXPECT_EQ(
      run_with(o, {ev}),
      "PID     COMM         IP SADDR            DADDR            DPORT  NETNS      CONTAINER\n"
      "PID     COMM         IP SADDR            DADDR            DPORT  NETNS      CONTAINER\n"
      "1234    curl         4  10.0.0.1         93.184.216.34    80     0          "
      "caf\xc3\xa9\\xe2\\x80\\x8f\n");
}

}  // namespace
}  // namespace tcpconnect
