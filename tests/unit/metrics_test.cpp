#include "sink/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "model/event.h"
#include "sink/metrics_server.h"

namespace tcpconnect {
namespace {

using namespace std::chrono;

// An external tool the test needs: skipped where it is not installed, but CI
// must run it, so there a missing tool fails.
#define SKIP_OR_FAIL_UNDER_CI(why)          \
  do {                                      \
    if (std::getenv("CI")) FAIL() << (why); \
    GTEST_SKIP() << (why);                  \
  } while (0)

ConnectEvent outcome(Outcome o, std::uint16_t dport, std::string comm, std::uint64_t latency_ns,
                     int err = 0) {
  ConnectEvent ev;
  ev.kind = EventKind::Outcome;
  ev.outcome = o;
  ev.err = err;
  ev.dport = dport;
  ev.sport = 40000;
  ev.comm = std::move(comm);
  ev.latency_ns = latency_ns;
  return ev;
}

ConnectEvent accept_ev(std::uint16_t lport, std::string comm) {
  ConnectEvent ev;
  ev.kind = EventKind::Accept;
  ev.inbound = true;
  ev.outcome = Outcome::Established;
  ev.sport = lport;
  ev.dport = 50000;
  ev.comm = std::move(comm);
  return ev;
}

ConnectEvent close_ev(bool inbound, Outcome o, std::uint64_t duration_ns) {
  ConnectEvent ev;
  ev.kind = EventKind::Close;
  ev.inbound = inbound;
  ev.outcome = o;
  ev.duration_ns = duration_ns;
  ev.comm = "svc";
  return ev;
}

// A registry fed as the session feeds it: observe() counts one record's worth as the kernel
// does (bpf/metrics.bpf.c: an outcome is a connect counter and, with a latency, a latency
// histogram sample; an accept an accept counter; the close of an established connection a
// lifetime sample), then hands the running totals to update().
class Fed : public Metrics {
 public:
  using Metrics::Metrics;
  void observe(const ConnectEvent& ev) {
    count(ev);
    update(k_);
  }
  // What the kernel counts for `ev`, without an update (many records, then refresh()).
  void count(const ConnectEvent& ev) {
    switch (ev.kind) {
      case EventKind::Outcome:
        bump({MetricKind::Connect, ev.outcome, ev.err, ev.dport, ev.comm, false, 1, 0, ""});
        if (ev.latency_ns > 0)
          k_.latency[static_cast<std::size_t>(ev.outcome)].add(ev.latency_ns, kLatencyBoundsNs);
        break;
      case EventKind::Accept:
        bump({MetricKind::Accept, Outcome::Established, 0, ev.sport, ev.comm, false, 1, 0, ""});
        break;
      case EventKind::Close:
        if (ev.outcome == Outcome::Established || ev.outcome == Outcome::Reset)
          k_.duration[ev.inbound ? TC_DIR_IN : TC_DIR_OUT].add(ev.duration_ns, kDurationBoundsNs);
        break;
      case EventKind::Connect:
        break;
    }
  }
  // Adds c.n to the kernel's counter with c's key.
  void bump(MetricCounter c) {
    for (auto& have : k_.counters) {
      if (have.kind == c.kind && have.outcome == c.outcome && have.err == c.err &&
          have.port == c.port && have.comm == c.comm && have.spilled == c.spilled) {
        have.n += c.n;
        return;
      }
    }
    k_.counters.push_back(std::move(c));
  }
  void refresh() { update(k_); }

 private:
  KernelMetrics k_;
};

// The value of the sample whose name and labels are exactly `series`, or -1.
double value_of(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

std::vector<std::string> samples(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  return out;
}

// A histogram with no observations, as rendered.
std::string empty_histogram(const std::string& name, const std::string& labels,
                            const std::vector<std::string>& les) {
  std::string s;
  for (const auto& le : les) s += name + "_bucket{" + labels + "le=\"" + le + "\"} 0\n";
  s += name + "_bucket{" + labels + "le=\"+Inf\"} 0\n";
  std::string braces = labels.empty() ? "" : "{" + labels.substr(0, labels.size() - 1) + "}";
  s += name + "_sum" + braces + " 0\n" + name + "_count" + braces + " 0\n";
  return s;
}

const std::vector<std::string> kLatencyLe = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "5",    "10"};
const std::vector<std::string> kDurationLe = {"0.001", "0.01", "0.1", "0.5", "1",   "5",
                                              "10",    "30",   "60",  "300", "900", "3600"};

TEST(Metrics, EmptyRegistryHasEveryFamily) {
  Fed m;
  const std::string expected =
      "# HELP tcpconnect_connects_total TCP connection attempts, counted when their handshake "
      "ended (or connect() failed before a SYN), by outcome, destination port and task name.\n"
      "# TYPE tcpconnect_connects_total counter\n"
      "# HELP tcpconnect_accepts_total TCP connections accepted (accept() returned them), by "
      "local port and task name.\n"
      "# TYPE tcpconnect_accepts_total counter\n"
      "# HELP tcpconnect_handshake_latency_seconds Time from a connection attempt's SYN to the "
      "end of its handshake, by outcome: established for handshakes that completed; refused, "
      "timed_out, reset, error and aborted for attempts that failed, the time until they "
      "failed. Attempts that failed before sending a SYN have no latency.\n"
      "# TYPE tcpconnect_handshake_latency_seconds histogram\n" +
      empty_histogram("tcpconnect_handshake_latency_seconds", "outcome=\"established\",",
                      kLatencyLe) +
      empty_histogram("tcpconnect_handshake_latency_seconds", "outcome=\"refused\",", kLatencyLe) +
      empty_histogram("tcpconnect_handshake_latency_seconds", "outcome=\"timed_out\",",
                      kLatencyLe) +
      empty_histogram("tcpconnect_handshake_latency_seconds", "outcome=\"reset\",", kLatencyLe) +
      empty_histogram("tcpconnect_handshake_latency_seconds", "outcome=\"error\",", kLatencyLe) +
      empty_histogram("tcpconnect_handshake_latency_seconds", "outcome=\"aborted\",", kLatencyLe) +
      "# HELP tcpconnect_connection_duration_seconds Lifetime of connections that were "
      "established, from the SYN (outbound) or the accept (inbound) to the close.\n"
      "# TYPE tcpconnect_connection_duration_seconds histogram\n" +
      empty_histogram("tcpconnect_connection_duration_seconds", "dir=\"in\",", kDurationLe) +
      empty_histogram("tcpconnect_connection_duration_seconds", "dir=\"out\",", kDurationLe) +
      "# HELP tcpconnect_lost_events_total Connections not counted: records dropped because "
      "the ring buffer was full, or counters the kernel had no room for.\n"
      "# TYPE tcpconnect_lost_events_total counter\n"
      "tcpconnect_lost_events_total 0\n"
      "# HELP tcpconnect_lost_enrichment_total Command lines (kind exec) and DNS answers (kind "
      "dns) the kernel could not deliver; no connection is missing.\n"
      "# TYPE tcpconnect_lost_enrichment_total counter\n"
      "tcpconnect_lost_enrichment_total{kind=\"exec\"} 0\n"
      "tcpconnect_lost_enrichment_total{kind=\"dns\"} 0\n"
      "# HELP tcpconnect_last_read_timestamp_seconds When the tracer last read the kernel side, in "
      "seconds since the Unix epoch.\n"
      "# TYPE tcpconnect_last_read_timestamp_seconds gauge\n"
      "# HELP tcpconnect_build_info Version and attach method of the running tracer.\n"
      "# TYPE tcpconnect_build_info gauge\n";
  EXPECT_EQ(m.render(), expected);
}

TEST(Metrics, SmallSessionExactText) {
  Fed m;
  m.set_info("0.1.0", "fentry");
  m.observe(outcome(Outcome::Established, 443, "curl", 1'500'000));
  m.observe(outcome(Outcome::Established, 443, "curl", 300'000));
  m.observe(outcome(Outcome::Refused, 80, "curl", 0));  // no latency: not in the histogram
  m.observe(accept_ev(8080, "nginx"));
  m.observe(close_ev(false, Outcome::Established, 2 * 1'000'000'000ULL));
  m.observe(close_ev(true, Outcome::Reset, 5'000'000));
  m.set_lost(3);
  m.set_lost_enrichment(4, 5);

  const std::string text = m.render();
  auto family = [&](const std::string& name) {
    // Everything from the family's HELP line to the next HELP line.
    auto b = text.find("# HELP " + name + " ");
    EXPECT_NE(b, std::string::npos) << name;
    auto e = text.find("# HELP ", b + 1);
    return text.substr(b, e == std::string::npos ? std::string::npos : e - b);
  };
  EXPECT_EQ(family("tcpconnect_connects_total"),
            "# HELP tcpconnect_connects_total TCP connection attempts, counted when their "
            "handshake ended (or connect() failed before a SYN), by outcome, destination port "
            "and task name.\n"
            "# TYPE tcpconnect_connects_total counter\n"
            "tcpconnect_connects_total{outcome=\"established\",dport=\"443\",comm=\"curl\"} 2\n"
            "tcpconnect_connects_total{outcome=\"refused\",dport=\"80\",comm=\"curl\"} 1\n");
  EXPECT_EQ(family("tcpconnect_accepts_total"),
            "# HELP tcpconnect_accepts_total TCP connections accepted (accept() returned them), "
            "by local port and task name.\n"
            "# TYPE tcpconnect_accepts_total counter\n"
            "tcpconnect_accepts_total{lport=\"8080\",comm=\"nginx\"} 1\n");
  const std::string est = "tcpconnect_handshake_latency_seconds_bucket{outcome=\"established\",";
  std::string lines;
  for (const auto& line : samples(text, est)) lines += line + "\n";
  EXPECT_EQ(lines, est + "le=\"0.0001\"} 0\n" + est + "le=\"0.00025\"} 0\n" + est +
                       "le=\"0.0005\"} 1\n" + est + "le=\"0.001\"} 1\n" + est +
                       "le=\"0.0025\"} 2\n" + est + "le=\"0.005\"} 2\n" + est + "le=\"0.01\"} 2\n" +
                       est + "le=\"0.025\"} 2\n" + est + "le=\"0.05\"} 2\n" + est +
                       "le=\"0.1\"} 2\n" + est + "le=\"0.25\"} 2\n" + est + "le=\"0.5\"} 2\n" +
                       est + "le=\"1\"} 2\n" + est + "le=\"2.5\"} 2\n" + est + "le=\"5\"} 2\n" +
                       est + "le=\"10\"} 2\n" + est + "le=\"+Inf\"} 2\n");
  EXPECT_EQ(value_of(text, "tcpconnect_handshake_latency_seconds_sum{outcome=\"established\"}"),
            0.0018);
  EXPECT_EQ(value_of(text, "tcpconnect_handshake_latency_seconds_count{outcome=\"established\"}"),
            2);
  // The refused attempt had no latency (failed before a SYN): no sample in its series.
  EXPECT_EQ(value_of(text, "tcpconnect_handshake_latency_seconds_count{outcome=\"refused\"}"), 0);
  const std::string d = "tcpconnect_connection_duration_seconds";
  EXPECT_EQ(value_of(text, d + "_bucket{dir=\"out\",le=\"1\"}"), 0);
  EXPECT_EQ(value_of(text, d + "_bucket{dir=\"out\",le=\"5\"}"), 1);
  EXPECT_EQ(value_of(text, d + "_bucket{dir=\"out\",le=\"+Inf\"}"), 1);
  EXPECT_EQ(value_of(text, d + "_sum{dir=\"out\"}"), 2);
  EXPECT_EQ(value_of(text, d + "_count{dir=\"out\"}"), 1);
  EXPECT_EQ(value_of(text, d + "_bucket{dir=\"in\",le=\"0.001\"}"), 0);
  EXPECT_EQ(value_of(text, d + "_bucket{dir=\"in\",le=\"0.01\"}"), 1);
  EXPECT_EQ(value_of(text, d + "_sum{dir=\"in\"}"), 0.005);
  EXPECT_EQ(family("tcpconnect_lost_events_total"),
            "# HELP tcpconnect_lost_events_total Connections not counted: records dropped "
            "because the ring buffer was full, or counters the kernel had no room for.\n"
            "# TYPE tcpconnect_lost_events_total counter\n"
            "tcpconnect_lost_events_total 3\n");
  EXPECT_EQ(family("tcpconnect_lost_enrichment_total"),
            "# HELP tcpconnect_lost_enrichment_total Command lines (kind exec) and DNS answers "
            "(kind dns) the kernel could not deliver; no connection is missing.\n"
            "# TYPE tcpconnect_lost_enrichment_total counter\n"
            "tcpconnect_lost_enrichment_total{kind=\"exec\"} 4\n"
            "tcpconnect_lost_enrichment_total{kind=\"dns\"} 5\n");
  EXPECT_EQ(family("tcpconnect_build_info"),
            "# HELP tcpconnect_build_info Version and attach method of the running tracer.\n"
            "# TYPE tcpconnect_build_info gauge\n"
            "tcpconnect_build_info{version=\"0.1.0\",attach=\"fentry\"} 1\n");
}

TEST(Metrics, HistogramBucketsAreInclusive) {
  Fed m;
  const std::string l = "tcpconnect_handshake_latency_seconds_bucket{outcome=\"established\",";
  m.observe(outcome(Outcome::Established, 1, "a", 100'000));  // exactly 0.0001 s
  m.observe(outcome(Outcome::Established, 1, "a", 100'001));
  m.observe(outcome(Outcome::Established, 1, "a", 10'000'000'000ULL));  // exactly 10 s
  m.observe(outcome(Outcome::Established, 1, "a", 10'000'000'001ULL));
  std::string text = m.render();
  EXPECT_EQ(value_of(text, l + "le=\"0.0001\"}"), 1) << text;
  EXPECT_EQ(value_of(text, l + "le=\"0.00025\"}"), 2);
  EXPECT_EQ(value_of(text, l + "le=\"5\"}"), 2);
  EXPECT_EQ(value_of(text, l + "le=\"10\"}"), 3);
  EXPECT_EQ(value_of(text, l + "le=\"+Inf\"}"), 4);
  EXPECT_EQ(value_of(text, "tcpconnect_handshake_latency_seconds_count{outcome=\"established\"}"),
            4);

  const std::string d = "tcpconnect_connection_duration_seconds_bucket{dir=\"out\",";
  m.observe(close_ev(false, Outcome::Established, 0));  // a zero lifetime still counts
  m.observe(close_ev(false, Outcome::Established, 1'000'000));
  m.observe(close_ev(false, Outcome::Established, 3600'000'000'000ULL));
  m.observe(close_ev(false, Outcome::Established, 3600'000'000'001ULL));
  text = m.render();
  EXPECT_EQ(value_of(text, d + "le=\"0.001\"}"), 2) << text;
  EXPECT_EQ(value_of(text, d + "le=\"900\"}"), 2);
  EXPECT_EQ(value_of(text, d + "le=\"3600\"}"), 3);
  EXPECT_EQ(value_of(text, d + "le=\"+Inf\"}"), 4);
  EXPECT_EQ(value_of(text, "tcpconnect_connection_duration_seconds_count{dir=\"in\"}"), 0);
}

TEST(Metrics, OutcomeLabelValues) {
  Fed m;
  m.observe(outcome(Outcome::TimedOut, 1, "c", 1, ETIMEDOUT));
  m.observe(outcome(Outcome::Reset, 1, "c", 1, ECONNRESET));
  m.observe(outcome(Outcome::Aborted, 1, "c", 1));
  m.observe(outcome(Outcome::Error, 1, "c", 1, ENETUNREACH));
  m.observe(outcome(Outcome::Error, 1, "c", 1, EHOSTUNREACH));
  m.observe(outcome(Outcome::Error, 1, "c", 1, 4242));  // no name: "E4242"
  m.observe(outcome(Outcome::Error, 1, "c", 1, 0));
  const std::string text = m.render();
  for (const char* o :
       {"timed_out", "reset", "aborted", "enetunreach", "ehostunreach", "e4242", "error"}) {
    EXPECT_EQ(value_of(text, std::string("tcpconnect_connects_total{outcome=\"") + o +
                                 "\",dport=\"1\",comm=\"c\"}"),
              1)
        << o << "\n"
        << text;
  }
  // Latency by outcome; every error, whatever its errno, in one series.
  for (const auto& [o, n] : std::vector<std::pair<std::string, int>>{
           {"established", 0}, {"timed_out", 1}, {"reset", 1}, {"aborted", 1}, {"error", 4}}) {
    EXPECT_EQ(value_of(text, "tcpconnect_handshake_latency_seconds_count{outcome=\"" + o + "\"}"),
              n)
        << o;
  }
}

// A task name is escaped like the text output's COMM (a backslash becomes
// two), then for the exposition format (each of those becomes two again).
TEST(Metrics, LabelValuesAreEscaped) {
  Fed m;
  m.set_info("1.0\n\"beta\"", "C:\\fentry");
  m.observe(outcome(Outcome::Established, 1, "a\"b\\c", 1));
  const std::string text = m.render();
  EXPECT_EQ(samples(text, "tcpconnect_build_info{")[0],
            "tcpconnect_build_info{version=\"1.0\\n\\\"beta\\\"\",attach=\"C:\\\\fentry\"} 1");
  EXPECT_EQ(
      samples(text, "tcpconnect_connects_total{")[0],
      "tcpconnect_connects_total{outcome=\"established\",dport=\"1\",comm=\"a\\\"b\\\\\\\\c\"} "
      "1");
}

// The `comm` label is the text output's escaping of the name (sink/escape.h),
// then the exposition format's: every `\` of the escaped form shows as `\\`.
TEST(Metrics, CommIsAlwaysValidUtf8WithoutControls) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"caf\xc3\xa9", "caf\xc3\xa9"},  // valid 2-byte UTF-8 is kept
      {"\xe2\x82\xac\xf0\x9f\x98\x80", "\xe2\x82\xac\xf0\x9f\x98\x80"},  // 3 and 4 bytes
      {"\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"},          // CJK
      {"\xff\xfeok", "\\\\xff\\\\xfeok"},                                // not UTF-8 at all
      {"\xc0\xaf", "\\\\xc0\\\\xaf"},                                    // overlong '/'
      {"\xed\xa0\x80x", "\\\\xed\\\\xa0\\\\x80x"},                       // a surrogate
      {"\xf4\x90\x80\x80", "\\\\xf4\\\\x90\\\\x80\\\\x80"},              // past U+10FFFF
      {"ab\xe2\x82", "ab\\\\xe2\\\\x82"},                                // truncated at the end
      {"a\xe2(b", "a\\\\xe2(b"},                                         // bad continuation
      {"tab\there\nnl\x7f", "tab\\\\x09here\\\\x0anl\\\\x7f"},           // C0 and DEL
      {"c1\xc2\x85", "c1\\\\xc2\\\\x85"},                                // C1 (NEL), UTF-8
      {"\x9b"
       "2J",
       "\\\\x9b2J"},  // C1, raw byte
      {"\xe2\x80\xae"
       "rlo",
       "\\\\xe2\\\\x80\\\\xaerlo"},  // bidi override
  };
  for (const auto& [raw, want] : cases) {
    Fed m;
    m.observe(outcome(Outcome::Established, 1, raw, 1));
    auto s = samples(m.render(), "tcpconnect_connects_total{");
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0], "tcpconnect_connects_total{outcome=\"established\",dport=\"1\",comm=\"" + want +
                        "\"} 1");
  }
  // Escaping is one-to-one: names that differ keep series of their own.
  Fed m(MetricsConfig{.top_n = 2});
  m.observe(outcome(Outcome::Established, 1, "x\x01", 1));
  m.observe(outcome(Outcome::Established, 1, "x\x02", 1));
  const std::string text = m.render();
  EXPECT_EQ(value_of(text,
                     "tcpconnect_connects_total{outcome=\"established\",dport=\"1\",comm="
                     "\"x\\\\x01\"}"),
            1)
      << text;
  EXPECT_EQ(value_of(text,
                     "tcpconnect_connects_total{outcome=\"established\",dport=\"1\",comm="
                     "\"x\\\\x02\"}"),
            1)
      << text;
}

// "other" is the overflow series alone: a task really named "other" is
// labelled with its first byte escaped, and never merges into it.
TEST(Metrics, TaskNamedOtherDoesNotMergeIntoTheOverflow) {
  Fed m(MetricsConfig{.top_n = 1});
  m.observe(outcome(Outcome::Established, 1, "other", 1));
  m.observe(outcome(Outcome::Established, 1, "curl", 1));  // the second and last (2 * top_n)
  m.observe(outcome(Outcome::Established, 1, "wget", 1));  // over the bound
  m.observe(outcome(Outcome::Established, 1, "other", 1));
  m.observe(accept_ev(22, "other"));
  m.observe(accept_ev(22, "sshd"));
  const std::string text = m.render();
  EXPECT_EQ(samples(text, "tcpconnect_connects_total{"),
            (std::vector<std::string>{
                "tcpconnect_connects_total{outcome=\"established\",dport=\"1\",comm="
                "\"\\\\x6fther\"} 2",
                "tcpconnect_connects_total{outcome=\"established\",dport=\"1\",comm=\"curl\"} 1",
                "tcpconnect_connects_total{outcome=\"established\",dport=\"1\",comm=\"other\"} 1",
            }))
      << text;
  EXPECT_EQ(samples(text, "tcpconnect_accepts_total{"),
            (std::vector<std::string>{
                "tcpconnect_accepts_total{lport=\"22\",comm=\"\\\\x6fther\"} 1",
                "tcpconnect_accepts_total{lport=\"22\",comm=\"other\"} 1",
            }))
      << text;
  // Names that only look alike keep their own labels: "\x6fther" typed out
  // (backslash doubled by the escaping), and "other" with more after it.
  Fed n;
  n.observe(outcome(Outcome::Established, 1, "\\x6fther", 1));
  n.observe(outcome(Outcome::Established, 1, "others", 1));
  n.observe(outcome(Outcome::Established, 1, "Other", 1));
  EXPECT_EQ(samples(n.render(), "tcpconnect_connects_total{"),
            (std::vector<std::string>{
                "tcpconnect_connects_total{outcome=\"established\",dport=\"1\",comm=\"Other\"} 1",
                "tcpconnect_connects_total{outcome=\"established\",dport=\"1\",comm="
                "\"\\\\\\\\x6fther\"} 1",
                "tcpconnect_connects_total{outcome=\"established\",dport=\"1\",comm=\"others\"} 1",
            }));
}

TEST(Metrics, LastReadTimestamp) {
  Fed m;
  const std::string family =
      "# HELP tcpconnect_last_read_timestamp_seconds When the tracer last read the kernel side, "
      "in seconds since the Unix epoch.\n"
      "# TYPE tcpconnect_last_read_timestamp_seconds gauge\n";
  // No sample until the kernel side was read once.
  EXPECT_NE(m.render().find(family + "# HELP tcpconnect_build_info"), std::string::npos)
      << m.render();
  EXPECT_TRUE(samples(m.render(), "tcpconnect_last_read_timestamp_seconds").empty());
  m.set_last_read(1'764'912'345'123'456'789ULL);
  EXPECT_NE(m.render().find(family + "tcpconnect_last_read_timestamp_seconds "
                                     "1764912345.123456789\n"),
            std::string::npos)
      << m.render();
  m.set_last_read(1'764'912'400'000'000'007ULL);  // the latest read wins
  EXPECT_EQ(
      samples(m.render(), "tcpconnect_last_read_timestamp_seconds"),
      (std::vector<std::string>{"tcpconnect_last_read_timestamp_seconds 1764912400.000000007"}));
  EXPECT_DOUBLE_EQ(value_of(m.render(), "tcpconnect_last_read_timestamp_seconds"), 1764912400.0);
}

// The poll thread sets while the HTTP thread renders.
TEST(Metrics, LastReadIsSetWhileRendering) {
  Fed m;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) {
      const std::string text = m.render();
      auto s = samples(text, "tcpconnect_last_read_timestamp_seconds");
      ASSERT_LE(s.size(), 1u);
      if (!s.empty()) {
        ASSERT_EQ(s[0].rfind("tcpconnect_last_read_timestamp_seconds 17", 0), 0u);
      }
    }
  });
  for (std::uint64_t i = 1; i <= 20'000; ++i) m.set_last_read(1'700'000'000'000'000'000ULL + i);
  done = true;
  reader.join();
  EXPECT_EQ(samples(m.render(), "tcpconnect_last_read_timestamp_seconds")[0],
            "tcpconnect_last_read_timestamp_seconds 1700000000.000020000");
}

// Each update admits the top_n busiest values of each label (ties in value order) while fewer
// than 2 * top_n have a series; the rest is "other".
TEST(Metrics, TopNAdmitsBusiestValuesPerLabel) {
  Fed m(MetricsConfig{.top_n = 2});
  m.observe(outcome(Outcome::Established, 10, "c1", 1));
  m.observe(outcome(Outcome::Established, 9, "c2", 1));
  m.observe(outcome(Outcome::Established, 11, "c3", 1));  // not among the 2 busiest
  m.observe(outcome(Outcome::Refused, 12, "c1", 1));      // c1 keeps its own value
  m.observe(outcome(Outcome::Established, 10, "c4", 1));  // port 10 too
  // c3 and port 11 become among the busiest: their own series from then on; what "other"
  // counted of them stays there.
  for (int i = 0; i < 3; ++i) m.observe(outcome(Outcome::Established, 11, "c3", 1));
  // lport has its own budget: ports 10 and 9 taken for dport do not count.
  m.observe(accept_ev(22, "c1"));
  m.observe(accept_ev(80, "c2"));
  m.observe(accept_ev(443, "c1"));
  std::string text = m.render();
  EXPECT_EQ(samples(text, "tcpconnect_connects_total{"),
            (std::vector<std::string>{
                "tcpconnect_connects_total{outcome=\"established\",dport=\"9\",comm=\"c2\"} 1",
                "tcpconnect_connects_total{outcome=\"established\",dport=\"10\",comm=\"c1\"} 1",
                "tcpconnect_connects_total{outcome=\"established\",dport=\"10\",comm=\"other\"} 1",
                "tcpconnect_connects_total{outcome=\"established\",dport=\"11\",comm=\"c3\"} 3",
                // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one sample, split to fit
                "tcpconnect_connects_total{outcome=\"established\",dport=\"other\",comm=\"other\"} "
                "1",
                "tcpconnect_connects_total{outcome=\"refused\",dport=\"other\",comm=\"c1\"} 1",
            }))
      << text;
  EXPECT_EQ(samples(text, "tcpconnect_accepts_total{"),
            (std::vector<std::string>{
                "tcpconnect_accepts_total{lport=\"22\",comm=\"c1\"} 1",
                "tcpconnect_accepts_total{lport=\"80\",comm=\"c2\"} 1",
                "tcpconnect_accepts_total{lport=\"other\",comm=\"c1\"} 1",
            }))
      << text;

  // At most 2 * top_n values of a label get a series: c1, c2, c3 and one more. c5 is among the
  // 2 busiest from its 5th connect (ties with c1 and c3 at 4 go in name order).
  for (const char* comm : {"c5", "c6"})
    for (int i = 0; i < 10; ++i) m.observe(outcome(Outcome::Established, 9, comm, 1));
  text = m.render();
  EXPECT_EQ(
      value_of(text, R"(tcpconnect_connects_total{outcome="established",dport="9",comm="c5"})"), 6)
      << text;
  EXPECT_EQ(
      value_of(text, R"(tcpconnect_connects_total{outcome="established",dport="9",comm="c6"})"), -1)
      << text;
  EXPECT_EQ(
      value_of(text, R"(tcpconnect_connects_total{outcome="established",dport="9",comm="other"})"),
      14)
      << text;

  Fed none(MetricsConfig{.top_n = 0});
  none.observe(outcome(Outcome::Established, 10, "c1", 1));
  EXPECT_EQ(value_of(none.render(),
                     "tcpconnect_connects_total{outcome=\"established\",dport="
                     "\"other\",comm=\"other\"}"),
            1);
}

// 30 ports connected to once, then 500 connects to one more: that port gets its own series
// although 20 (the default bound) were admitted before it; between any two scrapes no series
// disappears and none decreases, "other" included; the series add up to every connect.
TEST(Metrics, BusyPortSeenLateGetsItsOwnSeries) {
  Fed m;
  for (std::uint16_t p = 1000; p < 1030; ++p) m.observe(outcome(Outcome::Established, p, "a", 1));
  std::map<std::string, double> before;
  auto check_monotonic = [&] {
    std::map<std::string, double> now;
    for (const auto& line : samples(m.render(), "tcpconnect_connects_total{"))
      now[line.substr(0, line.rfind(' '))] = std::stod(line.substr(line.rfind(' ') + 1));
    for (const auto& [series, v] : before) {
      ASSERT_TRUE(now.contains(series)) << series << " disappeared";
      EXPECT_GE(now[series], v) << series;
    }
    before = now;
  };
  check_monotonic();
  for (int i = 0; i < 500; ++i) {
    m.observe(outcome(Outcome::Established, 5432, "a", 1));
    if (i % 50 == 0) check_monotonic();
  }
  check_monotonic();
  const std::string text = m.render();
  // Its first connect tied with 30 others and went to "other"; the rest is its own.
  EXPECT_EQ(
      value_of(text, R"(tcpconnect_connects_total{outcome="established",dport="5432",comm="a"})"),
      499)
      << text;
  EXPECT_EQ(
      value_of(text, R"(tcpconnect_connects_total{outcome="established",dport="other",comm="a"})"),
      11)
      << text;
  double total = 0;
  for (const auto& [series, v] : before) total += v;
  EXPECT_EQ(total, 530);
}

// Counters the kernel had no room for (spilled: no port, no name) count under "other".
TEST(Metrics, SpilledCountersAreOther) {
  Fed m;
  m.bump({MetricKind::Connect, Outcome::Refused, 0, 0, "", true, 5, 0, ""});
  m.bump({MetricKind::Accept, Outcome::Established, 0, 0, "", true, 2, 0, ""});
  m.refresh();
  const std::string text = m.render();
  EXPECT_EQ(samples(text, "tcpconnect_connects_total{"),
            (std::vector<std::string>{
                R"(tcpconnect_connects_total{outcome="refused",dport="other",comm="other"} 5)"}))
      << text;
  EXPECT_EQ(samples(text, "tcpconnect_accepts_total{"),
            (std::vector<std::string>{R"(tcpconnect_accepts_total{lport="other",comm="other"} 2)"}))
      << text;
}

TEST(Metrics, LostAndBuildInfo) {
  Fed m;
  EXPECT_EQ(value_of(m.render(), "tcpconnect_lost_events_total"), 0);
  EXPECT_TRUE(samples(m.render(), "tcpconnect_build_info{").empty());
  m.set_lost(5);
  m.set_lost(42);  // a running total, not a delta
  m.set_lost_enrichment(7, 1);
  m.set_lost_enrichment(9, 2);
  m.set_info("0.1.0", "kprobe");
  const std::string text = m.render();
  EXPECT_EQ(value_of(text, "tcpconnect_lost_events_total"), 42);
  EXPECT_EQ(value_of(text, "tcpconnect_lost_enrichment_total{kind=\"exec\"}"), 9);
  EXPECT_EQ(value_of(text, "tcpconnect_lost_enrichment_total{kind=\"dns\"}"), 2);
  EXPECT_EQ(value_of(text, "tcpconnect_build_info{version=\"0.1.0\",attach=\"kprobe\"}"), 1);
}

TEST(Metrics, ObserveAndRenderConcurrently) {
  Fed m(MetricsConfig{.top_n = 5});
  constexpr int kEvents = 50'000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < kEvents; ++i) {
      m.count(outcome(Outcome::Established, static_cast<std::uint16_t>(i % 7),
                      "c" + std::to_string(i % 9), 1 + i % 5'000'000));
      if (i % 10 == 9) m.refresh();  // the kernel's totals, read every few events
      if (i % 1000 == 0) m.set_lost(static_cast<std::uint64_t>(i));
    }
    m.refresh();
    done = true;
  });
  double last = 0;
  int renders = 0;
  while (!done || renders == 0) {
    std::string text = m.render();
    double count =
        value_of(text, "tcpconnect_handshake_latency_seconds_count{outcome=\"established\"}");
    EXPECT_GE(count, last);  // counters never go back
    EXPECT_EQ(value_of(text,
                       "tcpconnect_handshake_latency_seconds_bucket{outcome=\"established\","
                       "le=\"+Inf\"}"),
              count);
    last = count;
    ++renders;
  }
  writer.join();
  const std::string text = m.render();
  double total = 0;
  for (const auto& s : samples(text, "tcpconnect_connects_total{"))
    total += std::stod(s.substr(s.rfind(' ') + 1));
  EXPECT_EQ(total, kEvents);
  EXPECT_EQ(value_of(text, "tcpconnect_handshake_latency_seconds_count{outcome=\"established\"}"),
            kEvents);
  EXPECT_GT(renders, 1);
}

// A populated registry with everything that needs escaping or folding.
void populate(Fed& m) {
  m.set_info("0.1.0", "fentry");
  m.set_lost(3);
  m.set_lost_enrichment(2, 1);
  m.observe(outcome(Outcome::Established, 443, "curl", 1'500'000));
  m.observe(outcome(Outcome::Refused, 80, "a\"b\\c\n\xff", 200'000));
  m.observe(outcome(Outcome::Error, 80, "curl", 20'000'000, ENETUNREACH));
  m.observe(accept_ev(22, "sshd"));
  m.observe(close_ev(false, Outcome::Established, 2'000'000'000));
  m.observe(close_ev(true, Outcome::Reset, 7'000'000));
}

std::string run_capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  *status = pclose(f);
  return out;
}

TEST(Metrics, PromtoolAcceptsTheExposition) {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0)
    SKIP_OR_FAIL_UNDER_CI("no /usr/bin/promtool (Debian: prometheus)");
  Fed m(MetricsConfig{.top_n = 1});
  populate(m);
  const auto path = std::filesystem::temp_directory_path() /
                    ("tcpconnect-metrics-" + std::to_string(getpid()) + ".txt");
  std::ofstream(path) << m.render();
  int status = -1;
  std::string out =
      run_capture(std::string(promtool) + " check metrics < " + path.string() + " 2>&1", &status);
  std::filesystem::remove(path);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "") << out;  // lint findings are printed even on success
}

// --- the HTTP server ---

int listening_socket(int family, const char* addr, int* port) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, addr, &s6->sin6_addr);
    len = sizeof(*s6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    inet_pton(AF_INET, addr, &s4->sin_addr);
    len = sizeof(*s4);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 16) != 0) {
    close(fd);
    return -1;
  }
  len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  *port = ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                   : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return fd;
}

TEST(MetricsServer, ServesMetricsIndexAnd404) {
  Fed m;
  populate(m);
  std::string err;
  auto srv = MetricsServer::start(m, "127.0.0.1", 0, err);
  ASSERT_TRUE(srv) << err;
  ASSERT_GT(srv->port(), 0);
  httplib::Client cli("127.0.0.1", srv->port());
  auto res = cli.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(res->body, m.render());

  // Each scrape renders anew.
  m.observe(outcome(Outcome::Established, 8443, "wget", 1));
  res = cli.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("comm=\"wget\""), std::string::npos);

  res = cli.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("/metrics"), std::string::npos);

  res = cli.Get("/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = cli.Get("/metrics/extra");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST(MetricsServer, BindFailureIsReportedSynchronously) {
  Fed m;
  int port = 0;
  int fd = listening_socket(AF_INET, "127.0.0.1", &port);
  ASSERT_GE(fd, 0);
  std::string err;
  auto srv = MetricsServer::start(m, "127.0.0.1", static_cast<std::uint16_t>(port), err);
  EXPECT_FALSE(srv);
  EXPECT_EQ(err, "cannot listen on 127.0.0.1:" + std::to_string(port) + ": Address already in use");
  close(fd);

  // A second server may not share a port with the first (no SO_REUSEPORT).
  err.clear();
  auto first = MetricsServer::start(m, "127.0.0.1", 0, err);
  ASSERT_TRUE(first) << err;
  auto second = MetricsServer::start(m, "127.0.0.1", first->port(), err);
  EXPECT_FALSE(second);
  EXPECT_EQ(err, "cannot listen on 127.0.0.1:" + std::to_string(first->port()) +
                     ": Address already in use");

  err.clear();
  EXPECT_FALSE(MetricsServer::start(m, "localhost", 9464, err));
  EXPECT_EQ(err, "cannot listen on localhost:9464: not a numeric IP address");
  EXPECT_FALSE(MetricsServer::start(m, "1.2.3.4.5", 9464, err));
  EXPECT_EQ(err.find('\n'), std::string::npos);
}

TEST(MetricsServer, IPv6Loopback) {
  int port = 0;
  int probe = listening_socket(AF_INET6, "::1", &port);
  if (probe < 0) GTEST_SKIP() << "no IPv6 loopback here: " << std::strerror(errno);
  close(probe);
  Fed m;
  populate(m);
  std::string err;
  auto srv = MetricsServer::start(m, "::1", 0, err);
  ASSERT_TRUE(srv) << err;
  httplib::Client cli("::1", srv->port());
  auto res = cli.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, m.render());

  // Bound to ::1 only: IPv4 loopback gets nothing.
  httplib::Client v4("127.0.0.1", srv->port());
  v4.set_connection_timeout(1);
  EXPECT_FALSE(v4.Get("/metrics"));

  int busy = listening_socket(AF_INET6, "::1", &port);
  ASSERT_GE(busy, 0);
  EXPECT_FALSE(MetricsServer::start(m, "::1", static_cast<std::uint16_t>(port), err));
  EXPECT_EQ(err, "cannot listen on [::1]:" + std::to_string(port) + ": Address already in use");
  close(busy);
}

TEST(MetricsServer, ClientsHangingUpMidResponseDoNotHurt) {
  // A body far larger than the socket buffers, so the server is still
  // writing when the reset arrives. SIGPIPE is not ignored in this process:
  // the server threads must not die of it.
  Fed m(MetricsConfig{.top_n = 100'000});
  for (int i = 0; i < 20'000; ++i)
    m.count(outcome(Outcome::Established, static_cast<std::uint16_t>(i), "task" + std::to_string(i),
                    1));
  m.refresh();  // one update, as the session reads the kernel's table at once
  ASSERT_GT(m.render().size(), 1'000'000u);
  std::string err;
  auto srv = MetricsServer::start(m, "127.0.0.1", 0, err);
  ASSERT_TRUE(srv) << err;
  for (int i = 0; i < 50; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(srv->port());
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(write(fd, req, sizeof(req) - 1), static_cast<ssize_t>(sizeof(req) - 1));
    // A FIN before the response (the server's next write after the peer's
    // reset is the one that raises SIGPIPE), a reset after reading a little,
    // and an abortive close.
    if (i % 3 == 1) {
      char buf[1024];
      ASSERT_GT(read(fd, buf, sizeof(buf)), 0);
    } else if (i % 3 == 2) {
      linger lg{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);
  }
  httplib::Client cli("127.0.0.1", srv->port());
  auto res = cli.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, m.render());
}

TEST(MetricsServer, StopsPromptlyWithAnIdleKeepAliveClient) {
  Fed m;
  std::string err;
  auto srv = MetricsServer::start(m, "127.0.0.1", 0, err);
  ASSERT_TRUE(srv) << err;
  httplib::Client cli("127.0.0.1", srv->port());
  cli.set_keep_alive(true);
  ASSERT_TRUE(cli.Get("/metrics"));
  auto t0 = steady_clock::now();
  srv.reset();
  EXPECT_LT(steady_clock::now() - t0, seconds(3));
}

// Prometheus itself scraping the server: the format as the real consumer
// parses it, and the HTTP details (keep-alive, headers) it relies on.
TEST(MetricsServer, PrometheusScrapes) {
  const char* prometheus = "/usr/bin/prometheus";
  if (access(prometheus, X_OK) != 0)
    SKIP_OR_FAIL_UNDER_CI("no /usr/bin/prometheus (Debian: prometheus)");
  Fed m;
  populate(m);
  std::string err;
  auto srv = MetricsServer::start(m, "127.0.0.1", 0, err);
  ASSERT_TRUE(srv) << err;

  // Removes the directory and kills Prometheus however the test ends.
  struct Cleanup {
    std::filesystem::path dir;
    pid_t pid = -1;
    ~Cleanup() {
      // cppcheck-suppress knownConditionTrueFalse ; pid is set once Prometheus is up, below
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } c;
  char tmpl[] = "/tmp/tcpconnect-prom-XXXXXX";
  ASSERT_TRUE(mkdtemp(tmpl));
  c.dir = tmpl;
  std::ofstream(c.dir / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      << "scrape_configs:\n  - job_name: tcpconnect\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << srv->port() << "']\n";
  const std::string log_path = (c.dir / "prometheus.log").string();
  auto log = [&] {
    std::ifstream in(log_path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };

  // Prometheus's own port: bound and released just before, retried if taken.
  // posix_spawn, not fork: this process has threads (the server's).
  int web_port = 0;
  for (int attempt = 0; attempt < 5 && c.pid < 0; ++attempt) {
    int fd = listening_socket(AF_INET, "127.0.0.1", &web_port);
    ASSERT_GE(fd, 0);
    close(fd);
    const std::string cfg = "--config.file=" + (c.dir / "prometheus.yml").string();
    const std::string data = "--storage.tsdb.path=" + (c.dir / "data").string();
    const std::string web = "--web.listen-address=127.0.0.1:" + std::to_string(web_port);
    char* argv[] = {const_cast<char*>(prometheus), const_cast<char*>(cfg.c_str()),
                    const_cast<char*>(data.c_str()), const_cast<char*>(web.c_str()), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, prometheus, &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    ASSERT_EQ(rc, 0) << std::strerror(rc);
    httplib::Client api("127.0.0.1", web_port);
    bool ready = false, exited = false;
    for (int i = 0; i < 200 && !ready && !exited; ++i) {
      auto r = api.Get("/-/ready");
      ready = r && r->status == 200;
      if (!ready) std::this_thread::sleep_for(milliseconds(100));
      exited = waitpid(pid, nullptr, WNOHANG) == pid;  // the port was taken?
    }
    if (ready) {
      c.pid = pid;
    } else if (!exited) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  ASSERT_GT(c.pid, 0) << "prometheus did not start: " << log();

  // Polls an instant query until it returns `want` (or times out).
  httplib::Client api("127.0.0.1", web_port);
  auto query = [&](const std::string& q) -> std::string {
    auto r = api.Get("/api/v1/query", httplib::Params{{"query", q}}, httplib::Headers{});
    if (!r || r->status != 200) return "";
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (j.is_discarded() || j["data"]["result"].empty()) return "";
    return j["data"]["result"][0]["value"][1].get<std::string>();
  };
  auto wait_value = [&](const std::string& q, const std::string& want) {
    std::string got;
    for (auto end = steady_clock::now() + seconds(30); steady_clock::now() < end;) {
      got = query(q);
      if (got == want) break;
      std::this_thread::sleep_for(milliseconds(200));
    }
    return got;
  };
  EXPECT_EQ(wait_value("up{job=\"tcpconnect\"}", "1"), "1") << log();
  EXPECT_EQ(wait_value("tcpconnect_connects_total{outcome=\"enetunreach\",dport=\"80\"}", "1"),
            "1");
  m.observe(outcome(Outcome::Established, 443, "curl", 1'500'000));
  EXPECT_EQ(wait_value("tcpconnect_connects_total{outcome=\"established\",comm=\"curl\"}", "2"),
            "2");
  EXPECT_EQ(wait_value("sum(tcpconnect_handshake_latency_seconds_count)", "4"), "4");
  EXPECT_EQ(wait_value("tcpconnect_build_info", "1"), "1");
  // The hostile task name arrives as valid UTF-8 with the exposition's
  // escapes undone: the label is the escaped name, a"b\\c\x0a\xff (PromQL
  // doubles each backslash again).
  EXPECT_EQ(wait_value("tcpconnect_connects_total{comm=\"a\\\"b\\\\\\\\c\\\\x0a\\\\xff\"}", "1"),
            "1");

  kill(c.pid, SIGTERM);
  int st = 0;
  waitpid(c.pid, &st, 0);
  c.pid = -1;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << log();
}

}  // namespace
}  // namespace tcpconnect
