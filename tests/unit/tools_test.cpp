// The other tools of the family (tcpaccept, tcplife, tcpconnlat) as the binary runs them under
// their names: command lines, the lines they print (bcc's columns and formats), what they
// filter. Also -T, which every tool has.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "cli/options.h"
#include "plan/plan.h"
#include "sink/text_sink.h"

namespace tcpconnect {
namespace {

ParseResult parse(const char* prog, const std::vector<std::string>& args) {
  std::vector<const char*> argv{prog};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

Plan plan(const char* prog, const std::vector<std::string>& args) {
  const ParseResult r = parse(prog, args);
  EXPECT_EQ(r.kind, ParseResult::Kind::Run) << r.text;
  return make_plan(r.options);
}

AddrBytes addr(int ip, const char* text) {
  AddrBytes a{};
  EXPECT_EQ(inet_pton(ip == 4 ? AF_INET : AF_INET6, text, a.data()), 1) << text;
  return a;
}

// 2023-11-14 22:13:20 UTC, plus `ms` milliseconds.
constexpr std::uint64_t kWall = 1'700'000'000'000'000'000ULL;

ConnectEvent event(EventKind kind, std::uint64_t ms, int ip, const char* local, std::uint16_t lport,
                   const char* remote, std::uint16_t rport) {
  ConnectEvent ev;
  ev.kind = kind;
  ev.inbound = kind == EventKind::Accept;
  ev.mono_ns = 5'000'000'000 + ms * 1'000'000;
  ev.ts_ns = kWall + ms * 1'000'000;
  ev.pid = 4321;
  ev.tid = 4321;
  ev.comm = "nginx-worker-process";
  ev.ip = ip;
  ev.saddr = addr(ip, local);
  ev.sport = lport;
  ev.daddr = addr(ip, remote);
  ev.dport = rport;
  return ev;
}

// A session that lived 250 ms, 1.5 ms of which were its handshake, with data both ways.
ConnectEvent session(std::uint64_t ms, int ip, const char* local, std::uint16_t lport,
                     const char* remote, std::uint16_t rport) {
  ConnectEvent ev = event(EventKind::Close, ms, ip, local, lport, remote, rport);
  ev.outcome = Outcome::Established;
  ev.latency_ns = 1'500'000;
  ev.duration_ns = 251'500'000;
  ev.tx_bytes = 5 * 1024 + 1023;
  ev.rx_bytes = 123'456;
  return ev;
}

ConnectEvent handshake(std::uint64_t ms, Outcome outcome, std::uint64_t latency_ns) {
  ConnectEvent ev = event(EventKind::Outcome, ms, 4, "10.0.0.1", 40000, "10.0.0.9", 443);
  ev.outcome = outcome;
  ev.failed = outcome != Outcome::Established;
  ev.latency_ns = latency_ns;
  return ev;
}

// The tool's output for these records: its header and the lines of those it takes.
std::string run(const char* prog, const std::vector<std::string>& args,
                const std::vector<ConnectEvent>& evs) {
  const Plan p = plan(prog, args);
  std::ostringstream out, err;
  TextSink sink(p.lines, out, err);
  sink.start(StartInfo{"0.1.0", "tp_btf", 1});
  for (const auto& ev : evs)
    if (p.lines.selection.takes(ev)) sink.connect(ev);
  sink.finish(FinishInfo{});
  EXPECT_EQ(err.str(), "");
  return out.str();
}

class Tools : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tz = std::getenv("TZ");
    if (tz) saved_tz_ = tz;
    had_tz_ = tz != nullptr;
    setenv("TZ", "UTC", 1);
    tzset();
  }
  void TearDown() override {
    if (had_tz_) {
      setenv("TZ", saved_tz_.c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  std::string saved_tz_;
  bool had_tz_ = false;
};

TEST(ToolNames, ChosenByTheProgramName) {
  EXPECT_EQ(tool_of("tcpaccept"), Tool::Tcpaccept);
  EXPECT_EQ(tool_of("/usr/sbin/tcplife"), Tool::Tcplife);
  EXPECT_EQ(tool_of("./tcpconnlat"), Tool::Tcpconnlat);
  EXPECT_EQ(tool_of("tcpconnect"), Tool::Tcpconnect);
  EXPECT_EQ(tool_of("tcplife-bpfcc"), Tool::Tcpconnect);
  EXPECT_EQ(tool_of(nullptr), Tool::Tcpconnect);
  EXPECT_STREQ(tool_name(Tool::Tcplife), "tcplife");
}

TEST(ToolNames, EachHasItsOwnHelpAndVersion) {
  for (const char* prog : {"tcpaccept", "tcplife", "tcpconnlat", "tcpconnect"}) {
    const ParseResult help = parse(prog, {"-h"});
    EXPECT_EQ(help.kind, ParseResult::Kind::Help);
    EXPECT_EQ(help.text.rfind(std::string("Usage: ") + prog + " ", 0), 0u) << help.text;
    EXPECT_NE(help.text.find(std::string("    ") + prog), std::string::npos) << "examples";
  }
  const std::string life = parse("tcplife", {"-h"}).text;
  EXPECT_EQ(life.substr(0, life.find('\n')),
            "Usage: tcplife [-h] [-T] [-t] [-w] [-s] [-p PID] [-L PORTS] [-D PORTS] [-4|-6] "
            "[OPTIONS]");
  EXPECT_EQ(parse("tcplife", {"--version"}).text.rfind("tcplife (tcpconnect) ", 0), 0u);
  EXPECT_EQ(parse("tcpconnect", {"--version"}).text.rfind("tcpconnect ", 0), 0u);
}

// Bad input: one line naming the tool, exit 2.
TEST(ToolNames, BadInputIsOneLineNamingTheTool) {
  struct Case {
    const char* prog;
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {"tcplife",
       {"-L", "0"},
       "tcplife: invalid port '0' in -L/--localport: expected an integer in 1..65535"},
      {"tcplife",
       {"-D", "80,"},
       "tcplife: invalid -D/--remoteport value '80,': empty entry; expected comma-separated port "
       "numbers in 1..65535"},
      {"tcplife", {"-P", "80"}, "tcplife: unknown option '-P'"},
      {"tcplife", {"-c"}, "tcplife: unknown option '-c'"},
      {"tcplife", {"-s", "-j"}, "tcplife: options -s/--csv and -j/--json are mutually exclusive"},
      {"tcplife",
       {"80"},
       "tcplife: unexpected argument '80': tcplife takes no positional arguments"},
      {"tcpconnlat",
       {"abc"},
       "tcpconnlat: invalid min_ms 'abc': expected a number of milliseconds >= 0 (e.g. 1, 0.1)"},
      {"tcpconnlat",
       {"-1"},
       "tcpconnlat: invalid min_ms '-1': expected a number of milliseconds >= 0 (e.g. 1, 0.1)"},
      {"tcpconnlat",
       {"1ms"},
       "tcpconnlat: invalid min_ms '1ms': expected a number of milliseconds >= 0 (e.g. 1, 0.1)"},
      {"tcpconnlat",
       {"1", "2"},
       "tcpconnlat: unexpected argument '2': tcpconnlat takes one positional argument, min_ms"},
      {"tcpconnlat", {"-P", "80"}, "tcpconnlat: unknown option '-P'"},
      {"tcpaccept",
       {"-4", "-6"},
       "tcpaccept: options -4/--ipv4 and -6/--ipv6 are mutually exclusive"},
      {"tcpaccept",
       {"-P", "65536"},
       "tcpaccept: invalid port '65536' in -P/--port: expected an integer in 1..65535"},
      {"tcpaccept", {"-L"}, "tcpaccept: unknown option '-L'"},
      {"tcpaccept", {"--lifetime"}, "tcpaccept: unknown option '--lifetime'"},
      {"tcpaccept",
       {"--quiet", "--metrics", "9464", "-T"},
       "tcpaccept: --quiet cannot be combined with -T/--time: --quiet prints no per-event output, "
       "and --metrics counts every connection"},
      {"tcpconnect",
       {"-c", "-T"},
       "tcpconnect: -c/--count cannot be combined with -T/--time: the table is printed once, at "
       "exit"},
  };
  for (const Case& c : cases) {
    const ParseResult r = parse(c.prog, c.args);
    EXPECT_EQ(r.kind, ParseResult::Kind::Error) << c.message;
    EXPECT_EQ(r.exit_code, 2) << c.message;
    EXPECT_EQ(r.text, c.message);
  }
}

TEST(ToolNames, OptionsMapToTheirMeaning) {
  const Options accept = parse("tcpaccept", {"-P", "80,443", "-T", "-t"}).options;
  EXPECT_EQ(accept.tool, Tool::Tcpaccept);
  EXPECT_EQ(accept.ports, (std::vector<std::uint16_t>{80, 443}));
  EXPECT_TRUE(accept.time && accept.timestamp);
  const Options life = parse("tcplife", {"-stTw", "-L", "80,81", "-D", "443"}).options;
  EXPECT_TRUE(life.csv && life.timestamp && life.time && life.wide);
  EXPECT_EQ(life.local_ports, (std::vector<std::uint16_t>{80, 81}));
  EXPECT_EQ(life.remote_ports, (std::vector<std::uint16_t>{443}));
  EXPECT_TRUE(life.ports.empty());
  EXPECT_EQ(parse("tcpconnlat", {"0.1"}).options.min_latency_ns, 100'000u);
  EXPECT_EQ(parse("tcpconnlat", {"-L", "--", "2.5"}).options.min_latency_ns, 2'500'000u);
  EXPECT_TRUE(parse("tcpconnlat", {"-L"}).options.lport);
  EXPECT_FALSE(parse("tcpconnlat", {"0"}).options.min_latency_ns.has_value());
}

TEST_F(Tools, TcpacceptPrintsBccColumns) {
  const auto in = event(EventKind::Accept, 0, 4, "10.0.0.2", 80, "10.0.0.9", 51000);
  auto in6 = event(EventKind::Accept, 1250, 6, "2001:db8::2", 443, "2001:db8::9", 52000);
  const auto out = event(EventKind::Connect, 10, 4, "10.0.0.2", 40000, "10.0.0.9", 22);
  EXPECT_EQ(run("tcpaccept", {}, {in, out, in6}),
            "PID     COMM         IP RADDR            RPORT LADDR            LPORT\n"
            "4321    nginx-worker 4  10.0.0.9         51000 10.0.0.2         80\n"
            "4321    nginx-worker 6  2001:db8::9      52000 2001:db8::2      443\n");
  EXPECT_EQ(
      run("tcpaccept", {"-T", "-t"}, {in, in6}),
      "TIME     TIME(s)  PID     COMM         IP RADDR            RPORT LADDR            LPORT\n"
      "22:13:20 0.000    4321    nginx-worker 4  10.0.0.9         51000 10.0.0.2         80\n"
      "22:13:21 1.250    4321    nginx-worker 6  2001:db8::9      52000 2001:db8::2      443\n");
}

TEST_F(Tools, TcplifePrintsBccColumns) {
  const auto out = session(0, 4, "10.0.0.1", 40000, "93.184.216.34", 80);
  auto in = session(2500, 4, "10.0.0.2", 22, "10.0.0.9", 51000);
  in.inbound = true;
  in.latency_ns = 0;  // accepted: counted from the accept
  in.duration_ns = 12'345'678'900;
  in.tx_bytes = 1023;
  in.rx_bytes = 1024;
  EXPECT_EQ(run("tcplife", {}, {out, in}),
            "PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS\n"
            "4321  nginx-work 10.0.0.1        40000 93.184.216.34   80        5   120 250.00\n"
            "4321  nginx-work 10.0.0.2        22    10.0.0.9        51000     0     1 12345.68\n");
  EXPECT_EQ(run("tcplife", {"-w", "-T", "-t"}, {out, in}),
            "TIME     TIME(s)   PID   COMM             IP LADDR                      LPORT RADDR  "
            "                    RPORT  TX_KB  RX_KB MS\n"
            "22:13:20 0.000000  4321  nginx-worker-pro 4  10.0.0.1                   40000 "
            "93.184.216.34              80         5    120 250.00\n"
            "22:13:22 2.500000  4321  nginx-worker-pro 4  10.0.0.2                   22    "
            "10.0.0.9                   51000      0      1 12345.68\n");
}

TEST_F(Tools, TcplifeMsCountsFromEstablishedAsBcc) {
  auto refused = session(0, 4, "10.0.0.1", 40000, "10.0.0.9", 81);
  refused.outcome = Outcome::Refused;
  refused.failed = true;
  refused.latency_ns = refused.duration_ns = 420'000;
  refused.tx_bytes = refused.rx_bytes = 0;
  EXPECT_EQ(run("tcplife", {}, {refused}),
            "PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS\n"
            "4321  nginx-work 10.0.0.1        40000 10.0.0.9        81        0     0 0.42\n");
}

TEST_F(Tools, TcplifeCsvIsRfc4180) {
  auto out = session(0, 6, "2001:db8:85a3:1234:5678:8a2e:370:7334", 40000, "::1", 80);
  out.comm = "a,b\"c";
  EXPECT_EQ(run("tcplife", {"-s", "-T", "-t"}, {out}),
            "TIME,TIME(s),PID,COMM,IP,LADDR,LPORT,RADDR,RPORT,TX_KB,RX_KB,MS\n"
            "22:13:20,0.000000,4321,\"a,b\"\"c\",6,2001:db8:85a3:1234:5678:8a2e:370:7334,40000,"
            "::1,80,5,120,250.00\n");
}

TEST_F(Tools, TcplifeFiltersLocalAndRemotePorts) {
  const auto a = session(0, 4, "10.0.0.1", 40000, "10.0.0.9", 80);
  const auto b = session(1, 4, "10.0.0.1", 22, "10.0.0.9", 51000);
  const std::string header =
      "PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS\n";
  EXPECT_EQ(
      run("tcplife", {"-L", "22"}, {a, b}),
      header + "4321  nginx-work 10.0.0.1        22    10.0.0.9        51000     5   120 250.00\n");
  EXPECT_EQ(
      run("tcplife", {"-D", "80,443"}, {a, b}),
      header + "4321  nginx-work 10.0.0.1        40000 10.0.0.9        80        5   120 250.00\n");
  EXPECT_EQ(run("tcplife", {"-L", "22", "-D", "80"}, {a, b}), header);
}

TEST_F(Tools, TcpconnlatPrintsAnsweredHandshakes) {
  const auto fast = handshake(0, Outcome::Established, 80'000);
  const auto slow = handshake(100, Outcome::Established, 12'345'678);
  const auto refused = handshake(200, Outcome::Refused, 2'000'000);
  const auto timed_out = handshake(300, Outcome::TimedOut, 3'000'000'000);
  EXPECT_EQ(run("tcpconnlat", {}, {fast, slow, refused, timed_out}),
            "PID    COMM         IP SADDR            DADDR            DPORT LAT(ms)\n"
            "4321   nginx-worker 4  10.0.0.1         10.0.0.9         443   0.08\n"
            "4321   nginx-worker 4  10.0.0.1         10.0.0.9         443   12.35\n"
            "4321   nginx-worker 4  10.0.0.1         10.0.0.9         443   2.00\n");
  EXPECT_EQ(
      run("tcpconnlat", {"-L", "-t", "1"}, {fast, slow, refused, timed_out}),
      "TIME(s)  PID    COMM         IP SADDR            LPORT  DADDR            DPORT LAT(ms)\n"
      "0.000    4321   nginx-worker 4  10.0.0.1         40000  10.0.0.9         443   12.35\n"
      "0.100    4321   nginx-worker 4  10.0.0.1         40000  10.0.0.9         443   2.00\n");
}

TEST_F(Tools, TcpconnectTimeColumn) {
  const auto ev = event(EventKind::Connect, 0, 4, "10.0.0.1", 40000, "10.0.0.9", 443);
  EXPECT_EQ(run("tcpconnect", {"-T", "-t"}, {ev}),
            "TIME     TIME(s)  PID     COMM         IP SADDR            DADDR            DPORT\n"
            "22:13:20 0.000    4321    nginx-worker 4  10.0.0.1         10.0.0.9         443\n");
  setenv("TZ", "Asia/Kolkata", 1);  // +05:30: the local time
  tzset();
  EXPECT_EQ(run("tcpconnect", {"-T"}, {ev}),
            "TIME     PID     COMM         IP SADDR            DADDR            DPORT\n"
            "03:43:20 4321    nginx-worker 4  10.0.0.1         10.0.0.9         443\n");
}

// The header of each tool with each of its flags that changes the columns (golden: bcc's).
TEST_F(Tools, HeaderOfEveryColumnFlag) {
  struct Case {
    const char* prog;
    std::vector<std::string> args;
    const char* header;
  };
  const Case cases[] = {
      {"tcpaccept", {}, "PID     COMM         IP RADDR            RPORT LADDR            LPORT"},
      {"tcpaccept",
       {"-T"},
       "TIME     PID     COMM         IP RADDR            RPORT LADDR            LPORT"},
      {"tcpaccept",
       {"-t"},
       "TIME(s)  PID     COMM         IP RADDR            RPORT LADDR            LPORT"},
      {"tcpaccept",
       {"-P", "80", "-p", "1", "-4"},
       "PID     COMM         IP RADDR            RPORT LADDR            LPORT"},
      {"tcplife",
       {},
       "PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS"},
      {"tcplife",
       {"-T"},
       "TIME     PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS"},
      {"tcplife",
       {"-t"},
       "TIME(s)   PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS"},
      {"tcplife",
       {"-w"},
       "PID   COMM             IP LADDR                      LPORT RADDR                      "
       "RPORT  TX_KB  RX_KB MS"},
      {"tcplife", {"-s"}, "PID,COMM,IP,LADDR,LPORT,RADDR,RPORT,TX_KB,RX_KB,MS"},
      {"tcplife", {"-s", "-t"}, "TIME(s),PID,COMM,IP,LADDR,LPORT,RADDR,RPORT,TX_KB,RX_KB,MS"},
      {"tcplife",
       {"-L", "80", "-D", "81", "-p", "1", "-6"},
       "PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS"},
      {"tcpconnlat", {}, "PID    COMM         IP SADDR            DADDR            DPORT LAT(ms)"},
      {"tcpconnlat",
       {"-L"},
       "PID    COMM         IP SADDR            LPORT  DADDR            DPORT LAT(ms)"},
      {"tcpconnlat",
       {"-t"},
       "TIME(s)  PID    COMM         IP SADDR            DADDR            DPORT LAT(ms)"},
      {"tcpconnlat",
       {"-T"},
       "TIME     PID    COMM         IP SADDR            DADDR            DPORT LAT(ms)"},
      {"tcpconnlat",
       {"-p", "1", "-4", "2"},
       "PID    COMM         IP SADDR            DADDR            DPORT LAT(ms)"},
      {"tcpconnect",
       {"-T"},
       "TIME     PID     COMM         IP SADDR            DADDR            DPORT"},
      {"tcpconnect",
       {"-T", "-t", "-U"},
       "TIME     TIME(s)  UID   PID     COMM         IP SADDR            DADDR            DPORT"},
      {"tcplife",
       {"-U", "--container"},
       "UID   PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS       "
       "NETNS      CONTAINER"},
  };
  for (const Case& c : cases) {
    std::string args;
    for (const auto& a : c.args) args += " " + a;
    EXPECT_EQ(run(c.prog, c.args, {}), std::string(c.header) + "\n") << c.prog << args;
  }
}

// Our own columns come after each tool's.
TEST_F(Tools, OwnColumnsFollowTheToolsColumns) {
  auto in = event(EventKind::Accept, 0, 4, "10.0.0.2", 80, "10.0.0.9", 51000);
  in.ppid = 1;
  in.pcomm = "systemd";
  EXPECT_EQ(run("tcpaccept", {"--parent"}, {in}),
            "PID     COMM         IP RADDR            RPORT LADDR            LPORT PPID    PCOMM\n"
            "4321    nginx-worker 4  10.0.0.9         51000 10.0.0.2         80    1       "
            "systemd\n");
}

}  // namespace
}  // namespace tcpconnect
