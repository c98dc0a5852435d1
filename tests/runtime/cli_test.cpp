// The real binary's command line: --version, the duration grammar shared by --duration,
// --shorter-than and --dns-max-age, and messages that name only the options given. The table of
// refused invocations is in bad_input_test.cpp; these are the ones that must be accepted.
#include <chrono>
#include <string>
#include <vector>

#include "fixture.h"
#include "harness.h"
#include "netns.h"
#include "tcpconnect/version.h"

namespace {

using rt::Tracer;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// No BPF is loaded for these: no root needed.
TEST(CliVersion, PrintsTheVersionAndExitsZero) {
  const rt::CmdResult r = rt::run_cmd({TCPCONNECT_BIN, "--version"}, seconds(10));
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, std::string("tcpconnect ") + tcpconnect::kVersion + "\n");
  EXPECT_EQ(r.err, "");
}

TEST(CliVersion, WinsOverOtherOptions) {
  const rt::CmdResult r = rt::run_cmd({TCPCONNECT_BIN, "-c", "-t", "--version"}, seconds(10));
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, std::string("tcpconnect ") + tcpconnect::kVersion + "\n");
}

TEST(CliErrors, QuietAloneNamesOnlyQuiet) {
  const rt::CmdResult r = rt::run_cmd({TCPCONNECT_BIN, "--quiet"}, seconds(10));
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "tcpconnect: --quiet needs --metrics\n");
}

class Cli : public rt::RuntimeTest {};

// A duration with a unit; the test asserts that it ends by itself, not its precision.
TEST_F(Cli, DurationWithAUnitStopsByItself) {
  const auto begin = steady_clock::now();
  Tracer t({"--duration", "1s"});
  ASSERT_TRUE(t.wait_ready("PID")) << t.err();
  EXPECT_EQ(t.wait_exit(seconds(10)), 0) << t.err();
  EXPECT_GE(duration_cast<milliseconds>(steady_clock::now() - begin).count(), 1000);
}

// A bare number is seconds for --shorter-than too.
TEST_F(Cli, ShorterThanTakesBareSeconds) {
  Tracer t({"--shorter-than", "5"});
  ASSERT_TRUE(t.wait_stderr("Tracing connect")) << t.err();
  EXPECT_EQ(t.stop(), 0) << t.err();
}

TEST_F(Cli, DnsMaxAgeTakesAUnit) {
  Tracer t({"--dns-max-age", "1h", "-d"});
  ASSERT_TRUE(t.wait_stderr("Tracing connect")) << t.err();
  EXPECT_EQ(t.stop(), 0) << t.err();
}

// -c with -L/-s: the source port is part of the count key (the table's contents are the count
// tests' business); the combination starts tracing and ends cleanly.
TEST_F(Cli, CountWithSourcePortIsAccepted) {
  Tracer t({"-c", "-s"});
  ASSERT_TRUE(t.wait_stderr("Tracing connect")) << t.err();
  EXPECT_EQ(t.stop(), 0) << t.err();
}

}  // namespace
