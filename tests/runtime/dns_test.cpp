// Runtime tests of -d/--dns: dns_helper resolves a name through glibc's resolver against dnsmasq
// in a test-owned namespace, then connects to the answer; the tracer must label that connect
// with the name. Every assertion is on what tcpconnect printed for the helper's PID and the
// destination it connected to.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dns_server.h"
#include "fixture.h"
#include "harness.h"
#include "netns.h"

using namespace std::chrono;
using nlohmann::json;
using rt::DnsServer;
using rt::PendingDns;
using rt::Tracer;

namespace {

constexpr int kPort = 9;  // nothing listens in the namespaces: every connect is refused
const std::string kPortArg = std::to_string(kPort);
// bcc prints the usual header (DPORT padded to 6) followed by " QUERY".
const char* kHeader = "PID     COMM         IP SADDR            DADDR            DPORT  QUERY";

std::string rtrim(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// bcc's -d row: PID, COMM, IP, SADDR, DADDR, DPORT, QUERY. The destinations are addresses of
// the namespace's own lo, so the kernel picks the destination itself as the source address.
std::string row(int pid, const std::string& comm, int af, const std::string& daddr,
                const std::string& query) {
  return rtrim(fmt::format("{:<7} {:<12} {:<2} {:<16} {:<16} {:<6} {}", pid, comm, af, daddr, daddr,
                           kPort, query));
}

// `n` host records for one name, at 10.78.0.1..n: the answer for it does not fit in 512 bytes.
std::vector<std::string> big_records(const std::string& name, int n) {
  std::vector<std::string> r;
  for (int i = 1; i <= n; i++) r.push_back(fmt::format("--host-record={},10.78.0.{}", name, i));
  return r;
}
constexpr int kBigCount = 40;  // 677-byte answer with EDNS, 666 bytes over TCP

// Connect records of `pid` to `daddr`.
std::vector<json> to(const std::vector<json>& recs, int pid, const std::string& daddr) {
  std::vector<json> out;
  for (auto& j : recs)
    if (j.value("pid", -1) == pid && j.value("daddr", "") == daddr) out.push_back(j);
  return out;
}

// The record names `name`, from an answer received moments ago.
void expect_fresh_query(const json& r, const std::string& name) {
  EXPECT_EQ(r.value("query", json()), name) << r.dump();
  ASSERT_TRUE(r.contains("query_age_ms") && r["query_age_ms"].is_number_integer()) << r.dump();
  EXPECT_GE(r["query_age_ms"].get<long long>(), 0) << r.dump();
  EXPECT_LT(r["query_age_ms"].get<long long>(), 2000) << r.dump();
}

void expect_no_query(const json& r) {
  ASSERT_TRUE(r.contains("query")) << r.dump();
  EXPECT_TRUE(r["query"].is_null()) << r.dump();
  ASSERT_TRUE(r.contains("query_age_ms")) << r.dump();
  EXPECT_TRUE(r["query_age_ms"].is_null()) << r.dump();
}

bool require(bool ok, const std::string& what) {
  if (ok) return true;
  // CI must exercise these: a skip there would hide a broken setup.
  if (std::getenv("CI")) ADD_FAILURE() << "DNS tests cannot run in CI: " << what;
  return false;
}

// The server and helper alone, without the tracer: each kind of answer the tracer tests rely on
// really is served, by the transport the test expects.
class DnsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!require(geteuid() == 0, "need root (ip netns add)")) GTEST_SKIP() << "need root";
    if (!require(access(rt::kDnsmasqBin, X_OK) == 0, "dnsmasq (dnsmasq-base) is missing"))
      GTEST_SKIP() << rt::kDnsmasqBin << " is missing";
  }
};

class Dns : public rt::RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!require(access(rt::kDnsmasqBin, X_OK) == 0, "dnsmasq (dnsmasq-base) is missing"))
      GTEST_SKIP() << rt::kDnsmasqBin << " is missing";
  }

  std::unique_ptr<Tracer> start_json(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"-j", "-d"};
    args.insert(args.end(), extra.begin(), extra.end());
    return start(args, rt::kJsonStart);
  }

  // Waits until the tracer printed a connect record for every (pid, daddr) of `want`, then
  // stops it and returns all its connect records.
  std::vector<json> finish(Tracer& t, const std::vector<std::pair<int, std::string>>& want) {
    auto end = steady_clock::now() + seconds(5);
    for (;;) {
      std::vector<json> recs;
      for (auto& line : t.out_lines()) {
        auto j = json::parse(line, nullptr, false);  // the last line may be incomplete
        if (!j.is_discarded() && j.value("type", "") == "connect") recs.push_back(j);
      }
      bool all = true;
      for (auto& [pid, daddr] : want) all = all && !to(recs, pid, daddr).empty();
      if (all || steady_clock::now() >= end) break;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return records(t, "connect");
  }

  // Text mode: waits for a line of each (pid, daddr) of `want`, stops the tracer, returns its
  // lines.
  std::vector<std::string> finish_text(Tracer& t,
                                       const std::vector<std::pair<int, std::string>>& want) {
    auto end = steady_clock::now() + seconds(5);
    while (steady_clock::now() < end) {
      auto lines = t.out_lines();
      bool all = true;
      for (auto& [pid, daddr] : want) {
        bool seen = false;
        for (const auto& l : rt::lines_for_pid(lines, pid))
          seen = seen || l.find(" " + daddr + " ") != std::string::npos;
        all = all && seen;
      }
      if (all) break;
      std::this_thread::sleep_for(milliseconds(20));
    }
    EXPECT_EQ(t.stop(), 0) << t.err();
    return t.out_lines();
  }
};

// ---- The fixture itself ----

TEST_F(DnsFixture, ServesEachKindOfAnswer) {
  std::string ns_name;
  ino_t inode = 0;
  {
    std::vector<std::string> recs = {
        "--host-record=web.test,10.77.0.1,fd77::1", "--cname=alias1.test,alias2.test",
        "--cname=alias2.test,target.test", "--host-record=target.test,10.77.0.2"};
    for (auto& r : big_records("big.test", kBigCount)) recs.push_back(r);
    DnsServer s("tcdnsfix", recs);
    ns_name = s.ns.name();
    inode = s.ns.inode();
    s.add_local("10.77.0.1/32");
    s.add_local("10.77.0.2/32");
    s.add_local("10.78.0.0/24");
    s.add_local("fd77::1/128");

    auto a = s.resolve({"web.test", kPortArg});
    EXPECT_EQ(a.name, "web.test");
    EXPECT_EQ(a.addr, "10.77.0.1");
    EXPECT_EQ(a.naddrs, 1);
    EXPECT_EQ(a.result, "ECONNREFUSED");  // the address is local, nothing listens

    auto aaaa = s.resolve({"--type", "AAAA", "web.test", kPortArg});
    EXPECT_EQ(aaaa.addr, "fd77::1");
    EXPECT_EQ(aaaa.result, "ECONNREFUSED");

    auto cname = s.resolve({"alias1.test", kPortArg});
    EXPECT_EQ(cname.addr, "10.77.0.2");
    EXPECT_EQ(cname.naddrs, 1);

    // UDP with EDNS carries all 40 records; plain UDP is truncated (30 records, TC), and glibc
    // then gets all 40 over TCP; --tcp asks over TCP straight away.
    for (auto& opts : std::vector<std::vector<std::string>>{{"--edns"}, {}, {"--tcp"}}) {
      auto args = opts;
      args.emplace_back("big.test");
      args.push_back(kPortArg);
      auto big = s.resolve(args);
      EXPECT_EQ(big.naddrs, kBigCount) << (opts.empty() ? "udp" : opts[0]);
      EXPECT_EQ(big.addr.rfind("10.78.0.", 0), 0u) << big.addr;
      EXPECT_EQ(big.result, "ECONNREFUSED");
    }

    // No such name: exit 1 with a reason; usage errors: exit 2.
    auto none = rt::run_cmd(s.helper_argv({"nosuch.test", kPortArg}));
    EXPECT_EQ(none.status, 1);
    EXPECT_TRUE(none.out.empty()) << none.out;
    EXPECT_NE(none.err.find("nosuch.test"), std::string::npos) << none.err;
    EXPECT_EQ(rt::run_cmd({DNS_HELPER_BIN, "web.test", kPortArg}).status, 2);
    EXPECT_EQ(rt::run_cmd(s.helper_argv({"--type", "MX", "web.test", kPortArg})).status, 2);

    EXPECT_NE(s.log().find("query[AAAA] web.test from 127.0.0.1"), std::string::npos) << s.log();
  }
  // Server stopped and reaped, namespace gone.
  EXPECT_TRUE(rt::pids_in_netns(inode).empty());
  EXPECT_FALSE(rt::netns_listed(ns_name));
}

TEST_F(DnsFixture, PausedHelperHasResolvedBeforeItConnects) {
  DnsServer s("tcdnspause", {"--host-record=web.test,10.77.0.1"});
  s.add_local("10.77.0.1/32");
  PendingDns p(s, {"web.test", kPortArg});
  EXPECT_EQ(p.addr(), "10.77.0.1");
  // dnsmasq's log reaches the test through a pipe: the line can come after the answer.
  for (int i = 0; i < 100 && s.log().find("query[A] web.test") == std::string::npos; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_NE(s.log().find("query[A] web.test"), std::string::npos) << s.log();
  auto r = p.go();
  EXPECT_EQ(r.pid, p.pid());
  EXPECT_EQ(r.addr, "10.77.0.1");
  EXPECT_EQ(r.result, "ECONNREFUSED");

  // --wait-stdin: the PID is known before the query is sent.
  auto queries = [&] {
    std::string log = s.log();
    size_t n = 0;
    for (size_t pos = 0; (pos = log.find("query[A] web.test", pos)) != std::string::npos; pos++)
      n++;
    return n;
  };
  size_t before = queries();
  rt::Child c(s.helper_argv({"--wait-stdin", "web.test", kPortArg}));
  ASSERT_TRUE(c.wait_out(fmt::format("pid={} ready\n", c.pid()), seconds(10))) << c.out();
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(queries(), before) << s.log();
  c.send_line();
  EXPECT_EQ(c.wait_exit(seconds(10)), 0) << c.err();
  c.join();
  EXPECT_EQ(rt::parse_dns_result(c.out(), c.err()).pid, c.pid());
  EXPECT_EQ(queries(), before + 1) << s.log();
}

// ---- Record types and transports ----

TEST_F(Dns, AnswerOverUdpNamesTheConnect) {
  DnsServer s("tcdnsa", {"--host-record=web.test,10.77.0.1"});
  s.add_local("10.77.0.1/32");
  auto t = start_json();
  auto h = s.resolve({"web.test", kPortArg});
  ASSERT_EQ(h.addr, "10.77.0.1");
  auto recs = finish(*t, {{h.pid, h.addr}});
  auto mine = to(recs, h.pid, h.addr);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_EQ(mine[0]["comm"], "dns_helper");
  EXPECT_EQ(mine[0]["af"], 4);
  EXPECT_EQ(mine[0]["dport"], kPort);
  EXPECT_EQ(mine[0]["netns"], s.ns.inode());
  expect_fresh_query(mine[0], "web.test");
}

TEST_F(Dns, AaaaAnswerNamesAnIpv6Connect) {
  DnsServer s("tcdnsaaaa", {"--host-record=web6.test,fd77::1"});
  s.add_local("fd77::1/128");
  auto t = start_json();
  auto h = s.resolve({"--type", "AAAA", "web6.test", kPortArg});
  ASSERT_EQ(h.addr, "fd77::1");
  auto recs = finish(*t, {{h.pid, h.addr}});
  auto mine = to(recs, h.pid, "fd77::1");
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_EQ(mine[0]["af"], 6);
  EXPECT_EQ(mine[0]["dport"], kPort);
  expect_fresh_query(mine[0], "web6.test");
}

// alias1 -> alias2 -> target (A): the connect is labelled with the name the program asked for.
TEST_F(Dns, CnameChainIsLabelledWithTheNameAskedFor) {
  DnsServer s("tcdnscname", {"--cname=alias1.test,alias2.test", "--cname=alias2.test,target.test",
                             "--host-record=target.test,10.77.0.3"});
  s.add_local("10.77.0.3/32");
  auto t = start_json();
  auto h = s.resolve({"alias1.test", kPortArg});
  ASSERT_EQ(h.addr, "10.77.0.3");
  auto recs = finish(*t, {{h.pid, h.addr}});
  auto mine = to(recs, h.pid, h.addr);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  expect_fresh_query(mine[0], "alias1.test");
}

// 40 A records: 677 bytes in one UDP datagram, which glibc accepts with EDNS (1200 bytes).
TEST_F(Dns, LargeAnswerOverUdpWithEdns) {
  DnsServer s("tcdnsedns", big_records("big.test", kBigCount));
  s.add_local("10.78.0.0/24");
  auto t = start_json();
  auto h = s.resolve({"--edns", "big.test", kPortArg});
  ASSERT_EQ(h.naddrs, kBigCount) << "the answer was not the large one";
  auto recs = finish(*t, {{h.pid, h.addr}});
  auto mine = to(recs, h.pid, h.addr);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  expect_fresh_query(mine[0], "big.test");
  // It stayed on UDP: no TCP connect to the server.
  EXPECT_TRUE(to(recs, h.pid, DnsServer::kAddr).empty()) << t->out();
}

// Without EDNS the UDP answer is truncated (TC, 30 records) and glibc asks again over TCP: the
// full answer (all 40 records) is only in the TCP stream.
TEST_F(Dns, TruncatedAnswerIsRetriedOverTcp) {
  DnsServer s("tcdnstc", big_records("big.test", kBigCount));
  s.add_local("10.78.0.0/24");
  auto t = start_json();
  auto h = s.resolve({"big.test", kPortArg});
  ASSERT_EQ(h.naddrs, kBigCount) << "glibc did not retry over TCP";
  auto recs = finish(*t, {{h.pid, h.addr}, {h.pid, DnsServer::kAddr}});
  auto mine = to(recs, h.pid, h.addr);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  expect_fresh_query(mine[0], "big.test");
  // The retry is a TCP connection to the server, traced like any other.
  auto dns_conn = to(recs, h.pid, DnsServer::kAddr);
  ASSERT_EQ(dns_conn.size(), 1u) << t->out();
  EXPECT_EQ(dns_conn[0]["dport"], 53);
}

TEST_F(Dns, AnswersOverTcpNameTheConnect) {
  std::vector<std::string> recs = {"--host-record=web.test,10.77.0.1"};
  for (auto& r : big_records("big.test", kBigCount)) recs.push_back(r);
  DnsServer s("tcdnstcp", recs);
  s.add_local("10.77.0.1/32");
  s.add_local("10.78.0.0/24");
  auto t = start_json();
  auto small = s.resolve({"--tcp", "web.test", kPortArg});  // 42 bytes
  auto big = s.resolve({"--tcp", "big.test", kPortArg});    // 666 bytes
  ASSERT_EQ(big.naddrs, kBigCount);
  auto all = finish(*t, {{small.pid, small.addr}, {big.pid, big.addr}});
  auto m1 = to(all, small.pid, small.addr);
  ASSERT_EQ(m1.size(), 1u) << t->out();
  expect_fresh_query(m1[0], "web.test");
  auto m2 = to(all, big.pid, big.addr);
  ASSERT_EQ(m2.size(), 1u) << t->out();
  expect_fresh_query(m2[0], "big.test");
  EXPECT_EQ(to(all, small.pid, DnsServer::kAddr).size(), 1u) << t->out();
}

// ---- Text output ----

TEST_F(Dns, TextModeEndsWithTheQueryColumn) {
  DnsServer s("tcdnstext", {"--host-record=web.test,10.77.0.1"});
  s.add_local("10.77.0.1/32");
  s.add_local("10.77.0.9/32");
  auto t = start({"-d"}, "PID");
  auto h = s.resolve({"web.test", kPortArg});
  // No answer for this one: bcc's "No DNS Query".
  auto c = rt::run_helper_in(s.ns, {"10.77.0.9", kPortArg});
  ASSERT_EQ(c.size(), 1u);
  auto lines = finish_text(*t, {{h.pid, h.addr}, {c[0].pid, "10.77.0.9"}});
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], kHeader);
  auto mine = rt::lines_for_pid(lines, h.pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_EQ(rtrim(mine[0]), row(h.pid, "dns_helper", 4, "10.77.0.1", "web.test"));
  auto other = rt::lines_for_pid(lines, c[0].pid);
  ASSERT_EQ(other.size(), 1u) << t->out();
  EXPECT_EQ(rtrim(other[0]), row(c[0].pid, "conn_helper", 4, "10.77.0.9", "No DNS Query"));
}

// bcc: "localhost" only for 127.0.0.1 and ::1; another loopback address has "No DNS Query".
TEST_F(Dns, TextModeLocalhostIsExactly127001) {
  rt::Refused r;  // fresh namespace: no DNS traffic at all
  auto t = start({"-d"}, "PID");
  auto c1 = rt::run_helper_in(r.ns, {r.kAddr, kPortArg});
  auto c2 = rt::run_helper_in(r.ns, {"127.0.0.2", kPortArg});
  ASSERT_EQ(c1.size(), 1u);
  ASSERT_EQ(c2.size(), 1u);
  auto lines = finish_text(*t, {{c1[0].pid, r.kAddr}, {c2[0].pid, "127.0.0.2"}});
  auto m1 = rt::lines_for_pid(lines, c1[0].pid);
  ASSERT_EQ(m1.size(), 1u) << t->out();
  EXPECT_EQ(rtrim(m1[0]), row(c1[0].pid, "conn_helper", 4, r.kAddr, "localhost"));
  auto m2 = rt::lines_for_pid(lines, c2[0].pid);
  ASSERT_EQ(m2.size(), 1u) << t->out();
  // The source is lo's 127.0.0.1 (the route to 127/8 names it).
  EXPECT_EQ(rtrim(m2[0]),
            rtrim(fmt::format("{:<7} {:<12} {:<2} {:<16} {:<16} {:<6} {}", c2[0].pid, "conn_helper",
                              4, "127.0.0.1", "127.0.0.2", kPort, "No DNS Query")));
}

// An answer older than 100 ms gets its age: "name (N.NNNms)", as bcc's " (%.3fms)".
TEST_F(Dns, TextModeShowsTheAgeOfAnOldAnswer) {
  DnsServer s("tcdnsage", {"--host-record=web.test,10.77.0.1"});
  s.add_local("10.77.0.1/32");
  auto t = start({"-d"}, "PID");
  auto before = steady_clock::now();
  auto h = s.resolve({"--delay-ms", "300", "web.test", kPortArg});
  auto took = duration_cast<microseconds>(steady_clock::now() - before).count();
  auto lines = finish_text(*t, {{h.pid, h.addr}});
  auto mine = rt::lines_for_pid(lines, h.pid);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  std::string prefix = row(h.pid, "dns_helper", 4, "10.77.0.1", "web.test");
  std::string line = rtrim(mine[0]);
  // The rest is " (MS.UUUms)".
  ASSERT_EQ(line.rfind(prefix + " (", 0), 0u) << line;
  ASSERT_GT(line.size(), prefix.size() + 9) << line;
  ASSERT_EQ(line.substr(line.size() - 3), "ms)") << line;
  std::string n = line.substr(prefix.size() + 2, line.size() - prefix.size() - 5);
  const auto dot = n.find('.');
  ASSERT_NE(dot, std::string::npos) << line;
  ASSERT_GT(dot, 0u) << line;
  ASSERT_EQ(n.size() - dot, 4u) << line;  // three decimals
  const std::string whole = n.substr(0, dot), frac = n.substr(dot + 1);
  ASSERT_EQ(whole.find_first_not_of("0123456789"), std::string::npos) << line;
  ASSERT_EQ(frac.find_first_not_of("0123456789"), std::string::npos) << line;
  long long age_us = std::stoll(whole) * 1000 + std::stoll(frac);
  EXPECT_GE(age_us, 300'000) << line;
  EXPECT_LE(age_us, took) << line;
}

TEST_F(Dns, JsonHasTheAgeOfAnOldAnswer) {
  DnsServer s("tcdnsagej", {"--host-record=web.test,10.77.0.1"});
  s.add_local("10.77.0.1/32");
  auto t = start_json();
  auto before = steady_clock::now();
  auto h = s.resolve({"--delay-ms", "300", "web.test", kPortArg});
  auto took = duration_cast<milliseconds>(steady_clock::now() - before).count();
  auto mine = to(finish(*t, {{h.pid, h.addr}}), h.pid, h.addr);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  EXPECT_EQ(mine[0].value("query", json()), "web.test") << mine[0].dump();
  ASSERT_TRUE(mine[0]["query_age_ms"].is_number_integer()) << mine[0].dump();
  EXPECT_GE(mine[0]["query_age_ms"].get<long long>(), 300) << mine[0].dump();
  EXPECT_LE(mine[0]["query_age_ms"].get<long long>(), took) << mine[0].dump();
}

// ---- Namespaces and processes ----

// Same name, a different address in each namespace; each connect gets the name, and an address
// answered in one namespace is unknown in the other.
TEST_F(Dns, SameNameResolvesDifferentlyPerNamespace) {
  DnsServer a("tcdnsnsa", {"--host-record=svc.test,10.77.0.1"});
  DnsServer b("tcdnsnsb", {"--host-record=svc.test,10.77.0.2"});
  a.add_local("10.77.0.1/32");
  a.add_local("10.77.0.2/32");
  b.add_local("10.77.0.2/32");
  auto t = start_json();
  // Both answers are received before either connect.
  PendingDns ha(a, {"svc.test", kPortArg});
  PendingDns hb(b, {"svc.test", kPortArg});
  auto ra = ha.go();
  auto rb = hb.go();
  ASSERT_EQ(ra.addr, "10.77.0.1");
  ASSERT_EQ(rb.addr, "10.77.0.2");
  // In a, 10.77.0.2 was only answered in b.
  auto c = rt::run_helper_in(a.ns, {"10.77.0.2", kPortArg});
  ASSERT_EQ(c.size(), 1u);
  auto recs = finish(*t, {{ra.pid, ra.addr}, {rb.pid, rb.addr}, {c[0].pid, "10.77.0.2"}});
  auto ma = to(recs, ra.pid, "10.77.0.1");
  auto mb = to(recs, rb.pid, "10.77.0.2");
  auto mc = to(recs, c[0].pid, "10.77.0.2");
  ASSERT_EQ(ma.size(), 1u) << t->out();
  ASSERT_EQ(mb.size(), 1u) << t->out();
  ASSERT_EQ(mc.size(), 1u) << t->out();
  expect_fresh_query(ma[0], "svc.test");
  expect_fresh_query(mb[0], "svc.test");
  EXPECT_EQ(ma[0]["netns"], a.ns.inode());
  EXPECT_EQ(mb[0]["netns"], b.ns.inode());
  expect_no_query(mc[0]);
}

// Different names for the same address in two namespaces. Every connect below comes after an
// answer for the address in the *other* namespace, so a cache keyed by address alone would
// mislabel each of them; other processes than the resolver are checked too.
TEST_F(Dns, SameAddressNamedPerNamespace) {
  DnsServer a("tcdnsaliasa", {"--host-record=alpha.test,10.88.0.1"});
  DnsServer b("tcdnsaliasb", {"--host-record=beta.test,10.88.0.1"});
  a.add_local("10.88.0.1/32");
  b.add_local("10.88.0.1/32");
  auto t = start_json();
  PendingDns ha(a, {"alpha.test", kPortArg});
  PendingDns hb(b, {"beta.test", kPortArg});  // latest answer overall: beta.test
  auto ca = rt::run_helper_in(a.ns, {"10.88.0.1", kPortArg});
  auto ra = ha.go();
  auto ra2 = a.resolve({"alpha.test", kPortArg});  // latest answer overall: alpha.test
  auto cb = rt::run_helper_in(b.ns, {"10.88.0.1", kPortArg});
  auto rb = hb.go();
  const std::string ip = "10.88.0.1";
  auto recs =
      finish(*t, {{ca[0].pid, ip}, {ra.pid, ip}, {ra2.pid, ip}, {cb[0].pid, ip}, {rb.pid, ip}});
  struct Want {
    int pid;
    const char* who;
    const char* query;
  };
  for (auto& w : {Want{ca[0].pid, "conn_helper in a", "alpha.test"},
                  Want{ra.pid, "resolver in a", "alpha.test"},
                  Want{ra2.pid, "second resolver in a", "alpha.test"},
                  Want{cb[0].pid, "conn_helper in b", "beta.test"},
                  Want{rb.pid, "resolver in b", "beta.test"}}) {
    SCOPED_TRACE(w.who);
    auto m = to(recs, w.pid, ip);
    ASSERT_EQ(m.size(), 1u) << t->out();
    EXPECT_EQ(m[0].value("query", json()), w.query) << m[0].dump();
  }
}

// Two processes in one namespace get different names for one address: each connect is
// labelled with its own process's answer; any other process gets the latest answer.
TEST_F(Dns, OwnProcessAnswerIsPreferred) {
  DnsServer s("tcdnsproc", {"--host-record=x.test,10.77.0.1", "--host-record=y.test,10.77.0.1"});
  s.add_local("10.77.0.1/32");
  auto t = start_json();
  PendingDns px(s, {"x.test", kPortArg});
  PendingDns py(s, {"y.test", kPortArg});  // the latest answer for 10.77.0.1
  auto rx = px.go();
  auto ry = py.go();
  auto c = rt::run_helper_in(s.ns, {"10.77.0.1", kPortArg});
  auto recs = finish(*t, {{rx.pid, rx.addr}, {ry.pid, ry.addr}, {c[0].pid, "10.77.0.1"}});
  auto mx = to(recs, rx.pid, "10.77.0.1");
  auto my = to(recs, ry.pid, "10.77.0.1");
  auto mc = to(recs, c[0].pid, "10.77.0.1");
  ASSERT_EQ(mx.size(), 1u) << t->out();
  ASSERT_EQ(my.size(), 1u) << t->out();
  ASSERT_EQ(mc.size(), 1u) << t->out();
  EXPECT_EQ(mx[0].value("query", json()), "x.test") << mx[0].dump();
  EXPECT_EQ(my[0].value("query", json()), "y.test") << my[0].dump();
  EXPECT_EQ(mc[0].value("query", json()), "y.test") << mc[0].dump();
}

// ---- No answer ----

TEST_F(Dns, LoopbackWithoutAnswerIsLocalhost) {
  rt::Refused r;  // fresh namespace: no DNS traffic at all
  bool v6 = r.ns.ip({"-6", "addr", "show", "dev", "lo"}).find("::1/128") != std::string::npos;
  auto t = start_json();
  auto c4 = rt::run_helper_in(r.ns, {r.kAddr, kPortArg});
  std::vector<std::pair<int, std::string>> want = {{c4[0].pid, r.kAddr}};
  std::vector<rt::Conn> c6;
  if (v6) {
    c6 = rt::run_helper_in(r.ns, {r.kAddr6, kPortArg});
    want.emplace_back(c6[0].pid, r.kAddr6);
  }
  auto recs = finish(*t, want);
  auto m4 = to(recs, c4[0].pid, r.kAddr);
  ASSERT_EQ(m4.size(), 1u) << t->out();
  EXPECT_EQ(m4[0].value("query", json()), "localhost") << m4[0].dump();
  if (v6) {
    auto m6 = to(recs, c6[0].pid, r.kAddr6);
    ASSERT_EQ(m6.size(), 1u) << t->out();
    EXPECT_EQ(m6[0].value("query", json()), "localhost") << m6[0].dump();
  }
}

TEST_F(Dns, AnswerForLoopbackBeatsLocalhost) {
  DnsServer s("tcdnslo", {"--host-record=db.test,127.0.0.1"});
  auto t = start_json();
  auto h = s.resolve({"db.test", kPortArg});
  ASSERT_EQ(h.addr, "127.0.0.1");
  auto mine = to(finish(*t, {{h.pid, h.addr}}), h.pid, h.addr);
  ASSERT_EQ(mine.size(), 1u) << t->out();
  expect_fresh_query(mine[0], "db.test");
}

TEST_F(Dns, NoAnswerMeansNoQuery) {
  rt::NetNs ns("tcdnsnone");
  ns.ip({"addr", "add", "10.77.0.9/32", "dev", "lo"});
  auto t = start_json();
  auto c = rt::run_helper_in(ns, {"10.77.0.9", kPortArg});
  auto mine = to(finish(*t, {{c[0].pid, "10.77.0.9"}}), c[0].pid, "10.77.0.9");
  ASSERT_EQ(mine.size(), 1u) << t->out();
  expect_no_query(mine[0]);
}

// ---- Cache bounds ----

TEST_F(Dns, MaxAgeForgetsOldAnswers) {
  DnsServer s("tcdnsmaxage",
              {"--host-record=old.test,10.77.0.1", "--host-record=new.test,10.77.0.2"});
  s.add_local("10.77.0.1/32");
  s.add_local("10.77.0.2/32");
  auto t = start_json({"--dns-max-age", "1"});
  auto old_one = s.resolve({"--delay-ms", "1500", "old.test", kPortArg});
  auto new_one = s.resolve({"new.test", kPortArg});
  auto recs = finish(*t, {{old_one.pid, old_one.addr}, {new_one.pid, new_one.addr}});
  auto mo = to(recs, old_one.pid, "10.77.0.1");
  auto mn = to(recs, new_one.pid, "10.77.0.2");
  ASSERT_EQ(mo.size(), 1u) << t->out();
  ASSERT_EQ(mn.size(), 1u) << t->out();
  expect_no_query(mo[0]);
  expect_fresh_query(mn[0], "new.test");
}

// With room for one answer, the second answer evicts the first. (The cache is shared with all
// namespaces: DNS traffic elsewhere on the host during the test could evict the second too.)
TEST_F(Dns, CacheSizeBoundsTheAnswersKept) {
  DnsServer s("tcdnssize",
              {"--host-record=one.test,10.77.0.1", "--host-record=two.test,10.77.0.2"});
  s.add_local("10.77.0.1/32");
  s.add_local("10.77.0.2/32");
  auto t = start_json({"--dns-cache-size", "1"});
  PendingDns p1(s, {"one.test", kPortArg});
  PendingDns p2(s, {"two.test", kPortArg});
  auto r1 = p1.go();
  auto r2 = p2.go();
  auto recs = finish(*t, {{r1.pid, r1.addr}, {r2.pid, r2.addr}});
  auto m1 = to(recs, r1.pid, "10.77.0.1");
  auto m2 = to(recs, r2.pid, "10.77.0.2");
  ASSERT_EQ(m1.size(), 1u) << t->out();
  ASSERT_EQ(m2.size(), 1u) << t->out();
  expect_no_query(m1[0]);
  expect_fresh_query(m2[0], "two.test");
}

// ---- Command line ----

TEST(DnsCli, DnsWithCountIsAUsageError) {
  for (auto args : std::vector<std::vector<std::string>>{{"-d", "-c"}, {"-c", "--dns"}}) {
    args.insert(args.begin(), TCPCONNECT_BIN);
    auto r = rt::run_cmd(args, seconds(10));
    SCOPED_TRACE(args[1] + " " + args[2]);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    auto err_lines = rt::split_lines(r.err);
    ASSERT_EQ(err_lines.size(), 1u) << r.err;
    EXPECT_FALSE(err_lines[0].empty());
  }
}

}  // namespace
