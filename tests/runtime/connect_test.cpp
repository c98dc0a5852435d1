// Runtime tests: the real binary, real BPF, real connections from a helper
// process with a known PID. Each asserts the exact line tcpconnect printed.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "fixture.h"

using namespace std::chrono;
using rt::Conn;
using rt::Tracer;

namespace {

const char* kHeader = "PID     COMM         IP SADDR            DADDR            DPORT";

std::string rtrim(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// bcc's row layout: %-7d %-12.12s %-2d %-16s %-16s %-6d
std::string row(const Conn& c, const std::string& comm = "conn_helper") {
  return rtrim(fmt::format("{:<7} {:<12} {:<2} {:<16} {:<16} {:<6}", c.pid, comm, c.af, c.saddr,
                           c.daddr, c.dport));
}

class Runtime : public rt::RuntimeTest {
 protected:
  // Starts tcpconnect and waits for its header (or, with "", the banner).
  std::unique_ptr<Tracer> start(std::vector<std::string> args, const std::string& ready = "PID") {
    if (!ready.empty()) return RuntimeTest::start(std::move(args), ready);
    auto t = std::make_unique<Tracer>(std::move(args));
    EXPECT_TRUE(t->wait_stderr("Tracing connect")) << t->err();
    return t;
  }

  // Stops the tracer and returns its stdout lines, asserting a clean exit.
  std::vector<std::string> finish(Tracer& t) {
    int status = t.stop();
    EXPECT_EQ(status, 0) << "stderr: " << t.err();
    return t.out_lines();
  }
};

TEST_F(Runtime, Ipv4ConnectToListener) {
  rt::Listener l("127.0.0.1");
  auto t = start({});
  auto c = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(c[0].result, "ok");
  auto lines = finish(*t);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], kHeader);
  auto mine = rt::lines_for_pid(lines, c[0].pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_EQ(mine[0], row(c[0]));
}

TEST_F(Runtime, Ipv6ConnectToLoopback) {
  rt::Listener l("::1");
  auto t = start({});
  auto c = rt::run_helper({"::1", std::to_string(l.port())});
  ASSERT_EQ(c[0].result, "ok");
  auto mine = rt::lines_for_pid(finish(*t), c[0].pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_EQ(mine[0], row(c[0]));
  EXPECT_EQ(c[0].af, 6);
  EXPECT_NE(mine[0].find(" 6  ::1 "), std::string::npos) << mine[0];
}

TEST_F(Runtime, RefusedPortIsTraced) {
  int port = rt::closed_port("127.0.0.1");
  auto t = start({"-L"});
  auto c = rt::run_helper({"127.0.0.1", std::to_string(port)});
  ASSERT_EQ(c[0].result, "ECONNREFUSED");
  auto mine = rt::lines_for_pid(finish(*t), c[0].pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  // After a refusal the kernel releases the port (getsockname says 0), but
  // the connect did use one: the line shows it.
  std::istringstream in(mine[0]);
  std::string pid, comm, ip, saddr, lport, daddr, dport;
  in >> pid >> comm >> ip >> saddr >> lport >> daddr >> dport;
  EXPECT_EQ(comm, "conn_helper");
  EXPECT_EQ(saddr, "127.0.0.1");
  EXPECT_GT(std::stoi(lport), 0);
  EXPECT_EQ(daddr, "127.0.0.1");
  EXPECT_EQ(dport, std::to_string(port));
}

TEST_F(Runtime, LportIsTheGetsocknamePort) {
  rt::Listener l("127.0.0.1");
  auto t = start({"-L"});
  auto c = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
  ASSERT_EQ(c[0].result, "ok");
  auto lines = finish(*t);
  EXPECT_EQ(lines[0], "PID     COMM         IP SADDR            LPORT  DADDR            DPORT");
  auto mine = rt::lines_for_pid(lines, c[0].pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_EQ(mine[0],
            rtrim(fmt::format("{:<7} {:<12} {:<2} {:<16} {:<6} {:<16} {:<5}", c[0].pid,
                              "conn_helper", 4, "127.0.0.1", c[0].sport, "127.0.0.1", c[0].dport)));
}

TEST_F(Runtime, SourcePortAliasS) {
  rt::Listener l("::1");
  auto t = start({"-s"});
  auto c = rt::run_helper({"::1", std::to_string(l.port())});
  auto mine = rt::lines_for_pid(finish(*t), c[0].pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_NE(mine[0].find(fmt::format(" ::1              {:<6} ::1 ", c[0].sport)),
            std::string::npos)
      << mine[0];
}

TEST_F(Runtime, PidFilter) {
  rt::Listener l("127.0.0.1");
  // Two helpers wait on stdin so that the first one's PID is known before
  // the tracer starts; the filter must keep it and drop the other.
  auto a = rt::run_helper({"127.0.0.1", std::to_string(l.port())});  // warm-up, other pid
  std::vector<std::string> args = {"--wait-stdin", "127.0.0.1", std::to_string(l.port())};
  rt::PendingHelper target(args);
  auto t = start({"-p", std::to_string(target.pid())});
  auto other = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
  auto mine_conn = target.go();
  auto lines = finish(*t);
  ASSERT_EQ(mine_conn.size(), 1u);
  auto mine = rt::lines_for_pid(lines, target.pid());
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_EQ(mine[0], row(mine_conn[0]));
  EXPECT_TRUE(rt::lines_for_pid(lines, other[0].pid).empty()) << t->out();
  EXPECT_EQ(lines.size(), 2u) << t->out();  // header + the one connect
  (void)a;
}

TEST_F(Runtime, PortFilter) {
  rt::Listener keep("127.0.0.1"), drop("127.0.0.1");
  auto t = start({"-P", fmt::format("{},{}", keep.port(), 1)});
  auto k = rt::run_helper({"127.0.0.1", std::to_string(keep.port())});
  auto d = rt::run_helper({"127.0.0.1", std::to_string(drop.port())});
  auto lines = finish(*t);
  auto mine = rt::lines_for_pid(lines, k[0].pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_EQ(mine[0], row(k[0]));
  EXPECT_TRUE(rt::lines_for_pid(lines, d[0].pid).empty()) << t->out();
}

TEST_F(Runtime, UidFilterAndUidColumn) {
  rt::Listener l("127.0.0.1");
  auto t = start({"-u", "65534", "-U"}, "UID");
  auto nobody = rt::run_helper({"--uid", "65534", "127.0.0.1", std::to_string(l.port())});
  auto root = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
  auto lines = finish(*t);
  EXPECT_EQ(lines[0], "UID   PID     COMM         IP SADDR            DADDR            DPORT");
  ASSERT_EQ(nobody[0].uid, 65534);
  auto mine = rt::lines_for_pid(lines, nobody[0].pid, 1);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_EQ(mine[0], fmt::format("{:<6}{}", 65534, row(nobody[0])));
  EXPECT_TRUE(rt::lines_for_pid(lines, root[0].pid, 1).empty()) << t->out();
}

TEST_F(Runtime, FamilyFilters) {
  rt::Listener l4("127.0.0.1"), l6("::1");
  for (std::string flag : {"-4", "-6"}) {
    auto t = start({flag});
    auto c4 = rt::run_helper({"127.0.0.1", std::to_string(l4.port())});
    auto c6 = rt::run_helper({"::1", std::to_string(l6.port())});
    auto lines = finish(*t);
    auto m4 = rt::lines_for_pid(lines, c4[0].pid);
    auto m6 = rt::lines_for_pid(lines, c6[0].pid);
    if (flag == "-4") {
      ASSERT_EQ(m4.size(), 1u) << t->out();
      EXPECT_EQ(m4[0], row(c4[0]));
      EXPECT_TRUE(m6.empty()) << t->out();
    } else {
      ASSERT_EQ(m6.size(), 1u) << t->out();
      EXPECT_EQ(m6[0], row(c6[0]));
      EXPECT_TRUE(m4.empty()) << t->out();
    }
  }
}

TEST_F(Runtime, TimestampColumn) {
  rt::Listener l("127.0.0.1");
  auto t = start({"-t", "-p", "1"}, "TIME(s)");  // nothing from PID 1: header only
  auto lines = finish(*t);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "TIME(s)  PID     COMM         IP SADDR            DADDR            DPORT");
  auto t2 = start({"-t"}, "TIME(s)");
  auto c = rt::run_helper({"--count", "2", "127.0.0.1", std::to_string(l.port())});
  auto mine = rt::lines_for_pid(finish(*t2), c[0].pid, 1);
  ASSERT_EQ(mine.size(), 2u) << t2->out();
  double t0 = std::stod(mine[0].substr(0, 9));
  double t1 = std::stod(mine[1].substr(0, 9));
  EXPECT_GE(t1, t0);
  EXPECT_EQ(mine[1].substr(9), row(c[1]));
}

TEST_F(Runtime, CountTableHasExactlyN) {
  rt::Listener l("127.0.0.1");
  auto t = start({"-c", "-P", std::to_string(l.port())}, "");
  auto c = rt::run_helper({"--count", "7", "127.0.0.1", std::to_string(l.port())});
  ASSERT_EQ(c.size(), 7u);
  auto lines = finish(*t);
  // bcc's columns first, exactly; then FIRST LAST EVERY PATTERN.
  std::string expected_row =
      fmt::format("{:<25} {:<25} {:<20} {:<10} ", "127.0.0.1", "127.0.0.1", l.port(), 7);
  std::string header =
      fmt::format("{:<25} {:<25} {:<20} {:<10} {:<12} {:<12} {:<7} {}", "LADDR", "RADDR", "RPORT",
                  "CONNECTS", "FIRST", "LAST", "EVERY", "PATTERN");
  std::vector<std::string> nonempty;
  for (auto& s : lines)
    if (!s.empty()) nonempty.push_back(s);
  ASSERT_EQ(nonempty.size(), 2u) << t->out();
  EXPECT_EQ(nonempty[0], header);
  EXPECT_EQ(nonempty[1].substr(0, expected_row.size()), expected_row);
}

TEST_F(Runtime, IoUringConnectIsTraced) {
  rt::Listener l("127.0.0.1");
  auto t = start({});
  auto c = rt::run_helper({"--method", "uring", "127.0.0.1", std::to_string(l.port())});
  ASSERT_EQ(c[0].result, "ok");
  auto lines = finish(*t);
  auto mine = rt::lines_for_pid(lines, c[0].pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  // The connect may be issued inline (conn_helper) or by an io-wq worker
  // thread of the same process (iou-wrk-<tid>).
  std::istringstream in(mine[0]);
  std::string pid, comm;
  in >> pid >> comm;
  Conn expect = c[0];
  EXPECT_TRUE(comm == "conn_helper" || comm.rfind("iou-", 0) == 0) << mine[0];
  EXPECT_EQ(mine[0], row(expect, comm));
}

TEST_F(Runtime, FastOpenSendtoIsTraced) {
  rt::Listener l("127.0.0.1");
  auto t = start({"-L"});
  auto c = rt::run_helper({"--method", "tfo", "127.0.0.1", std::to_string(l.port())});
  ASSERT_EQ(c[0].result, "ok");
  auto mine = rt::lines_for_pid(finish(*t), c[0].pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_EQ(mine[0],
            rtrim(fmt::format("{:<7} {:<12} {:<2} {:<16} {:<6} {:<16} {:<5}", c[0].pid,
                              "conn_helper", 4, "127.0.0.1", c[0].sport, "127.0.0.1", c[0].dport)));
}

TEST_F(Runtime, JsonCarriesTheSameValuesAsText) {
  rt::Listener l4("127.0.0.1"), l6("::1");
  auto text = start({"-L", "-U"}, "UID");
  auto json = start({"--json"}, "{\"type\":\"start\"");
  auto c4 = rt::run_helper({"127.0.0.1", std::to_string(l4.port())});
  auto c6 = rt::run_helper({"::1", std::to_string(l6.port())});
  auto tlines = finish(*text);
  auto jlines = finish(*json);
  ASSERT_GE(jlines.size(), 3u);
  int connects = 0;
  for (auto& line : jlines) {
    auto j = nlohmann::json::parse(line);  // throws (fails) on invalid JSON
    ASSERT_TRUE(j.contains("type")) << line;
    if (j["type"] != "connect") continue;
    connects++;
    for (auto& c : {c4[0], c6[0]}) {
      if (j["pid"] != c.pid) continue;
      EXPECT_EQ(j["tid"], c.tid);
      EXPECT_EQ(j["uid"], c.uid);
      EXPECT_EQ(j["comm"], "conn_helper");
      EXPECT_EQ(j["af"], c.af);
      EXPECT_EQ(j["saddr"], c.saddr);
      EXPECT_EQ(j["sport"], c.sport);
      EXPECT_EQ(j["daddr"], c.daddr);
      EXPECT_EQ(j["dport"], c.dport);
      EXPECT_TRUE(j["ts_ns"].is_number_unsigned());
      auto t = rt::lines_for_pid(tlines, c.pid, 1);
      ASSERT_EQ(t.size(), 1u) << text->out();
      EXPECT_EQ(t[0], rtrim(fmt::format("{:<6}{:<7} {:<12} {:<2} {:<16} {:<6} {:<16} {:<5}",
                                        j["uid"].get<int>(), j["pid"].get<int>(),
                                        j["comm"].get<std::string>(), j["af"].get<int>(),
                                        j["saddr"].get<std::string>(), j["sport"].get<int>(),
                                        j["daddr"].get<std::string>(), j["dport"].get<int>())));
    }
  }
  EXPECT_GE(connects, 2);
  auto first = nlohmann::json::parse(jlines.front());
  EXPECT_EQ(first["type"], "start");
  auto last = nlohmann::json::parse(jlines.back());
  EXPECT_EQ(last["type"], "end");
}

TEST_F(Runtime, DurationStopsByItself) {
  auto begin = steady_clock::now();
  Tracer t({"--duration", "1"});
  ASSERT_TRUE(t.wait_ready("PID"));
  int status = t.wait_exit(seconds(10));
  auto took = duration_cast<milliseconds>(steady_clock::now() - begin).count();
  EXPECT_EQ(status, 0) << t.err();
  EXPECT_GE(took, 1000);
  EXPECT_LT(took, 6000);  // generous: load time under a loaded CI machine
}

TEST_F(Runtime, NothingOfOursRemainsAfterExit) {
  auto t = start({"--lifetime", "--accept"});  // the mode with the most programs
  const std::set<int> ids = rt::prog_ids_of(t->pid());
  EXPECT_GE(ids.size(), 4u);  // the check can see them
  EXPECT_EQ(rt::still_loaded(ids), ids);
  EXPECT_EQ(t->stop(SIGTERM), 0) << t->err();
  EXPECT_TRUE(rt::still_loaded(ids).empty());
}

TEST_F(Runtime, BadInputAttachesNothing) {
  Tracer t({"-P", "80,,81"});
  EXPECT_EQ(t.wait_exit(seconds(10)), 2);
  auto err = t.err();
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_TRUE(t.out().empty());
}

TEST_F(Runtime, ClosedPipeExitsQuietly) {
  rt::Listener l("127.0.0.1");
  std::string cmd = fmt::format("set -o pipefail; {} | head -n 2", TCPCONNECT_BIN);
  rt::Tracer sh("/bin/bash", {"-c", cmd});
  ASSERT_TRUE(sh.wait_stderr("Tracing connect"));
  std::set<int> ids;
  for (pid_t kid : rt::children_of(sh.pid())) {
    auto k = rt::prog_ids_of(kid);
    ids.insert(k.begin(), k.end());
  }
  EXPECT_FALSE(ids.empty());
  rt::run_helper({"--count", "5", "127.0.0.1", std::to_string(l.port())});
  EXPECT_EQ(sh.wait_exit(seconds(10)), 0) << sh.err();
  auto lines = sh.out_lines();
  ASSERT_EQ(lines.size(), 2u) << sh.out();  // head kept the header and one row
  EXPECT_EQ(lines[0], kHeader);
  EXPECT_EQ(sh.err(), "Tracing connect ... Hit Ctrl-C to end\n");
  // The kernel frees a program once its last reference is gone, a little after the exit.
  std::set<int> left = rt::still_loaded(ids);
  for (int i = 0; i < 50 && !left.empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(20));
    left = rt::still_loaded(ids);
  }
  EXPECT_TRUE(left.empty()) << fmt::format("{}", fmt::join(left, " "));
}

TEST_F(Runtime, LineArrivesPromptlyThroughAPipe) {
  rt::Listener l("127.0.0.1");
  auto t = start({"-P", std::to_string(l.port())});
  auto before = steady_clock::now();
  auto c = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
  // Functional check that output is not held back until a buffer fills or
  // the tracer exits; the latency itself is measured by bench/.
  ASSERT_TRUE(t->wait_stdout(fmt::format("\n{} ", c[0].pid), seconds(2))) << t->out();
  auto ms = duration_cast<milliseconds>(steady_clock::now() - before).count();
  RecordProperty("line_latency_ms_upper_bound", static_cast<int>(ms));
  EXPECT_EQ(t->stop(), 0);
}

}  // namespace

namespace {

TEST_F(Runtime, NotRootFailsWithAHint) {
  // A copy that user nobody can reach whatever the checkout's permissions.
  char dir[] = "/tmp/tcpconnect-nobody.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string bin = std::string(dir) + "/tcpconnect";
  ASSERT_EQ(std::system(
                fmt::format("cp {} {} && chmod 755 {} {}", TCPCONNECT_BIN, bin, dir, bin).c_str()),
            0);
  rt::Tracer t("/usr/bin/setpriv", {"--reuid=65534", "--regid=65534", "--clear-groups", bin});
  int status = t.wait_exit(seconds(20));
  std::system(fmt::format("rm -rf {}", dir).c_str());
  EXPECT_EQ(status, 1);
  EXPECT_EQ(t.err(),
            "tcpconnect: failed to load BPF programs: Operation not permitted (tried tp_btf, "
            "raw_tp, tracepoint; -v shows each); hint: run tcpconnect as root (it needs CAP_BPF "
            "and CAP_PERFMON)\n");
  EXPECT_TRUE(t.out().empty());
}

// Each attach mechanism, forced, gives the same exact line.
TEST_F(Runtime, EveryForcedAttachMechanism) {
  rt::Listener l("127.0.0.1");
  for (std::string mode : {"tp_btf", "raw_tp", "tracepoint"}) {
    auto t = start({"--attach", mode, "-v", "-L"});
    EXPECT_NE(t->err().find("attach: " + mode + " for sock:inet_sock_set_state"), std::string::npos)
        << t->err();
    auto c = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
    auto mine = rt::lines_for_pid(finish(*t), c[0].pid);
    ASSERT_EQ(mine.size(), 1u) << mode << "\n" << t->out();
    EXPECT_EQ(mine[0], rtrim(fmt::format("{:<7} {:<12} {:<2} {:<16} {:<6} {:<16} {:<5}", c[0].pid,
                                         "conn_helper", 4, "127.0.0.1", c[0].sport, "127.0.0.1",
                                         c[0].dport)))
        << mode;
  }
}

}  // namespace
