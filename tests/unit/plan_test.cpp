// The plan: for each mode, what the kernel is asked to send and what each output prints; and
// for every pair of options, either a refusal or a plan in which each option has an effect and
// no connection gives two lines.
#include "plan/plan.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tcpconnect/abi.h"

namespace tcpconnect {
namespace {

ParseResult parse(const std::vector<std::string>& args, const char* prog = "tcpconnect") {
  std::vector<const char*> argv{prog};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

Plan plan(const std::vector<std::string>& args, const char* prog = "tcpconnect") {
  const ParseResult r = parse(args, prog);
  EXPECT_EQ(r.kind, ParseResult::Kind::Run) << r.text;
  return make_plan(r.options);
}

std::string describe(const Selection& s) {
  std::string out;
  if (s.connect) out += "connect ";
  if (s.outcome) out += "outcome ";
  if (s.close) out += "close ";
  if (s.accept) out += "accept ";
  if (s.failed_only) out += "failed-only ";
  if (s.shorter_than_ns) out += "shorter-than ";
  if (s.answered_only) out += "answered ";
  if (s.min_latency_ns) out += "slower-than ";
  if (!s.local_ports.empty()) out += "local-ports ";
  if (!s.remote_ports.empty()) out += "remote-ports ";
  if (!out.empty()) out.pop_back();
  return out;
}

std::string kernel_sends(const TracerConfig& t) {
  std::string out;
  if (t.want_connect) out += "connect ";
  if (t.want_outcome) out += "outcome ";
  if (t.want_close) out += "close ";
  if (t.want_accept) out += "accept ";
  if (t.track_accepts) out += "track-accepts ";
  if (t.failed_only) out += "failed-only ";
  if (t.shorter_than_ns) out += "shorter-than ";
  if (t.count_mode) out += "count ";
  if (t.metrics) out += "metrics ";
  if (!out.empty()) out.pop_back();
  return out;
}

// Each mode: what the kernel sends, and what the per-event output prints.
struct ModeCase {
  std::vector<std::string> args;
  std::string kernel;
  std::string lines;
  const char* prog = "tcpconnect";  // the tool run
};

class PlanModes : public ::testing::TestWithParam<ModeCase> {};

TEST_P(PlanModes, KernelAndLines) {
  const ModeCase& m = GetParam();
  const Plan p = plan(m.args, m.prog);
  EXPECT_EQ(kernel_sends(p.probe), m.kernel);
  EXPECT_EQ(describe(p.lines.selection), m.lines);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, PlanModes,
    ::testing::Values(
        ModeCase{{}, "connect", "connect"}, ModeCase{{"--outcome"}, "outcome", "outcome"},
        ModeCase{{"--failed"}, "outcome failed-only", "outcome failed-only"},
        ModeCase{{"--lifetime"}, "close", "close"},
        // The lifetime line carries the outcome and latency: no separate outcome line.
        ModeCase{{"--outcome", "--lifetime"}, "close", "close"},
        ModeCase{{"--failed", "--lifetime"}, "close failed-only", "close failed-only"},
        ModeCase{{"--shorter-than", "5s"}, "close shorter-than", "close shorter-than"},
        ModeCase{{"--accept"}, "connect accept", "connect accept"},
        ModeCase{{"--accept", "--lifetime"}, "close track-accepts", "close"},
        ModeCase{{"--accept", "--outcome"}, "outcome accept", "outcome accept"},
        ModeCase{{"-c"}, "count", ""}, ModeCase{{"-c", "-L"}, "count", ""},
        // Metrics are counted in the kernel: it sends what the lines take, filtered as they are.
        ModeCase{{"--metrics", "9464", "--quiet"}, "metrics", ""},
        ModeCase{{"--metrics", "9464"}, "connect metrics", "connect"},
        ModeCase{{"--metrics", "9464", "--failed"},
                 "outcome failed-only metrics",
                 "outcome failed-only"},
        ModeCase{{"--metrics", "9464", "--shorter-than", "1s"},
                 "close shorter-than metrics",
                 "close shorter-than"},
        // The other tools: one kind of line each, filtered as the tool filters it.
        ModeCase{{}, "accept", "accept", "tcpaccept"},
        ModeCase{{"-P", "80"}, "accept", "accept", "/usr/sbin/tcpaccept"},
        ModeCase{{}, "close track-accepts", "close", "tcplife"},
        ModeCase{{"-L", "80", "-D", "81"},
                 "close track-accepts",
                 "close local-ports remote-ports",
                 "tcplife"},
        ModeCase{{}, "outcome", "outcome answered", "tcpconnlat"},
        ModeCase{{"0.5"}, "outcome", "outcome answered slower-than", "tcpconnlat"},
        ModeCase{{"--metrics", "9464", "--quiet"}, "metrics", "", "tcplife"}),
    [](const auto& info) { return "Mode" + std::to_string(info.index); });

// Connect records wait for their source port only where an output prints it.
TEST(Plan, SourcePortOnlyWhereItIsPrinted) {
  EXPECT_FALSE(plan({}).probe.want_sport);
  EXPECT_FALSE(plan({"-t", "-U", "-d"}).probe.want_sport);
  EXPECT_TRUE(plan({"-L"}).probe.want_sport);
  EXPECT_TRUE(plan({"-s"}).probe.want_sport);
  EXPECT_TRUE(plan({"-j"}).probe.want_sport);
  EXPECT_TRUE(plan({"-c", "-L"}).probe.count_by_sport);
}

TEST(Plan, MetricsAreCountedInTheKernel) {
  const Plan p = plan({"--metrics", "[::1]:9000", "--metrics-top", "7", "--quiet"});
  ASSERT_TRUE(p.metrics.has_value());
  EXPECT_EQ(p.metrics->addr, "::1");
  EXPECT_EQ(p.metrics->port, 9000);
  EXPECT_EQ(p.metrics->top_n, 7u);
  EXPECT_FALSE(p.lines.banner);
  EXPECT_FALSE(p.lines.selection.any());
  // The kernel counts; no record is sent for the metrics.
  EXPECT_TRUE(p.probe.metrics);
  EXPECT_FALSE(p.probe.want_connect || p.probe.want_outcome || p.probe.want_close ||
               p.probe.want_accept);
  EXPECT_FALSE(plan({}).metrics.has_value());
  EXPECT_FALSE(plan({}).probe.metrics);
  // With lines, the kernel sends what the lines take and nothing for the metrics.
  const Plan lines = plan({"--metrics", "127.0.0.1:9000"});
  EXPECT_TRUE(lines.probe.want_connect);
  EXPECT_FALSE(lines.probe.want_outcome || lines.probe.want_close || lines.probe.want_accept);
}

TEST(Plan, JsonAsksForParentCommandLineAndContainers) {
  const Plan p = plan({"-j"});
  EXPECT_EQ(p.lines.format, Format::Json);
  EXPECT_TRUE(p.probe.want_parent);
  EXPECT_TRUE(p.probe.want_exec);
  EXPECT_TRUE(p.enrich.containers);
  EXPECT_TRUE(p.enrich.cmdlines);
  const Plan text = plan({});
  EXPECT_EQ(text.lines.format, Format::Text);
  EXPECT_FALSE(text.probe.want_parent || text.probe.want_exec || text.enrich.containers ||
               text.enrich.cmdlines);
}

TEST(Plan, ColumnsFollowTheirOptions) {
  const Columns c = plan({"-t", "-U", "-L", "--accept", "--lifetime", "--container", "-d",
                          "--parent", "--cmdline"})
                        .lines.columns;
  EXPECT_TRUE(c.timestamp && c.uid && c.lport && c.dir && c.outcome && c.lifetime && c.container &&
              c.dns && c.parent && c.cmdline);
  EXPECT_EQ(plan({}).lines.columns, Columns{});
  EXPECT_TRUE(plan({"--failed"}).lines.columns.outcome);
  EXPECT_FALSE(plan({"--failed"}).lines.columns.lifetime);
}

TEST(Plan, CountKeys) {
  const Plan p = plan({"-c", "-L", "--by-process"});
  EXPECT_TRUE(p.lines.count);
  EXPECT_TRUE(p.lines.by_process);
  EXPECT_TRUE(p.lines.columns.lport);
  EXPECT_TRUE(p.probe.count_by_sport);
  EXPECT_TRUE(p.probe.count_by_process);
  EXPECT_FALSE(plan({"-c"}).probe.count_by_sport);
  EXPECT_FALSE(plan({"-L"}).probe.count_by_sport);  // the LPORT column only
}

TEST(Plan, FiltersReachTheKernel) {
  const Plan p = plan({"-p", "42", "-u", "0", "-6", "-P", "80,443", "--netns", "4026531840",
                       "--cgroup", "/sys/fs/cgroup/x"});
  EXPECT_EQ(p.probe.pid, 42u);
  EXPECT_TRUE(p.probe.uid_on);
  EXPECT_EQ(p.probe.uid, 0u);
  EXPECT_EQ(p.probe.af, TC_AF_INET6);
  EXPECT_EQ(p.probe.ports, (std::vector<std::uint16_t>{80, 443}));
  EXPECT_EQ(p.probe.netns, 4026531840u);
  EXPECT_EQ(p.probe.cgroup, "/sys/fs/cgroup/x");
  EXPECT_FALSE(plan({}).probe.uid_on);
}

TEST(Plan, LinesTakeOneRecordPerConnection) {
  // The selection a plan gives decides on the record's explicit failed flag, not on durations.
  const Selection s = plan({"--failed", "--lifetime"}).lines.selection;
  ConnectEvent ev;
  ev.kind = EventKind::Close;
  ev.outcome = Outcome::Refused;
  ev.failed = true;
  EXPECT_TRUE(s.takes(ev));
  ev.kind = EventKind::Outcome;
  EXPECT_FALSE(s.takes(ev));  // the close line already says it
  // A connection that established and was later reset is not a failed attempt, even when its
  // duration equals its latency.
  ev.kind = EventKind::Close;
  ev.outcome = Outcome::Reset;
  ev.failed = false;
  ev.latency_ns = ev.duration_ns = 1000;
  EXPECT_FALSE(s.takes(ev));
}

// Every option, with a valid value.
const std::vector<std::vector<std::string>> kOptions = {
    {"-T"},
    {"-t"},
    {"-p", "1"},
    {"-P", "80"},
    {"-4"},
    {"-6"},
    {"-L"},
    {"-U"},
    {"-u", "0"},
    {"-c"},
    {"-j"},
    {"--duration", "1"},
    {"-v"},
    {"--attach", "raw_tp"},
    {"--outcome"},
    {"--failed"},
    {"--lifetime"},
    {"--shorter-than", "5s"},
    {"--accept"},
    {"--by-process"},
    {"--interval", "1"},
    {"--cumulative"},
    {"--rows", "5"},
    {"-d"},
    {"--dns-cache-size", "10"},
    {"--dns-max-age", "10"},
    {"--container"},
    {"--runtime-socket", "/run/podman/podman.sock"},
    {"--container-name", "web-1"},
    {"--pod", "checkout-7d9f"},
    {"--pod-namespace", "shop"},
    {"--parent"},
    {"--cmdline"},
    {"--exec-cache-size", "10"},
    {"--metrics", "9464"},
    {"--quiet"},
    {"--metrics-top", "5"},
    {"--metrics-container"},
    {"--netns", "4026531840"},
    {"--cgroup", "/sys/fs/cgroup"},
    {"--cgroupmap", "/sys/fs/bpf/x"},
    {"--mntnsmap", "/sys/fs/bpf/y"},
    {"--ringbuf-size", "64K"},
};

// The options of the other tools: theirs, and those of tcpconnect they share.
std::vector<std::vector<std::string>> shared_with(std::vector<std::vector<std::string>> own) {
  for (const auto& o : kOptions) {
    static const std::set<std::string> kTcpconnectOnly = {"-P",
                                                          "-L",
                                                          "-c",
                                                          "--outcome",
                                                          "--failed",
                                                          "--lifetime",
                                                          "--shorter-than",
                                                          "--accept",
                                                          "--by-process",
                                                          "--interval",
                                                          "--cumulative",
                                                          "--rows",
                                                          "-d",
                                                          "--dns-cache-size",
                                                          "--dns-max-age"};
    if (!kTcpconnectOnly.contains(o[0])) own.push_back(o);
  }
  return own;
}

struct ToolOptions {
  const char* prog;
  std::vector<std::vector<std::string>> options;
  int min_accepted;
};

const ToolOptions kTools[] = {
    {"tcpconnect", kOptions, 300},
    {"tcpaccept", shared_with({{"-P", "80"}}), 200},
    {"tcplife", shared_with({{"-w"}, {"-s"}, {"-L", "80"}, {"-D", "80"}}), 200},
    {"tcpconnlat", shared_with({{"-L"}, {"0.5"}}), 200},
};

// Pairs where one option already implies the other: accepted, and the same plan as the
// stronger one alone (documented in the man page).
const std::set<std::pair<std::string, std::string>> kImplied = {
    {"--outcome", "--failed"},         // --failed: the outcome lines of failures only
    {"--outcome", "--lifetime"},       // lifetime lines carry the outcome and latency
    {"--lifetime", "--shorter-than"},  // --shorter-than implies --lifetime
    {"--outcome", "--shorter-than"},   // ... whose lines carry the outcome
};

// Options that need another one to be given at all (refused alone).
bool needs_partner(const std::string& o) {
  return o == "--by-process" || o == "--dns-cache-size" || o == "--dns-max-age" || o == "--quiet" ||
         o == "--metrics-top" || o == "--exec-cache-size" || o == "--interval" ||
         o == "--cumulative" || o == "--rows" || o == "--runtime-socket" ||
         o == "--metrics-container";
}

class PlanPairs : public ::testing::TestWithParam<ToolOptions> {};

TEST_P(PlanPairs, EveryPairIsRefusedOrMeaningful) {
  const char* prog = GetParam().prog;
  const auto& options = GetParam().options;
  const Plan none = plan({}, prog);
  int accepted = 0, refused = 0;
  for (std::size_t i = 0; i < options.size(); ++i) {
    for (std::size_t j = i + 1; j < options.size(); ++j) {
      const auto& a = options[i];
      const auto& b = options[j];
      std::vector<std::string> args = a;
      args.insert(args.end(), b.begin(), b.end());
      const std::string pair = a[0] + " " + b[0];
      const ParseResult r = parse(args, prog);
      if (r.kind == ParseResult::Kind::Error) {
        ++refused;
        EXPECT_EQ(r.exit_code, 2) << pair;
        EXPECT_EQ(r.text.find('\n'), std::string::npos) << pair;
        EXPECT_EQ(r.text.rfind(std::string(prog) + ": ", 0), 0u) << pair << ": " << r.text;
        continue;
      }
      ASSERT_EQ(r.kind, ParseResult::Kind::Run) << pair;
      ++accepted;
      const Plan p = make_plan(r.options);
      const Selection& s = p.lines.selection;

      // One line per connection: the attempt, its outcome or its end, never two of them; an
      // accepted connection's line is its accept or its end.
      EXPECT_LE(int(s.connect) + int(s.outcome) + int(s.close), 1) << pair;
      EXPECT_FALSE(s.accept && s.close) << pair;
      // Modes that promise no per-event lines print none.
      if (r.options.count || r.options.quiet) {
        EXPECT_FALSE(s.any()) << pair;
      }
      if (r.options.quiet) {
        EXPECT_FALSE(p.lines.banner) << pair;
      }
      // The kernel sends at least what every output takes, and filters no more than any does.
      EXPECT_EQ(p.probe.metrics, p.metrics.has_value()) << pair;
      for (const Selection* out : {&s}) {
        EXPECT_TRUE(!out->connect || p.probe.want_connect) << pair;
        EXPECT_TRUE(!out->outcome || p.probe.want_outcome) << pair;
        EXPECT_TRUE(!out->close || p.probe.want_close) << pair;
        EXPECT_TRUE(!out->accept || p.probe.want_accept) << pair;
        if (out->any()) {
          EXPECT_TRUE(!p.probe.failed_only || out->failed_only) << pair;
          EXPECT_TRUE(!p.probe.shorter_than_ns ||
                      (out->shorter_than_ns && p.probe.shorter_than_ns <= out->shorter_than_ns))
              << pair;
        }
      }
      // Nothing silently ignored: each option of the pair changes the plan of the other alone
      // (or, for an implied pair, the weaker one adds nothing to the stronger).
      const bool implied = kImplied.contains({a[0], b[0]}) || kImplied.contains({b[0], a[0]});
      for (const auto& [self, other] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
        if (implied) break;
        if (needs_partner((*other)[0])) {
          EXPECT_NE(p, none) << pair;
          continue;
        }
        EXPECT_NE(p, plan(*other, prog)) << pair << ": " << (*self)[0] << " has no effect";
      }
      if (implied) {
        const auto& stronger = kImplied.contains({a[0], b[0]}) ? b : a;
        EXPECT_EQ(p, plan(stronger, prog)) << pair;
      }
    }
  }
  // Sanity: both outcomes happen, so the loop checked something.
  EXPECT_GT(accepted, GetParam().min_accepted);
  EXPECT_GT(refused, 10);
}

INSTANTIATE_TEST_SUITE_P(Tools, PlanPairs, ::testing::ValuesIn(kTools),
                         [](const auto& info) { return std::string(info.param.prog); });

}  // namespace
}  // namespace tcpconnect
