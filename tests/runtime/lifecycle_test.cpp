// Runtime tests of the connection lifecycle: outcome, handshake latency,
// lifetime and bytes, short-lived and periodic connections. Real sockets on
// loopback; exact fields asserted from the JSON records and the text lines.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fixture.h"

using namespace std::chrono;
using nlohmann::json;
using rt::Tracer;

namespace {

class Lifecycle : public rt::RuntimeTest {};

using rt::for_pid;
const char* kStart = rt::kJsonStart;

TEST_F(Lifecycle, EstablishedConnectionLifetimeAndBytes) {
  rt::Listener l("127.0.0.1", 20);  // the server sends 20 bytes
  auto t = start({"--lifetime", "--json", "-P", std::to_string(l.port())}, kStart);
  auto c =
      rt::run_helper({"--send", "10", "--hold-ms", "300", "127.0.0.1", std::to_string(l.port())});
  ASSERT_EQ(c[0].result, "ok");
  // The close is reported when the FIN exchange ends, just after the helper.
  ASSERT_TRUE(t->wait_stdout("\"type\":\"close\"", seconds(3))) << t->out();
  auto mine = for_pid(records(*t, "close"), c[0].pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  const json& j = mine[0];
  EXPECT_EQ(j["outcome"], "established");
  EXPECT_EQ(j["error"], "");
  EXPECT_EQ(j["dir"], "out");
  EXPECT_EQ(j["comm"], "conn_helper");
  EXPECT_EQ(j["sport"], c[0].sport);
  EXPECT_EQ(j["dport"], l.port());
  EXPECT_GT(j["latency_ns"].get<std::uint64_t>(), 0u);
  const double ms = j["duration_ns"].get<double>() / 1e6;
  EXPECT_GT(ms, 300 * 0.8);
  EXPECT_LT(ms, 300 * 1.2);
  EXPECT_EQ(j["tx_bytes"], 10);
  EXPECT_EQ(j["rx_bytes"], 20);
}

TEST_F(Lifecycle, LifetimeTextColumns) {
  rt::Listener l("127.0.0.1", 5);
  auto t = start({"--lifetime", "-P", std::to_string(l.port())}, "PID");
  // Held briefly so the 3 bytes are acknowledged before the close (TX counts
  // acknowledged bytes; closing with the greeting unread sends a RST).
  auto c =
      rt::run_helper({"--send", "3", "--hold-ms", "50", "127.0.0.1", std::to_string(l.port())});
  ASSERT_TRUE(t->wait_stdout(fmt::format("\n{} ", c[0].pid), seconds(3))) << t->out();
  EXPECT_EQ(t->stop(), 0);
  auto lines = t->out_lines();
  EXPECT_EQ(lines[0],
            "PID     COMM         IP SADDR            DADDR            DPORT  OUTCOME      "
            "LAT(ms)  DUR(ms)   TX         RX");
  auto mine = rt::lines_for_pid(lines, c[0].pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  std::istringstream in(mine[0]);
  std::string pid, comm, ip, saddr, daddr, dport, outcome, lat, dur, tx, rx;
  in >> pid >> comm >> ip >> saddr >> daddr >> dport >> outcome >> lat >> dur >> tx >> rx;
  EXPECT_EQ(comm, "conn_helper");
  EXPECT_EQ(dport, std::to_string(l.port()));
  EXPECT_EQ(outcome, "established");
  EXPECT_GT(std::stod(lat), 0);
  EXPECT_GT(std::stod(dur), 0);
  EXPECT_EQ(tx, "3");
  EXPECT_EQ(rx, "5");
}

TEST_F(Lifecycle, RefusedIsReportedAsRefused) {
  int port = rt::closed_port("127.0.0.1");
  for (bool nonblock : {false, true}) {
    auto t = start({"--failed", "--json", "-P", std::to_string(port)}, kStart);
    std::vector<std::string> args = {"127.0.0.1", std::to_string(port)};
    if (nonblock) args.insert(args.begin(), "--nonblock");
    auto c = rt::run_helper(args);
    ASSERT_EQ(c[0].result, "ECONNREFUSED");
    ASSERT_TRUE(t->wait_stdout("\"type\":\"outcome\"", seconds(3))) << t->out();
    auto mine = for_pid(records(*t, "outcome"), c[0].pid);
    // One record, with the final result: not EINPROGRESS for non-blocking.
    ASSERT_EQ(mine.size(), 1u) << (nonblock ? "nonblock " : "blocking ") << t->out();
    EXPECT_EQ(mine[0]["outcome"], "refused");
    EXPECT_EQ(mine[0]["error"], "ECONNREFUSED");
    EXPECT_GT(mine[0]["latency_ns"].get<std::uint64_t>(), 0u);
    EXPECT_GT(mine[0]["sport"].get<int>(), 0);
  }
}

TEST_F(Lifecycle, FailedExcludesEstablished) {
  rt::Listener l("127.0.0.1");
  auto t = start({"--failed", "-P", std::to_string(l.port())}, "PID");
  auto c = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
  ASSERT_EQ(c[0].result, "ok");
  auto lines = (t->stop(), t->out_lines());
  EXPECT_EQ(lines.size(), 1u) << t->out();  // the header only
}

TEST_F(Lifecycle, OutcomeColumnsInDefaultMode) {
  rt::Listener l("127.0.0.1");
  auto t = start({"--outcome", "-P", std::to_string(l.port())}, "PID");
  auto c = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
  ASSERT_TRUE(t->wait_stdout(fmt::format("\n{} ", c[0].pid), seconds(3))) << t->out();
  EXPECT_EQ(t->stop(), 0);
  auto lines = t->out_lines();
  EXPECT_EQ(
      lines[0],
      "PID     COMM         IP SADDR            DADDR            DPORT  OUTCOME      LAT(ms)");
  auto mine = rt::lines_for_pid(lines, c[0].pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  const std::string prefix =
      fmt::format("{:<7} {:<12} {:<2} {:<16} {:<16} {:<6} {:<12} ", c[0].pid, "conn_helper", 4,
                  "127.0.0.1", "127.0.0.1", l.port(), "established");
  EXPECT_EQ(mine[0].substr(0, prefix.size()), prefix);
  EXPECT_GT(std::stod(mine[0].substr(prefix.size())), 0);
}

TEST_F(Lifecycle, ShorterThanKeepsShortDropsLong) {
  rt::Listener l("127.0.0.1");
  auto t = start({"--shorter-than", "100ms", "--json", "-P", std::to_string(l.port())}, kStart);
  auto quick = rt::run_helper({"--hold-ms", "20", "127.0.0.1", std::to_string(l.port())});
  auto slow = rt::run_helper({"--hold-ms", "500", "127.0.0.1", std::to_string(l.port())});
  ASSERT_TRUE(t->wait_stdout("\"type\":\"close\"", seconds(3))) << t->out();
  std::this_thread::sleep_for(milliseconds(200));  // the slow one's close, if it were printed
  auto closes = records(*t, "close");
  auto q = for_pid(closes, quick[0].pid);
  ASSERT_EQ(q.size(), 1u) << t->out();
  EXPECT_LT(q[0]["duration_ns"].get<std::uint64_t>(), 100'000'000u);
  EXPECT_GE(q[0]["duration_ns"].get<std::uint64_t>(), 20'000'000u);
  EXPECT_TRUE(for_pid(closes, slow[0].pid).empty()) << t->out();
}

TEST_F(Lifecycle, PeriodicCallerByProcess) {
  rt::Listener l("127.0.0.1");
  auto t = std::make_unique<Tracer>(
      std::vector<std::string>{"-c", "--by-process", "-P", std::to_string(l.port())});
  ASSERT_TRUE(t->wait_stderr("Tracing connect"));
  // A connection every 200 ms for 3 s: each is held 200 ms, then the next.
  auto c =
      rt::run_helper({"--count", "16", "--hold-ms", "200", "127.0.0.1", std::to_string(l.port())});
  ASSERT_EQ(c.size(), 16u);
  EXPECT_EQ(t->stop(), 0) << t->err();
  auto lines = t->out_lines();
  std::vector<std::string> rows;
  for (auto& line : lines)
    if (line.rfind(std::to_string(c[0].pid) + " ", 0) == 0) rows.push_back(line);
  ASSERT_EQ(rows.size(), 1u) << t->out();
  std::istringstream in(rows[0]);
  std::string pid, comm, laddr, raddr, rport, connects, first, last, every, pattern;
  in >> pid >> comm >> laddr >> raddr >> rport >> connects >> first >> last >> every >> pattern;
  EXPECT_EQ(comm, "conn_helper");
  EXPECT_EQ(rport, std::to_string(l.port()));
  EXPECT_EQ(connects, "16");
  ASSERT_EQ(every.back(), 's') << rows[0];
  const double s = std::stod(every);
  EXPECT_GT(s, 0.18);
  EXPECT_LT(s, 0.22);
  EXPECT_EQ(pattern, "periodic") << rows[0];
}

}  // namespace
