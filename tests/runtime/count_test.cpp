// -c: the in-kernel count table, as the JSON output reports it at the end.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fixture.h"
#include "harness.h"

namespace {

using nlohmann::json;
using rt::Tracer;

class Count : public rt::RuntimeTest {
 protected:
  // Starts tcpconnect -c (no start record in count mode: waits for the banner).
  std::unique_ptr<Tracer> start_count(std::vector<std::string> args) {
    auto t = std::make_unique<Tracer>(std::move(args));
    EXPECT_TRUE(t->wait_stderr("Tracing connect")) << t->err();
    return t;
  }

  // The count records for destination port `port`.
  std::vector<json> counts_for(Tracer& t, int port) {
    std::vector<json> out;
    for (auto& j : records(t, "count"))
      if (j["dport"] == port) out.push_back(j);
    return out;
  }
};

// With -L the source port is part of the key: it is chosen after CLOSE -> SYN_SENT, so each
// connect is counted once its port is known, and three connects are three rows of one. Every
// attach mechanism, since each loads its own programs for the later hooks.
TEST_F(Count, BySourcePortIsOneRowPerConnect) {
  rt::Listener l("127.0.0.1");
  const std::string port = std::to_string(l.port());
  for (std::string mode : {"tp_btf", "raw_tp", "tracepoint"}) {
    SCOPED_TRACE(mode);
    auto t = start_count({"--attach", mode, "-c", "-L", "-j", "-P", port});
    auto c = rt::run_helper({"--count", "3", "127.0.0.1", port});
    ASSERT_EQ(c.size(), 3u);
    std::set<int> sports;
    for (const auto& conn : c) {
      EXPECT_EQ(conn.result, "ok");
      EXPECT_NE(conn.sport, 0);
      sports.insert(conn.sport);
    }
    ASSERT_EQ(sports.size(), 3u) << "the helper's connects share a source port";
    auto rows = counts_for(*t, l.port());
    ASSERT_EQ(rows.size(), 3u) << t->out();
    std::set<int> counted;
    for (const auto& r : rows) {
      EXPECT_EQ(r["connects"], 1) << r.dump();
      EXPECT_EQ(r["saddr"], "127.0.0.1") << r.dump();
      EXPECT_EQ(r["daddr"], "127.0.0.1") << r.dump();
      counted.insert(r.value("sport", 0));
    }
    EXPECT_EQ(counted, sports) << t->out();
  }
}

// The text table with -L: libbpf-tools' LADDR RADDR LPORT RPORT CONNECTS, one row per port.
TEST_F(Count, BySourcePortTextTable) {
  rt::Listener l("127.0.0.1");
  const std::string port = std::to_string(l.port());
  auto t = start_count({"-c", "-L", "-P", port});
  auto c = rt::run_helper({"--count", "2", "127.0.0.1", port});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(t->stop(), 0);
  const auto lines = t->out_lines();
  std::size_t header = 0;
  while (header < lines.size() && lines[header].rfind("LADDR", 0) != 0) ++header;
  ASSERT_LT(header + 2, lines.size()) << t->out();
  std::istringstream h(lines[header]);
  std::vector<std::string> cols{std::istream_iterator<std::string>(h), {}};
  // Then the table's own FIRST LAST EVERY PATTERN.
  ASSERT_GE(cols.size(), 5u) << lines[header];
  EXPECT_EQ(std::vector<std::string>(cols.begin(), cols.begin() + 5),
            (std::vector<std::string>{"LADDR", "RADDR", "LPORT", "RPORT", "CONNECTS"}));
  std::set<int> shown;
  for (std::size_t i = header + 1; i < header + 3; ++i) {
    std::istringstream row(lines[i]);
    std::string laddr, raddr, lport, rport, n;
    row >> laddr >> raddr >> lport >> rport >> n;
    EXPECT_EQ(rport, port) << lines[i];
    EXPECT_EQ(n, "1") << lines[i];
    shown.insert(std::stoi(lport));
  }
  EXPECT_EQ(shown, (std::set<int>{c[0].sport, c[1].sport})) << t->out();
}

// Without -L the same connects are one row of three.
TEST_F(Count, WithoutSourcePortIsOneRow) {
  rt::Listener l("127.0.0.1");
  const std::string port = std::to_string(l.port());
  auto t = start_count({"-c", "-j", "-P", port});
  auto c = rt::run_helper({"--count", "3", "127.0.0.1", port});
  ASSERT_EQ(c.size(), 3u);
  auto rows = counts_for(*t, l.port());
  ASSERT_EQ(rows.size(), 1u) << t->out();
  EXPECT_EQ(rows[0]["connects"], 3) << rows[0].dump();
}

// The tables of -c --interval: one per interval (a time line, the header, the rows), each with
// that interval's connects and failures; the last one, a part of an interval, at exit.
struct IntervalTable {
  std::string time;
  std::uint64_t connects = 0, failed = 0;  // of the row for the port asked
  bool has_row = false;
};

std::vector<IntervalTable> interval_tables(const std::string& out, const std::string& port) {
  std::vector<IntervalTable> tables;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) {
      tables.emplace_back();
      continue;
    }
    if (tables.empty()) continue;
    if (tables.back().time.empty()) {
      tables.back().time = line;
      continue;
    }
    std::istringstream f(line);
    std::string laddr, raddr, rport, connects, failed;
    f >> laddr >> raddr >> rport >> connects >> failed;
    if (raddr == "127.0.0.1" && rport == port) {
      tables.back().has_row = true;
      tables.back().connects = std::stoull(connects);
      tables.back().failed = std::stoull(failed);
    }
  }
  return tables;
}

// A client connecting every 200 ms for 3.5 s, every other connect refused.
void connect_every_200ms(int open_port, int closed_port) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 17; ++i) {
    std::this_thread::sleep_until(start + std::chrono::milliseconds(200 * i));
    rt::run_helper({"127.0.0.1", std::to_string(i % 2 ? closed_port : open_port)});
  }
  std::this_thread::sleep_until(start + std::chrono::milliseconds(3500));
}

TEST_F(Count, IntervalTablesCountEachInterval) {
  rt::Listener l("127.0.0.1");
  const std::string port = std::to_string(l.port());
  auto t = start_count({"-c", "--interval", "1", "-P", port});
  connect_every_200ms(l.port(), l.port());
  ASSERT_EQ(t->stop(), 0) << t->err();
  const auto tables = interval_tables(t->out(), port);
  // Three full intervals and the part of the fourth at exit.
  ASSERT_GE(tables.size(), 4u) << t->out();
  for (std::size_t i = 0; i + 1 < tables.size() && i < 3; ++i) {
    SCOPED_TRACE("table " + std::to_string(i));
    EXPECT_EQ(tables[i].time.size(), 8u) << tables[i].time;  // HH:MM:SS
    ASSERT_TRUE(tables[i].has_row) << t->out();
    EXPECT_GE(tables[i].connects, 4u) << t->out();
    EXPECT_LE(tables[i].connects, 6u) << t->out();
    EXPECT_EQ(tables[i].failed, 0u);
  }
  std::uint64_t total = 0;
  for (const auto& tb : tables) total += tb.connects;
  EXPECT_EQ(total, 17u) << t->out();  // every connect in exactly one table, the last at exit
}

TEST_F(Count, IntervalTablesCumulativeGrowAndCountFailures) {
  rt::Listener l("127.0.0.1");
  const int closed = rt::closed_port("127.0.0.1");
  auto t = start_count({"-c", "--interval", "1", "--cumulative", "-P",
                        std::to_string(l.port()) + "," + std::to_string(closed)});
  connect_every_200ms(l.port(), closed);
  ASSERT_EQ(t->stop(), 0) << t->err();
  const auto open = interval_tables(t->out(), std::to_string(l.port()));
  const auto refused = interval_tables(t->out(), std::to_string(closed));
  ASSERT_GE(open.size(), 4u) << t->out();
  for (std::size_t i = 1; i < open.size(); ++i) {
    EXPECT_GE(open[i].connects, open[i - 1].connects) << t->out();
    EXPECT_GE(refused[i].connects, refused[i - 1].connects) << t->out();
  }
  EXPECT_GT(open[2].connects, open[0].connects) << t->out();
  // The table at exit has everything: 9 established, 8 refused (every one failed).
  EXPECT_EQ(open.back().connects, 9u) << t->out();
  EXPECT_EQ(open.back().failed, 0u) << t->out();
  EXPECT_EQ(refused.back().connects, 8u) << t->out();
  EXPECT_EQ(refused.back().failed, 8u) << t->out();
}

}  // namespace

// Six tracers count the same connects at once, each in its own table: every one of them counts
// every connect. With -L each connect is a new key, so every connect stores a new entry in six
// tables: the case where entries allocated on use ran out and connects were counted lost (about
// 1 in 20 of 2000 refused connects with a table allocated on use, on this kernel; refused
// connects come fastest, their keys stored in the softirq that ends the handshake).
TEST_F(Count, SixInstancesEachCountEveryConnect) {
  constexpr int kOk = 300, kRefused = 2000;
  rt::Listener l("127.0.0.1");
  const int refused = rt::closed_port("127.0.0.1");
  const std::string ports = std::to_string(l.port()) + "," + std::to_string(refused);
  std::vector<std::unique_ptr<Tracer>> tracers;
  for (int i = 0; i < 6; ++i) tracers.push_back(start_count({"-c", "-L", "-j", "-P", ports}));
  auto failed =
      rt::run_helper({"--count", std::to_string(kRefused), "127.0.0.1", std::to_string(refused)});
  auto ok = rt::run_helper({"--count", std::to_string(kOk), "127.0.0.1", std::to_string(l.port())});
  ASSERT_EQ(ok.size(), std::size_t{kOk});
  ASSERT_EQ(failed.size(), std::size_t{kRefused});
  for (const auto& c : ok) ASSERT_EQ(c.result, "ok");
  for (const auto& c : failed) ASSERT_EQ(c.result, "ECONNREFUSED");
  for (std::size_t i = 0; i < tracers.size(); ++i) {
    SCOPED_TRACE("instance " + std::to_string(i));
    Tracer& t = *tracers[i];
    int to_listener = 0, to_refused = 0;
    for (const auto& r : counts_for(t, l.port())) to_listener += r["connects"].get<int>();
    for (const auto& r : counts_for(t, refused)) to_refused += r["connects"].get<int>();
    EXPECT_EQ(to_listener, kOk) << t.err();
    EXPECT_EQ(to_refused, kRefused) << t.err();
    EXPECT_TRUE(records(t, "lost").empty()) << t.out().substr(0, 2000);
    EXPECT_EQ(t.err().find("lost"), std::string::npos) << t.err();
  }
}

// A full table still says so: connects to keys beyond the table's 10240 are not counted but
// reported lost, and the rows plus the lost add up to them all: 10340 refused connects, each to
// its own address in 127/8, so each its own key.
TEST_F(Count, FullTableReportsTheRestLost) {
  constexpr std::size_t kKeys = 10240;  // TC_COUNT_ENTRIES, as documented
  constexpr std::size_t kConnects = kKeys + 100;
  const int refused = rt::closed_port("127.0.0.1");
  auto t = start_count({"-c", "-j", "-P", std::to_string(refused)});
  auto failed = rt::run_helper(
      {"--spread", "--count", std::to_string(kConnects), "127.1.0.1", std::to_string(refused)});
  ASSERT_EQ(failed.size(), kConnects);
  ASSERT_EQ(failed.back().daddr, "127.1.40.100");
  const auto rows = counts_for(*t, refused);
  std::uint64_t counted = 0, lost = 0;
  for (const auto& r : rows) counted += r["connects"].get<std::uint64_t>();
  for (const auto& r : records(*t, "end")) lost = r["lost"].get<std::uint64_t>();
  EXPECT_EQ(rows.size(), kKeys);
  EXPECT_EQ(counted, kKeys) << t->err();
  EXPECT_EQ(lost, kConnects - kKeys) << t->err();
  EXPECT_FALSE(records(*t, "lost").empty()) << "no lost record";
}
