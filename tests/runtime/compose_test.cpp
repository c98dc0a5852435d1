// Options that compose: each connection gives one line whatever lifecycle options are
// combined, in text and JSON, with the real tool on real loopback sockets.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "fixture.h"

using namespace std::chrono;
using nlohmann::json;

namespace {

class Compose : public rt::RuntimeTest {};

// --outcome --lifetime: the lifetime line carries the outcome; no outcome line before it.
// The listeners close each connection at once: the client then ends it through LAST_ACK, whose
// CLOSE comes with the peer's ACK, whatever the kernel does with an orphaned FIN_WAIT2.
TEST_F(Compose, OutcomeWithLifetimeIsOneLinePerConnection) {
  rt::Listener l("127.0.0.1", 0, /*hold=*/false);
  const std::string port = std::to_string(l.port());
  auto t = start({"--outcome", "--lifetime", "--json", "-P", port}, rt::kJsonStart);
  auto c = rt::run_helper({"--hold-ms", "50", "127.0.0.1", port});
  ASSERT_EQ(c[0].result, "ok");
  ASSERT_TRUE(t->wait_stdout("\"type\":\"close\"", seconds(10))) << t->out();
  EXPECT_EQ(t->stop(), 0);
  const auto closes = rt::for_pid(records(*t, "close"), c[0].pid);
  ASSERT_EQ(closes.size(), 1u) << t->out();
  EXPECT_EQ(closes[0]["outcome"], "established");
  EXPECT_GT(closes[0]["latency_ns"].get<std::uint64_t>(), 0u);
  EXPECT_TRUE(rt::for_pid(records(*t, "outcome"), c[0].pid).empty()) << t->out();
  EXPECT_TRUE(rt::for_pid(records(*t, "connect"), c[0].pid).empty()) << t->out();
}

TEST_F(Compose, OutcomeWithLifetimeTextIsOneLine) {
  rt::Listener l("127.0.0.1", 0, /*hold=*/false);
  const std::string port = std::to_string(l.port());
  auto t = start({"--outcome", "--lifetime", "-P", port}, "PID");
  auto c = rt::run_helper({"--hold-ms", "50", "127.0.0.1", port});
  ASSERT_EQ(c[0].result, "ok");
  ASSERT_TRUE(t->wait_stdout(" established ", seconds(10))) << t->out();
  EXPECT_EQ(t->stop(), 0);
  const auto mine = rt::lines_for_pid(t->out_lines(), c[0].pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_NE(mine[0].find(" established "), std::string::npos) << mine[0];
}

// --failed --lifetime: each failed attempt once (its close line), established ones not at all.
TEST_F(Compose, FailedWithLifetimeIsOneLinePerFailure) {
  const int port = rt::closed_port("127.0.0.1");
  rt::Listener open("127.0.0.1", 0, /*hold=*/false);
  auto t = start({"--failed", "--lifetime", "--json", "-P",
                  std::to_string(port) + "," + std::to_string(open.port())},
                 rt::kJsonStart);
  std::vector<int> refused;
  for (int i = 0; i < 3; ++i) {
    auto c = rt::run_helper({"127.0.0.1", std::to_string(port)});
    ASSERT_EQ(c[0].result, "ECONNREFUSED");
    refused.push_back(c[0].pid);
  }
  auto ok = rt::run_helper({"--hold-ms", "20", "127.0.0.1", std::to_string(open.port())});
  ASSERT_EQ(ok[0].result, "ok");
  ASSERT_TRUE(t->wait_stdout("\"type\":\"close\"", seconds(3))) << t->out();
  // The established connection's close comes after its FIN exchange; give it the time it
  // would need to (wrongly) appear.
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(t->stop(), 0);
  for (int pid : refused) {
    const auto closes = rt::for_pid(records(*t, "close"), pid);
    ASSERT_EQ(closes.size(), 1u) << t->out();
    EXPECT_EQ(closes[0]["outcome"], "refused");
    EXPECT_TRUE(rt::for_pid(records(*t, "outcome"), pid).empty()) << t->out();
  }
  EXPECT_TRUE(rt::for_pid(records(*t, "close"), ok[0].pid).empty()) << t->out();
}

// A --netns inode that no process has is traced (a namespace can be entered later), with a
// warning that says so; the host's own namespace gets none.
TEST_F(Compose, NetnsThatNoProcessHasIsAWarning) {
  auto t = start({"--netns", "123"}, "PID");
  ASSERT_TRUE(t->wait_stderr("Tracing connect", seconds(10))) << t->err();
  EXPECT_EQ(t->stop(), 0);
  EXPECT_NE(t->err().find("tcpconnect: warning: no process is in network namespace 123 (no "
                          "/proc/PID/ns/net is net:[123]); tracing it anyway\n"),
            std::string::npos)
      << t->err();

  struct stat st {};
  ASSERT_EQ(stat("/proc/self/ns/net", &st), 0);
  auto host = start({"--netns", std::to_string(st.st_ino)}, "PID");
  ASSERT_TRUE(host->wait_stderr("Tracing connect", seconds(10))) << host->err();
  EXPECT_EQ(host->stop(), 0);
  EXPECT_EQ(host->err().find("warning"), std::string::npos) << host->err();
}

}  // namespace
