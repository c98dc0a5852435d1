// Process context: parent PID/name read in the kernel at the event, and the
// command line captured at exec, for processes that are gone by the time the
// tracer looks.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <ctime>
#include <regex>
#include <string>
#include <vector>

#include "fixture.h"
#include "harness.h"
#include "netns.h"

namespace {

using rt::RuntimeTest;

class Process : public RuntimeTest {};

struct ShortLived {
  int parent = 0;  // the shell that started the helper
  rt::Conn conn;
  std::string cmdline;
};

// A shell starts conn_helper, which connects to a closed port (refused at
// once) and exits: it lives for about a millisecond. "; true" keeps the shell
// from exec'ing the helper in its place, so the shell stays its parent.
ShortLived short_lived(int port) {
  const std::string cmd = fmt::format("{} --count 1 127.0.0.1 {}", CONN_HELPER_BIN, port);
  auto r = rt::run_cmd({"/bin/sh", "-c", "echo parent=$$; " + cmd + "; true"});
  ShortLived s;
  s.cmdline = cmd;
  for (const auto& line : rt::split_lines(r.out)) {
    if (line.rfind("parent=", 0) == 0) s.parent = std::stoi(line.substr(7));
  }
  auto conns = rt::parse_conns(r.out.substr(r.out.find('\n') + 1), r.err);
  EXPECT_EQ(conns.size(), 1u);
  if (!conns.empty()) s.conn = conns[0];
  EXPECT_GT(s.parent, 0) << r.out;
  return s;
}

TEST_F(Process, ShortLivedProcessHasItsCommandLineAndParent) {
  const int port = rt::closed_port("127.0.0.1");
  auto t = start({"-j"}, rt::kJsonStart);
  auto s = short_lived(port);
  // The helper is gone before the tracer stops: what it reports must come
  // from the exec record, not from /proc.
  EXPECT_NE(access(fmt::format("/proc/{}", s.conn.pid).c_str(), F_OK), 0);
  auto recs = rt::for_pid(records(*t, "connect"), s.conn.pid);
  ASSERT_EQ(recs.size(), 1u) << t->out();
  EXPECT_EQ(recs[0]["ppid"], s.parent);
  EXPECT_EQ(recs[0]["pcomm"], "sh");
  EXPECT_EQ(recs[0]["cmdline"], s.cmdline);
  EXPECT_EQ(recs[0]["comm"], "conn_helper");
}

// RFC 3339 "YYYY-MM-DDTHH:MM:SS.uuuuuu+HH:MM" -> microseconds since the epoch; -1 if malformed.
long long rfc3339_us(const std::string& s) {
  static const std::regex re(
      R"(^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})([+-])(\d{2}):(\d{2})$)");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return -1;
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = std::stoi(m[6]);
  const long long offset_s = (std::stoll(m[9]) * 60 + std::stoll(m[10])) * 60;
  const long long secs = static_cast<long long>(timegm(&tm)) - (m[8] == "-" ? -offset_s : offset_s);
  return secs * 1'000'000 + std::stoll(m[7]);
}

// argv keeps argument boundaries: the helper runs with an argv[0] holding spaces (bash's
// exec -a), and is gone before the tracer stops, so this comes from the exec record. "time"
// is the local time of ts_ns, to the microsecond.
TEST_F(Process, JsonArgvAndTime) {
  const int port = rt::closed_port("127.0.0.1");
  auto t = start({"-j"}, rt::kJsonStart);
  const std::vector<std::string> argv = {"tc conn  helper", "--count", "1", "127.0.0.1",
                                         std::to_string(port)};
  std::vector<std::string> cmd = {"/usr/bin/bash", "-c",
                                  "exec -a \"$0\" " CONN_HELPER_BIN " \"$@\""};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  auto r = rt::run_cmd(cmd);
  auto conns = rt::parse_conns(r.out, r.err);
  ASSERT_EQ(conns.size(), 1u) << r.out << r.err;
  auto starts = records(*t, "start");
  ASSERT_EQ(starts.size(), 1u) << t->out();
  ASSERT_TRUE(starts[0]["time"].is_string()) << starts[0].dump();
  EXPECT_EQ(rfc3339_us(starts[0]["time"].get<std::string>()),
            static_cast<long long>(starts[0]["ts_ns"].get<std::uint64_t>() / 1000))
      << starts[0].dump();
  std::vector<nlohmann::json> connects;
  for (auto& line : t->out_lines()) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == "connect") connects.push_back(j);
  }
  auto recs = rt::for_pid(connects, conns[0].pid);
  ASSERT_EQ(recs.size(), 1u) << t->out();
  EXPECT_EQ(recs[0]["argv"], nlohmann::json(argv)) << recs[0].dump();
  EXPECT_EQ(recs[0]["cmdline"], fmt::format("tc conn  helper --count 1 127.0.0.1 {}", port));
  ASSERT_TRUE(recs[0]["time"].is_string()) << recs[0].dump();
  const auto ts_ns = recs[0]["ts_ns"].get<std::uint64_t>();
  EXPECT_EQ(rfc3339_us(recs[0]["time"].get<std::string>()), static_cast<long long>(ts_ns / 1000))
      << recs[0].dump();
}

TEST_F(Process, TextColumnsWithParentAndCmdline) {
  const int port = rt::closed_port("127.0.0.1");
  auto t = start({"--parent", "--cmdline", "-P", std::to_string(port)}, "PID");
  auto s = short_lived(port);
  EXPECT_EQ(t->stop(), 0) << t->err();
  auto lines = t->out_lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0],
            "PID     COMM         IP SADDR            DADDR            DPORT  PPID    PCOMM        "
            "CMDLINE");
  auto mine = rt::lines_for_pid(lines, s.conn.pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_EQ(mine[0], fmt::format("{:<7} conn_helper  4  127.0.0.1        127.0.0.1        {:<6} "
                                 "{:<7} sh           {}",
                                 s.conn.pid, port, s.parent, s.cmdline));
}

TEST_F(Process, ProcessStartedBeforeTheTracerFallsBackToProc) {
  // Held open for a second: still alive when the tracer reads /proc.
  rt::Listener l("127.0.0.1");
  const int port = l.port();
  rt::PendingHelper early({"--wait-stdin", "--hold-ms", "1000", "127.0.0.1", std::to_string(port)});
  auto t = start({"-j"}, rt::kJsonStart);
  auto conns = early.go();
  ASSERT_EQ(conns.size(), 1u);
  auto recs = rt::for_pid(records(*t, "connect"), early.pid());
  ASSERT_EQ(recs.size(), 1u) << t->out();
  EXPECT_EQ(recs[0]["cmdline"],
            fmt::format("{} --wait-stdin --hold-ms 1000 127.0.0.1 {}", CONN_HELPER_BIN, port));
  EXPECT_EQ(recs[0]["argv"], nlohmann::json({CONN_HELPER_BIN, "--wait-stdin", "--hold-ms", "1000",
                                             "127.0.0.1", std::to_string(port)}));
  EXPECT_EQ(recs[0]["ppid"], getpid());
}

}  // namespace
