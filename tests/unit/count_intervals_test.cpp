#include "model/count_intervals.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "cli/options.h"
#include "plan/plan.h"
#include "sink/json_sink.h"
#include "sink/text_sink.h"

namespace tcpconnect {
namespace {

CountRow row(const char* daddr, std::uint16_t dport, std::uint64_t count, std::uint64_t failed) {
  CountRow r;
  r.ip = 4;
  inet_pton(AF_INET, "10.0.0.1", r.saddr.data());
  inet_pton(AF_INET, daddr, r.daddr.data());
  r.dport = dport;
  r.count = count;
  r.failed = failed;
  return r;
}

TEST(CountIntervals, EachTableHasTheConnectsOfItsInterval) {
  CountIntervals t;
  auto first = t.next({row("10.0.0.9", 80, 5, 1), row("10.0.0.8", 443, 2, 0)}, false, 0);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].count, 5u);
  EXPECT_EQ(first[0].failed, 1u);
  EXPECT_EQ(first[1].count, 2u);
  // 443 saw nothing new: not in the second table; 80 had 4 more, 2 of them failed; 22 is new.
  auto second = t.next(
      {row("10.0.0.9", 80, 9, 3), row("10.0.0.8", 443, 2, 0), row("10.0.0.7", 22, 6, 6)}, false, 0);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].dport, 22);  // the busiest first
  EXPECT_EQ(second[0].count, 6u);
  EXPECT_EQ(second[0].failed, 6u);
  EXPECT_EQ(second[1].dport, 80);
  EXPECT_EQ(second[1].count, 4u);
  EXPECT_EQ(second[1].failed, 2u);
}

TEST(CountIntervals, CumulativeKeepsTotalsAndRowsCutsTheTable) {
  CountIntervals t;
  t.next({row("10.0.0.9", 80, 5, 0)}, true, 0);
  auto second = t.next(
      {row("10.0.0.9", 80, 9, 1), row("10.0.0.8", 443, 2, 0), row("10.0.0.7", 22, 1, 0)}, true, 2);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].count, 9u);
  EXPECT_EQ(second[0].failed, 1u);
  EXPECT_EQ(second[1].count, 2u);
}

ParseResult parse(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"tcpconnect"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

TEST(CountIntervals, TextTableHasATimeLineAndFailed) {
  setenv("TZ", "UTC", 1);
  tzset();
  const ParseResult r = parse({"-c", "--interval", "1"});
  ASSERT_EQ(r.kind, ParseResult::Kind::Run) << r.text;
  const Plan p = make_plan(r.options);
  EXPECT_TRUE(p.probe.count_outcomes);
  std::ostringstream out, err;
  TextSink sink(p.lines, out, err);
  sink.start(StartInfo{"0.1.0", "tp_btf", 1});
  sink.count_interval({row("10.0.0.9", 80, 5, 1)}, 1'700'000'000'000'000'000ULL);
  EXPECT_EQ(out.str(),
            "\n22:13:20\n"
            "LADDR                     RADDR                     RPORT                CONNECTS   "
            "FAILED   FIRST        LAST         EVERY   PATTERN\n"
            "10.0.0.1                  10.0.0.9                  80                   5          "
            "1        -            -            -       -\n");
  unsetenv("TZ");
  tzset();
}

TEST(CountIntervals, JsonHasOneRecordPerRowPerInterval) {
  const ParseResult r = parse({"-c", "--interval", "2", "--cumulative", "-j"});
  ASSERT_EQ(r.kind, ParseResult::Kind::Run) << r.text;
  std::ostringstream out;
  JsonSink sink(make_plan(r.options).lines, out);
  sink.count_interval({row("10.0.0.9", 80, 5, 1), row("10.0.0.8", 443, 2, 0)},
                      1'700'000'000'000'000'000ULL);
  const std::string s = out.str();
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 2);
  EXPECT_NE(s.find(R"("type":"count","ts_ns":1700000000000000000,"time":")"), std::string::npos)
      << s;
  EXPECT_NE(s.find(R"("cumulative":true)"), std::string::npos) << s;
  EXPECT_NE(s.find(R"("connects":5,"failed":1,)"), std::string::npos) << s;
}

TEST(CountIntervals, OptionsNeedTheirPartners) {
  EXPECT_EQ(parse({"--interval", "1"}).text,
            "tcpconnect: --interval needs -c/--count, --top or --hist");
  EXPECT_EQ(parse({"--rows", "5"}).text, "tcpconnect: --rows needs -c/--count or --top");
  EXPECT_EQ(parse({"-c", "--cumulative"}).text, "tcpconnect: --cumulative needs --interval");
  EXPECT_EQ(parse({"-c", "--interval", "10ms"}).text,
            "tcpconnect: invalid duration '10ms' for --interval: at least 100ms");
  EXPECT_EQ(parse({"-c", "--rows", "0"}).text,
            "tcpconnect: invalid count '0' for --rows: expected an integer in 1..1000000");
  EXPECT_EQ(parse({"-c", "--interval", "1", "--rows", "3"}).options.rows, 3u);
}

}  // namespace
}  // namespace tcpconnect
