// --hist and --top without a kernel: the log2 folding, percentiles, the bcc-style drawing, the
// per-interval differences of the kept latencies, the screen's lines, and the command line.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/options.h"
#include "model/count_intervals.h"
#include "model/histograms.h"
#include "model/intervals.h"
#include "plan/plan.h"
#include "sink/json_sink.h"
#include "sink/text_sink.h"
#include "sink/top_table.h"

namespace tcpconnect {
namespace {

// A row of `n` connects from `pid`/`comm` to 10.0.0.9:`dport`, each with this latency (us).
CountRow row(std::uint16_t dport, std::uint64_t n, std::uint64_t latency_us, std::uint32_t pid = 7,
             const char* comm = "curl") {
  CountRow r;
  r.ip = 4;
  inet_pton(AF_INET, "10.0.0.1", r.saddr.data());
  inet_pton(AF_INET, "10.0.0.9", r.daddr.data());
  r.dport = dport;
  r.count = n;
  r.pid = pid;
  r.comm = comm;
  r.latency.assign(kIntervalBuckets, 0);
  r.latency[interval_bucket(latency_us)] = n;
  r.lifetime.assign(TC_LIFE_BUCKETS, 0);
  return r;
}

ParseResult parse(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"tcpconnect"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

TEST(Histograms, FoldTheIntervalScaleIntoPowersOfTwo) {
  std::vector<std::uint64_t> scale(kIntervalBuckets, 0);
  for (std::uint64_t us : {0, 1, 2, 3, 5, 40, 63, 64, 1000, 1023, 1024})
    ++scale[interval_bucket(us)];
  const Log2Hist h = log2_of_intervals(scale);
  ASSERT_EQ(h.buckets.size(), 11u);
  EXPECT_EQ(h.buckets[0], 2u);   // 0 and 1
  EXPECT_EQ(h.buckets[1], 2u);   // 2, 3
  EXPECT_EQ(h.buckets[2], 1u);   // 5
  EXPECT_EQ(h.buckets[5], 2u);   // 40, 63
  EXPECT_EQ(h.buckets[6], 1u);   // 64
  EXPECT_EQ(h.buckets[9], 2u);   // 1000, 1023
  EXPECT_EQ(h.buckets[10], 1u);  // 1024
  EXPECT_EQ(h.total(), 11u);
}

TEST(Histograms, QuantilesAreTheMiddleOfTheirBucket) {
  std::vector<std::uint64_t> scale(kIntervalBuckets, 0);
  EXPECT_LT(latency_quantile_us(scale, 0.5), 0);  // none
  scale[interval_bucket(5)] = 98;
  scale[interval_bucket(1000)] = 2;
  EXPECT_EQ(latency_quantile_us(scale, 0.5), 5);  // exact below 8 us
  const double p99 = latency_quantile_us(scale, 0.99);
  EXPECT_GT(p99, 960);  // 1000 is in [960, 1024): 12.5% wide
  EXPECT_LT(p99, 1024);
}

TEST(Histograms, DrawnAsBccDrawsThem) {
  Log2Hist h;
  h.add(4, 2);  // 16 -> 31
  h.add(5, 6);
  h.add(6, 3);
  EXPECT_EQ(format_log2_hist(h, "usecs"),
            "     usecs               : count    distribution\n"
            "         0 -> 1          : 0        |                                        |\n"
            "         2 -> 3          : 0        |                                        |\n"
            "         4 -> 7          : 0        |                                        |\n"
            "         8 -> 15         : 0        |                                        |\n"
            "        16 -> 31         : 2        |*************                           |\n"
            "        32 -> 63         : 6        |****************************************|\n"
            "        64 -> 127        : 3        |********************                    |\n");
  EXPECT_EQ(format_log2_hist(Log2Hist{}, "usecs"), "");
}

TEST(Histograms, GroupedByPortOrByProcess) {
  const std::vector<CountRow> rows{row(80, 3, 40, 7, "curl"), row(80, 2, 40, 8, "wget"),
                                   row(443, 4, 2000, 7, "curl")};
  const auto ports = group_histograms(rows, HistBy::Port);
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_EQ(ports[0].port, 80);
  EXPECT_EQ(ports[0].latency_us.total(), 5u);
  EXPECT_EQ(ports[1].port, 443);
  EXPECT_EQ(ports[1].latency_us.buckets.at(10), 4u);  // 1024 -> 2047
  const auto procs = group_histograms(rows, HistBy::Process);
  ASSERT_EQ(procs.size(), 2u);
  EXPECT_EQ(procs[0].pid, 7u);
  EXPECT_EQ(procs[0].latency_us.total(), 7u);
  EXPECT_EQ(procs[1].comm, "wget");
}

TEST(Histograms, EachIntervalHasItsOwnLatenciesAndBytes) {
  CountIntervals t;
  CountRow a = row(80, 3, 40);
  a.tx_bytes = 100;
  a.closed = 1;
  a.lifetime[2] = 1;
  ASSERT_EQ(t.next({a}, false, 0).size(), 1u);
  CountRow b = row(80, 5, 40);
  b.latency[interval_bucket(2000)] = 4;  // 2 more at 40 us, 4 at 2 ms
  b.tx_bytes = 250;
  b.closed = 3;
  b.lifetime[2] = 3;
  const auto second = t.next({b}, false, 0);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].count, 2u);
  EXPECT_EQ(second[0].latency[interval_bucket(40)], 2u);
  EXPECT_EQ(second[0].latency[interval_bucket(2000)], 4u);
  EXPECT_EQ(second[0].tx_bytes, 150u);
  EXPECT_EQ(second[0].closed, 2u);
  EXPECT_EQ(second[0].lifetime[2], 2u);
  // Closes alone keep a row: its connections were made before.
  CountRow c = b;
  c.closed = 4;
  const auto third = t.next({c}, false, 0);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].count, 0u);
  EXPECT_EQ(third[0].closed, 1u);
}

TEST(Histograms, TextAndJsonOutputs) {
  OutputConfig cfg;
  cfg.hist = HistBy::Port;
  cfg.count = false;
  std::ostringstream out, err;
  TextSink text(cfg, out, err);
  text.start({});
  text.counts({row(80, 3, 40)});
  EXPECT_EQ(out.str(),
            "\nHandshake latency, dport = 80 (3 connects)\n"
            "     usecs               : count    distribution\n"
            "         0 -> 1          : 0        |                                        |\n"
            "         2 -> 3          : 0        |                                        |\n"
            "         4 -> 7          : 0        |                                        |\n"
            "         8 -> 15         : 0        |                                        |\n"
            "        16 -> 31         : 0        |                                        |\n"
            "        32 -> 63         : 3        |****************************************|\n");
  cfg.format = Format::Json;
  cfg.hist = HistBy::Process;
  std::ostringstream js;
  JsonSink json(cfg, js);
  CountRow r = row(80, 3, 40, 7, "cu\x1b[2Jrl");
  r.lifetime[0] = 3;
  json.counts({r});
  std::istringstream lines(js.str());
  std::string line;
  std::vector<nlohmann::json> recs;
  while (std::getline(lines, line)) recs.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(recs.size(), 2u) << js.str();
  EXPECT_EQ(recs[0]["type"], "hist");
  EXPECT_EQ(recs[0]["metric"], "handshake_latency");
  EXPECT_EQ(recs[0]["unit"], "us");
  EXPECT_EQ(recs[0]["pid"], 7);
  EXPECT_EQ(recs[0]["comm"], "cu\x1b[2Jrl");  // JSON escapes it
  EXPECT_EQ(recs[0]["total"], 3);
  EXPECT_EQ(recs[0]["buckets"], nlohmann::json::parse(R"([{"low":32,"high":63,"count":3}])"));
  EXPECT_EQ(recs[1]["metric"], "lifetime");
  EXPECT_EQ(recs[1]["unit"], "ms");
  EXPECT_EQ(recs[1]["buckets"], nlohmann::json::parse(R"([{"low":0,"high":1,"count":3}])"));
  EXPECT_EQ(js.str().find('\x1b'), std::string::npos);
}

TEST(Top, LinesSortedAndCut) {
  CountRow busy = row(443, 20, 2000, 11, "health\x1b[31m");
  busy.failed = 5;
  busy.tx_bytes = 2048;
  CountRow quiet = row(80, 2, 40, 12, "curl");
  quiet.failed = 2;
  TopView v;
  v.interval_s = 2;
  v.bytes = true;
  v.wall_ns = 0;
  auto lines = top_lines({quiet, busy}, v, 0, 0);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_NE(lines[0].find("11.0 connects/s, 7 failed  2 keys"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1], "q quit  s sort (by CONN/s)  p pause");
  EXPECT_NE(lines[3].find("CONN/s  FAIL%   LAT50   LAT99"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("TX      RX"), std::string::npos) << lines[3];
  // Busiest first: 20 connects in 2 s, 25% failed; the name escaped.
  EXPECT_NE(lines[4].find("health\\x1b[31m"), std::string::npos) << lines[4];
  EXPECT_NE(lines[4].find("10.0.0.9:443"), std::string::npos) << lines[4];
  EXPECT_NE(lines[4].find("    10.0   25.0 "), std::string::npos) << lines[4];
  EXPECT_NE(lines[4].find("2.0K"), std::string::npos) << lines[4];
  EXPECT_EQ(lines[4].find('\x1b'), std::string::npos);
  // By failed share: curl (100%) first; cut to 20 columns and one row.
  v.sort = next_sort(v.sort, true);
  EXPECT_EQ(v.sort, TopSort::Failed);
  lines = top_lines({busy, quiet}, v, 20, 1);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[4], "     12 curl        ");
  for (const auto& l : lines) EXPECT_LE(l.size(), 20u);
  // The sort key cycles, bytes only when shown.
  EXPECT_EQ(next_sort(TopSort::Latency, true), TopSort::Bytes);
  EXPECT_EQ(next_sort(TopSort::Latency, false), TopSort::Rate);
  EXPECT_EQ(next_sort(TopSort::Bytes, true), TopSort::Rate);
}

TEST(TopOptions, PlanOnATerminalAndWithout) {
  const ParseResult r = parse({"--top", "--lifetime"});
  ASSERT_EQ(r.kind, ParseResult::Kind::Run) << r.text;
  const Plan screen = make_plan(r.options, true);
  EXPECT_TRUE(screen.lines.top);
  EXPECT_TRUE(screen.lines.count);
  EXPECT_TRUE(screen.lines.by_process);
  EXPECT_EQ(screen.lines.interval_ns, 1'000'000'000u);
  EXPECT_TRUE(screen.lines.columns.lifetime);
  EXPECT_FALSE(screen.lines.selection.any());  // nothing per event
  EXPECT_TRUE(screen.probe.count_mode);
  EXPECT_TRUE(screen.probe.count_handshakes);
  EXPECT_TRUE(screen.probe.count_closes);
  EXPECT_FALSE(screen.probe.want_close);
  const Plan piped = make_plan(r.options, false);
  EXPECT_FALSE(piped.lines.top);
  EXPECT_TRUE(piped.lines.columns.failed);  // the interval tables' FAILED
  const Plan hist = make_plan(parse({"--hist", "--hist-by", "process"}).options, true);
  EXPECT_EQ(hist.lines.hist, HistBy::Process);
  EXPECT_FALSE(hist.lines.count);
  EXPECT_TRUE(hist.probe.count_by_process);
  EXPECT_TRUE(hist.probe.count_closes);
  EXPECT_FALSE(hist.probe.count_outcomes);
}

TEST(TopOptions, BadCombinations) {
  EXPECT_EQ(parse({"--top", "-j"}).text,
            "tcpconnect: --top cannot be combined with -j/--json: it draws one live table "
            "(without a terminal: use -c --interval)");
  EXPECT_EQ(parse({"--top", "--hist"}).exit_code, 2);
  EXPECT_EQ(parse({"--top", "-d"}).text, "tcpconnect: --top cannot be combined with -d/--dns");
  EXPECT_EQ(parse({"--hist", "--lifetime"}).text,
            "tcpconnect: --hist cannot be combined with --lifetime: the table counts connect "
            "attempts, not how they end");
  EXPECT_EQ(parse({"--hist-by", "port"}).text, "tcpconnect: --hist-by needs --hist");
  EXPECT_EQ(parse({"--hist", "--hist-by", "pid"}).text,
            "tcpconnect: invalid value 'pid' for --hist-by: expected port or process");
  EXPECT_EQ(parse({"--hist", "--rows", "3"}).text, "tcpconnect: --rows needs -c/--count or --top");
  EXPECT_EQ(parse({"--hist", "--interval", "1"}).kind, ParseResult::Kind::Run);
  const ParseResult tcplife = [] {
    std::vector<const char*> argv{"tcplife", "--top"};
    return parse_options(2, argv.data());
  }();
  EXPECT_EQ(tcplife.exit_code, 2);
}

}  // namespace
}  // namespace tcpconnect
