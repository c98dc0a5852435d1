// Runtime tests of the other tools of the family, run under their names (tcpaccept, tcplife,
// tcpconnlat), and of -T: real connections on loopback, exact values asserted column by column
// from the lines printed.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "fixture.h"
#include "netns.h"

using namespace std::chrono;
using nlohmann::json;

namespace {

class Tools : public rt::RuntimeTest {};

// The whitespace-separated fields of a line.
std::vector<std::string> fields(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string f; in >> f;) out.push_back(f);
  return out;
}

// The lines after the header whose field `col` is `value`.
std::vector<std::vector<std::string>> rows_with(const rt::Tracer& t, std::size_t col,
                                                const std::string& value) {
  std::vector<std::vector<std::string>> out;
  const auto lines = t.out_lines();
  for (std::size_t i = 1; i < lines.size(); ++i) {
    auto f = fields(lines[i]);
    if (f.size() > col && f[col] == value) out.push_back(f);
  }
  return out;
}

// The local time now, HH:MM:SS, `offset_s` from now.
std::string hms_now(int offset_s = 0) {
  const std::time_t now = std::time(nullptr) + offset_s;
  std::tm tm{};
  localtime_r(&now, &tm);
  return fmt::format("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec);
}

TEST_F(Tools, TcpacceptPrintsAcceptsWithBccColumns) {
  rt::Listener l4("127.0.0.1"), l6("::1"), other("127.0.0.1");
  const std::string me = std::to_string(getpid());
  auto t = start_tool("tcpaccept", {"-P", fmt::format("{},{}", l4.port(), l6.port())}, "PID");
  ASSERT_TRUE(t->wait_stderr("Tracing accept ... Hit Ctrl-C to end")) << t->err();
  const auto c4 = rt::run_helper({"127.0.0.1", std::to_string(l4.port())});
  const auto c6 = rt::run_helper({"::1", std::to_string(l6.port())});
  const auto dropped = rt::run_helper({"127.0.0.1", std::to_string(other.port())});
  ASSERT_EQ(c4[0].result, "ok");
  ASSERT_EQ(c6[0].result, "ok");
  ASSERT_EQ(dropped[0].result, "ok");
  ASSERT_TRUE(t->wait_stdout(fmt::format(" {}\n", l6.port()), seconds(5))) << t->out();
  EXPECT_EQ(t->stop(), 0) << t->err();
  const auto lines = t->out_lines();
  ASSERT_EQ(lines.size(), 3u) << t->out();  // the header and two accepts: no connect lines
  EXPECT_EQ(lines[0], "PID     COMM         IP RADDR            RPORT LADDR            LPORT");
  // The listener is this process: the accepts are its own.
  EXPECT_EQ(lines[1], fmt::format("{:<7} {:<12} 4  {:<16} {:<5} {:<16} {}", me, "runtime_test",
                                  "127.0.0.1", c4[0].sport, "127.0.0.1", l4.port()));
  EXPECT_EQ(lines[2], fmt::format("{:<7} {:<12} 6  {:<16} {:<5} {:<16} {}", me, "runtime_test",
                                  "::1", c6[0].sport, "::1", l6.port()));
}

// One connect to `l` while `t` (started with -T) runs: its only line and the local time just
// before and after the connect.
struct TimedLine {
  std::string header;
  std::vector<std::string> fields;
  std::string before, after;
  int sport = 0;
};

TimedLine one_timed_line(rt::Tracer& t, const rt::Listener& l) {
  TimedLine out;
  out.before = hms_now();
  const auto c = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
  out.after = hms_now();
  out.sport = c[0].sport;
  EXPECT_TRUE(t.wait_stdout(fmt::format(" {}\n", l.port()), seconds(5))) << t.out();
  EXPECT_EQ(t.stop(), 0) << t.err();
  const auto lines = t.out_lines();
  EXPECT_EQ(lines.size(), 2u) << t.out();
  if (lines.size() == 2) {
    out.header = lines[0];
    out.fields = fields(lines[1]);
  }
  return out;
}

TEST_F(Tools, TcpacceptTimeColumns) {
  rt::Listener l("127.0.0.1");
  auto t = start_tool("tcpaccept", {"-T", "-t", "-P", std::to_string(l.port())}, "TIME");
  const TimedLine got = one_timed_line(*t, l);
  EXPECT_EQ(got.header,
            "TIME     TIME(s)  PID     COMM         IP RADDR            RPORT LADDR            "
            "LPORT");
  ASSERT_EQ(got.fields.size(), 9u);
  EXPECT_TRUE(got.fields[0] == got.before || got.fields[0] == got.after)
      << got.fields[0] << " not in [" << got.before << ", " << got.after << "]";
  EXPECT_EQ(got.fields[1], "0.000");
  EXPECT_EQ(got.fields[6], std::to_string(got.sport));
}

// A session of known bytes both ways: conn_helper sends 3500 bytes and closes after 300 ms;
// the listener (this process) sends 2100 bytes and closes its side when it is destroyed.
TEST_F(Tools, TcplifePrintsBothEndsOfASession) {
  for (const bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    const std::string addr = v6 ? "::1" : "127.0.0.1";
    auto l = std::make_unique<rt::Listener>(addr, 2100);
    const std::string port = std::to_string(l->port());
    std::vector<std::string> args;
    if (v6) args.emplace_back("-w");
    auto t = start_tool("tcplife", args, "PID");
    ASSERT_TRUE(t->wait_stderr("Tracing TCP sessions ... Hit Ctrl-C to end")) << t->err();
    const auto c = rt::run_helper({"--send", "3500", "--hold-ms", "300", addr, port});
    ASSERT_EQ(c[0].result, "ok");
    const std::string sport = std::to_string(c[0].sport);
    ASSERT_TRUE(t->wait_stdout("\n" + std::to_string(c[0].pid) + " ", seconds(5))) << t->out();
    l.reset();
    ASSERT_TRUE(t->wait_stdout("\n" + std::to_string(getpid()) + " ", seconds(5))) << t->out();
    EXPECT_EQ(t->stop(), 0) << t->err();
    const auto lines = t->out_lines();
    if (v6) {
      EXPECT_EQ(lines[0],
                "PID   COMM             IP LADDR                      LPORT RADDR              "
                "        RPORT  TX_KB  RX_KB MS");
    } else {
      EXPECT_EQ(lines[0],
                "PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS");
    }
    const std::size_t o = v6 ? 1 : 0;  // -w adds IP after COMM
    // The helper's session: 3500 bytes out (3 KB), 2100 in (2 KB), ~300 ms from ESTABLISHED.
    const auto mine = rows_with(*t, 0, std::to_string(c[0].pid));
    ASSERT_EQ(mine.size(), 1u) << t->out();
    const auto& m = mine[0];
    ASSERT_EQ(m.size(), 9 + o) << lines[1];
    EXPECT_EQ(m[1], v6 ? "conn_helper" : "conn_helpe");  // 16 and 10 wide
    if (v6) {
      EXPECT_EQ(m[2], "6");
    }
    EXPECT_EQ(m[2 + o], addr);
    EXPECT_EQ(m[3 + o], sport);
    EXPECT_EQ(m[4 + o], addr);
    EXPECT_EQ(m[5 + o], port);
    EXPECT_EQ(m[6 + o], "3");
    EXPECT_EQ(m[7 + o], "2");
    EXPECT_GT(std::stod(m[8 + o]), 300 * 0.9);
    EXPECT_LT(std::stod(m[8 + o]), 300 * 1.5);
    // The listener's (this process's) side of the same session, mirrored.
    const auto theirs = rows_with(*t, 0, std::to_string(getpid()));
    ASSERT_EQ(theirs.size(), 1u) << t->out();
    const auto& s = theirs[0];
    ASSERT_EQ(s.size(), 9 + o);
    EXPECT_EQ(s[3 + o], port);
    EXPECT_EQ(s[5 + o], sport);
    EXPECT_EQ(s[6 + o], "2");
    EXPECT_EQ(s[7 + o], "3");
  }
}

TEST_F(Tools, TcplifePortFiltersKeepAndDrop) {
  rt::Listener l("127.0.0.1", 0, /*hold=*/false);
  const std::string port = std::to_string(l.port());
  // -L: the local port is the listener's: only its side of the session.
  auto local = start_tool("tcplife", {"-L", port}, "PID");
  // -D: the remote port is the listener's: only the helper's side.
  auto remote = start_tool("tcplife", {"-D", port}, "PID");
  // Another port in each: neither side.
  auto neither = start_tool("tcplife", {"-L", "1", "-D", "2"}, "PID");
  const auto c = rt::run_helper({"--hold-ms", "50", "127.0.0.1", port});
  ASSERT_EQ(c[0].result, "ok");
  ASSERT_TRUE(local->wait_stdout("\n" + std::to_string(getpid()) + " ", seconds(5)))
      << local->out();
  ASSERT_TRUE(remote->wait_stdout("\n" + std::to_string(c[0].pid) + " ", seconds(5)))
      << remote->out();
  std::this_thread::sleep_for(milliseconds(300));
  for (auto* t : {local.get(), remote.get(), neither.get()}) EXPECT_EQ(t->stop(), 0) << t->err();
  const std::string me = std::to_string(getpid()), helper = std::to_string(c[0].pid);
  EXPECT_EQ(rows_with(*local, 0, me).size(), 1u) << local->out();
  EXPECT_EQ(rows_with(*local, 0, helper).size(), 0u) << local->out();
  EXPECT_EQ(rows_with(*remote, 0, helper).size(), 1u) << remote->out();
  EXPECT_EQ(rows_with(*remote, 0, me).size(), 0u) << remote->out();
  EXPECT_EQ(neither->out_lines().size(), 1u) << neither->out();
}

// -s: comma-separated values that Python's csv module reads back field for field.
TEST_F(Tools, TcplifeCsvParsesWithPythonsCsvModule) {
  rt::Listener l("::1", 1500);
  const std::string port = std::to_string(l.port());
  auto t = start_tool("tcplife", {"-s", "-T", "-t", "-D", port}, "TIME,");
  const auto c = rt::run_helper({"--send", "2048", "--hold-ms", "50", "::1", port});
  ASSERT_TRUE(t->wait_stdout("\n", seconds(5))) << t->out();
  ASSERT_TRUE(t->wait_stdout(std::to_string(c[0].pid) + ",conn_helper,", seconds(5))) << t->out();
  EXPECT_EQ(t->stop(), 0) << t->err();
  const std::string path = ::testing::TempDir() + "/tcplife.csv";
  std::ofstream(path) << t->out();
  const rt::CmdResult py =
      rt::run_cmd({"/usr/bin/python3", "-c",
                   "import csv, json, sys\n"
                   "print(json.dumps(list(csv.reader(open(sys.argv[1], newline='')))))\n",
                   path},
                  seconds(10));
  ASSERT_EQ(py.status, 0) << py.err;
  const json rows = json::parse(py.out);
  ASSERT_EQ(rows.size(), 2u) << t->out();
  EXPECT_EQ(rows[0], json({"TIME", "TIME(s)", "PID", "COMM", "IP", "LADDR", "LPORT", "RADDR",
                           "RPORT", "TX_KB", "RX_KB", "MS"}));
  const json& r = rows[1];
  ASSERT_EQ(r.size(), 12u);
  EXPECT_EQ(r[1], "0.000000");
  EXPECT_EQ(r[2], std::to_string(c[0].pid));
  EXPECT_EQ(r[3], "conn_helper");
  EXPECT_EQ(r[4], "6");
  EXPECT_EQ(r[5], "::1");
  EXPECT_EQ(r[6], std::to_string(c[0].sport));
  EXPECT_EQ(r[7], "::1");
  EXPECT_EQ(r[8], port);
  EXPECT_EQ(r[9], "2");
  EXPECT_EQ(r[10], "1");
  EXPECT_GT(std::stod(r[11].get<std::string>()), 0);
}

// tcpconnlat: established and refused handshakes (the answer's latency), the same latency
// --outcome reports, LPORT with -L, and min_ms dropping the fast ones.
TEST_F(Tools, TcpconnlatShowsHandshakeLatency) {
  rt::Listener l("127.0.0.1");
  const int refused = rt::closed_port("::1");
  auto lat = start_tool("tcpconnlat", {"-L"}, "PID");
  ASSERT_TRUE(lat->wait_stderr("Tracing connect latency ... Hit Ctrl-C to end")) << lat->err();
  auto slow_only = start_tool("tcpconnlat", {"1000"}, "PID");
  auto outcome = start({"--outcome", "-j"}, rt::kJsonStart);
  const auto ok = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
  const auto no = rt::run_helper({"::1", std::to_string(refused)});
  ASSERT_EQ(ok[0].result, "ok");
  ASSERT_EQ(no[0].result, "ECONNREFUSED");
  ASSERT_TRUE(lat->wait_stdout("\n" + std::to_string(no[0].pid) + " ", seconds(5))) << lat->out();
  ASSERT_TRUE(outcome->wait_stdout(fmt::format("\"pid\":{},", no[0].pid), seconds(5)))
      << outcome->out();
  EXPECT_EQ(lat->stop(), 0) << lat->err();
  EXPECT_EQ(slow_only->stop(), 0) << slow_only->err();
  const auto lines = lat->out_lines();
  EXPECT_EQ(lines[0],
            "PID    COMM         IP SADDR            LPORT  DADDR            DPORT LAT(ms)");
  const auto outcomes = records(*outcome, "outcome");
  for (const auto& [c, ip, daddr] :
       {std::tuple{ok[0], "4", "127.0.0.1"}, std::tuple{no[0], "6", "::1"}}) {
    SCOPED_TRACE(fmt::format("the connect to {} (pid {}, {})", daddr, c.pid, c.result));
    const auto mine = rows_with(*lat, 0, std::to_string(c.pid));
    ASSERT_EQ(mine.size(), 1u) << lat->out();
    const auto& f = mine[0];
    ASSERT_EQ(f.size(), 8u);
    EXPECT_EQ(f[1], "conn_helper");
    EXPECT_EQ(f[2], ip);
    EXPECT_EQ(f[3], daddr);
    EXPECT_EQ(f[4], std::to_string(c.sport));
    EXPECT_EQ(f[5], daddr);
    EXPECT_EQ(f[6], std::to_string(c.dport));
    const double ms = std::stod(f[7]);
    EXPECT_GT(ms, 0);
    // The latency --outcome measured for the same attempt. Each tracer takes its own clock
    // readings, in turn: on a busy machine or in an emulated guest they are a few ms apart.
    const auto same = rt::for_pid(outcomes, c.pid);
    ASSERT_EQ(same.size(), 1u) << outcome->out();
    const double other = same[0]["latency_ns"].get<double>() / 1e6;
    EXPECT_NEAR(ms, other, std::max(5.0, other * 0.5)) << f[7] << "\n" << same[0].dump();
  }
  // Loopback handshakes take microseconds: none is slower than 1000 ms.
  EXPECT_EQ(slow_only->out_lines().size(), 1u) << slow_only->out();
}

// -p and -4/-6 in the other tools: each keeps what it names and drops the rest.
TEST_F(Tools, PidAndFamilyFiltersKeepAndDrop) {
  rt::Listener l4("127.0.0.1"), l6("::1");
  const std::string p4 = std::to_string(l4.port()), p6 = std::to_string(l6.port());
  rt::PendingHelper kept({"--wait-stdin", "--hold-ms", "20", "127.0.0.1", p4});
  const std::string kept_pid = std::to_string(kept.pid());
  auto lat = start_tool("tcpconnlat", {"-p", kept_pid}, "PID");
  auto life = start_tool("tcplife", {"-4", "-p", kept_pid}, "PID");
  auto acc = start_tool("tcpaccept", {"-6", "-P", p4 + "," + p6}, "PID");
  const auto other = rt::run_helper({"--hold-ms", "20", "127.0.0.1", p4});
  ASSERT_EQ(other[0].result, "ok");
  const auto v6 = rt::run_helper({"--hold-ms", "20", "::1", p6});
  const auto k = kept.go();
  ASSERT_EQ(k[0].result, "ok");
  ASSERT_TRUE(lat->wait_stdout("\n" + kept_pid + " ", seconds(5))) << lat->out();
  ASSERT_TRUE(life->wait_stdout("\n" + kept_pid + " ", seconds(5))) << life->out();
  ASSERT_TRUE(acc->wait_stdout(fmt::format(" {} ", v6[0].sport), seconds(5))) << acc->out();
  std::this_thread::sleep_for(milliseconds(300));
  for (auto* t : {lat.get(), life.get(), acc.get()}) EXPECT_EQ(t->stop(), 0) << t->err();
  for (auto* t : {lat.get(), life.get()}) {
    EXPECT_EQ(rows_with(*t, 0, kept_pid).size(), 1u) << t->out();
    EXPECT_EQ(t->out_lines().size(), 2u) << t->out();  // the header and the kept one only
  }
  const auto lines = acc->out_lines();
  ASSERT_EQ(lines.size(), 2u) << acc->out();
  const auto f = fields(lines[1]);
  EXPECT_EQ(f[2], "6");
  EXPECT_EQ(f[4], std::to_string(v6[0].sport));
}

TEST_F(Tools, TcpconnectTimeColumnIsTheLocalTime) {
  rt::Listener l("127.0.0.1");
  auto t = start({"-T", "-L", "-P", std::to_string(l.port())}, "TIME");
  const TimedLine got = one_timed_line(*t, l);
  EXPECT_EQ(got.header,
            "TIME     PID     COMM         IP SADDR            LPORT  DADDR            DPORT");
  ASSERT_EQ(got.fields.size(), 8u);
  EXPECT_TRUE(got.fields[0] == got.before || got.fields[0] == got.after) << got.fields[0];
  EXPECT_EQ(got.fields[2], "conn_helper");
  EXPECT_EQ(got.fields[5], std::to_string(got.sport));
}

}  // namespace
