// Runtime tests of --metrics: the real tracer serving /metrics while it
// traces real loopback connections, scraped by a plain socket client, checked
// by promtool and scraped by a real Prometheus.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "fixture.h"
#include "http.h"

using namespace std::chrono;
using rt::Tracer;

namespace {

constexpr const char* kReady = "Tracing connect";
constexpr const char* kPrometheus = "/usr/bin/prometheus";
constexpr const char* kPromtool = "/usr/bin/promtool";

// A tool the test needs: skipped where it is not installed, but CI must run
// it, so there a missing tool fails.
#define SKIP_OR_FAIL_UNDER_CI(why)          \
  do {                                      \
    if (std::getenv("CI")) FAIL() << (why); \
    GTEST_SKIP() << (why);                  \
  } while (0)

using rt::http_get;
using rt::HttpResponse;

// A loopback port that was free a moment ago.
int free_port(const std::string& addr = "127.0.0.1") { return rt::closed_port(addr); }

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

std::string connects_series(const std::string& outcome, int dport, const std::string& comm) {
  return fmt::format(R"(tcpconnect_connects_total{{outcome="{}",dport="{}",comm="{}"}})", outcome,
                     dport, comm);
}

// Polls `get` until `done` holds for what it returns, or the timeout passes.
template <class T>
T poll_until(const std::function<T()>& get, const std::function<bool(const T&)>& done,
             milliseconds timeout) {
  T v = get();
  for (auto end = steady_clock::now() + timeout; !done(v) && steady_clock::now() < end;) {
    std::this_thread::sleep_for(milliseconds(100));
    v = get();
  }
  return v;
}

int count_of(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (auto p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1))
    ++n;
  return n;
}

// A temporary directory, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/tcpconnect-metrics-XXXXXX";
    if (mkdtemp(tmpl)) path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

// `promtool check metrics` output and status for an exposition.
std::string promtool_check(const std::string& exposition, int* status) {
  TempDir dir;
  const auto file = dir.path / "metrics.txt";
  std::ofstream(file) << exposition;
  std::string out;
  FILE* f = popen(fmt::format("{} check metrics < {} 2>&1", kPromtool, file.string()).c_str(), "r");
  if (!f) return "popen failed";
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  *status = pclose(f);
  return out;
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

// IDs of every loaded BPF program.
std::set<int> all_prog_ids() {
  std::set<int> ids;
  FILE* f = popen("bpftool -j prog show 2>/dev/null", "r");
  if (!f) return ids;
  std::string text;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  pclose(f);
  auto progs = nlohmann::json::parse(text, nullptr, false);
  if (progs.is_array())
    for (auto& p : progs) ids.insert(p.value("id", -1));
  return ids;
}

class Metrics : public rt::RuntimeTest {
 protected:
  // Starts `tcpconnect --metrics ADDR:PORT --quiet` on a free port and waits
  // until it traces. A port taken between picking and binding is retried.
  // The label budget is raised by default: other traffic on a busy host must
  // not push the test's ports into "other".
  std::unique_ptr<Tracer> start_metered(const std::string& addr = "127.0.0.1",
                                        std::vector<std::string> extra = {"--metrics-top",
                                                                          "10000"}) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port(addr);
      const std::string ep = addr.find(':') != std::string::npos
                                 ? fmt::format("[{}]:{}", addr, port_)
                                 : fmt::format("{}:{}", addr, port_);
      std::vector<std::string> args = {"--metrics", ep, "--quiet"};
      args.insert(args.end(), extra.begin(), extra.end());
      auto t = std::make_unique<Tracer>(args);
      if (t->wait_stderr(kReady)) return t;
      if (t->wait_exit(seconds(1)) == 1 && t->err().find("cannot listen") != std::string::npos)
        continue;
      ADD_FAILURE() << "tracer not ready; stderr: " << t->err() << " stdout: " << t->out();
      return t;
    }
    ADD_FAILURE() << "no free port for --metrics";
    return nullptr;
  }

  std::string scrape(const std::string& addr = "127.0.0.1") const {
    HttpResponse r = http_get(addr, port_, "/metrics");
    EXPECT_EQ(r.status, 200) << r.error << r.headers;
    return r.body;
  }

  // Scrapes until `series` reaches `want` (events arrive asynchronously).
  double wait_series(const std::string& series, double want, seconds timeout = seconds(5)) {
    return poll_until<double>([&] { return value_of(scrape(), series); },
                              [&](const double& v) { return v >= want; }, timeout);
  }

  int port_ = 0;
};

TEST_F(Metrics, MetricsCountConnects) {
  auto t = start_metered();
  ASSERT_TRUE(t);
  const std::string before = scrape();
  const std::string latency_est =
      R"(tcpconnect_handshake_latency_seconds_count{outcome="established"})";
  const std::string latency_ref =
      R"(tcpconnect_handshake_latency_seconds_count{outcome="refused"})";
  const double est_before = value_of(before, latency_est);
  const double ref_before = value_of(before, latency_ref);
  ASSERT_GE(est_before, 0) << before;
  ASSERT_GE(ref_before, 0) << before;

  rt::Listener l("127.0.0.1");
  auto ok = rt::run_helper({"--count", "5", "127.0.0.1", std::to_string(l.port())});
  ASSERT_EQ(ok.size(), 5u);
  for (const auto& c : ok) ASSERT_EQ(c.result, "ok");
  const int closed = rt::closed_port("127.0.0.1");
  auto refused = rt::run_helper({"--count", "3", "127.0.0.1", std::to_string(closed)});
  ASSERT_EQ(refused.size(), 3u);
  for (const auto& c : refused) ASSERT_EQ(c.result, "ECONNREFUSED");

  const std::string est = connects_series("established", l.port(), "conn_helper");
  const std::string ref = connects_series("refused", closed, "conn_helper");
  wait_series(est, 5);
  wait_series(ref, 3);
  // The outbound closes come after the helper has exited.
  wait_series(R"(tcpconnect_connection_duration_seconds_count{dir="out"})", 5);

  HttpResponse r = http_get("127.0.0.1", port_, "/metrics");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_NE(r.headers.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos)
      << r.headers;
  const std::string& body = r.body;
  EXPECT_EQ(value_of(body, est), 5) << body;
  EXPECT_EQ(value_of(body, ref), 3) << body;
  // Every loopback handshake takes some time; other traffic (the scrapes
  // themselves) may add more.
  EXPECT_GE(value_of(body, latency_est) - est_before, 5) << body;
  // Failed handshakes in their own series: only the refused ones went there.
  EXPECT_EQ(value_of(body, latency_ref) - ref_before, 3) << body;
  EXPECT_GE(value_of(body, R"(tcpconnect_connection_duration_seconds_count{dir="out"})"), 5);
  // The listener's thread accepted them.
  EXPECT_EQ(value_of(body, fmt::format(R"(tcpconnect_accepts_total{{lport="{}",comm="{}"}})",
                                       l.port(), "runtime_tests")),
            5)
      << body;
  EXPECT_NE(body.find("\ntcpconnect_build_info{version=\""), std::string::npos) << body;
  EXPECT_GE(value_of(body, "tcpconnect_lost_events_total"), 0) << body;

  if (access(kPromtool, X_OK) == 0) {
    int status = -1;
    std::string out = promtool_check(body, &status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_EQ(out, "") << out;
  } else if (std::getenv("CI")) {
    ADD_FAILURE() << "no /usr/bin/promtool (Debian: prometheus)";
  } else {
    std::cerr << "note: no /usr/bin/promtool, the exposition was not linted\n";
  }

  EXPECT_EQ(t->stop(), 0) << t->err();
  EXPECT_EQ(t->out(), "");  // --quiet
  EXPECT_EQ(count_of(t->err(), kReady), 1) << t->err();
}

TEST_F(Metrics, MetricsTopFoldsPorts) {
  auto t = start_metered("127.0.0.1", {"--metrics-top", "1"});
  ASSERT_TRUE(t);
  // With N = 1, at most 2 * N = 2 destination ports ever get their own series (one may be a
  // scrape's own connect, and an update may fall between two connects): of three fresh ports,
  // at least one is counted under "other".
  rt::Listener a("127.0.0.1"), b("127.0.0.1"), c("127.0.0.1");
  for (const rt::Listener* l : {&a, &b, &c})
    rt::run_helper({"127.0.0.1", std::to_string(l->port())});
  const std::string body = poll_until<std::string>(
      [&] { return scrape(); },
      [&](const std::string& s) { return s.find("dport=\"other\"") != std::string::npos; },
      seconds(5));
  EXPECT_NE(body.find("dport=\"other\""), std::string::npos) << body;
  std::set<std::string> ports;
  const std::regex re(R"re(tcpconnect_connects_total\{outcome="[a-z_]+",dport="([0-9]+)")re");
  for (std::sregex_iterator it(body.begin(), body.end(), re), end; it != end; ++it)
    ports.insert((*it)[1]);
  EXPECT_LE(ports.size(), 2u) << body;
  EXPECT_FALSE(ports.contains(std::to_string(a.port())) &&
               ports.contains(std::to_string(b.port())) && ports.contains(std::to_string(c.port())))
      << body;
  EXPECT_EQ(t->stop(), 0) << t->err();
}

// Label values by traffic: 30 ports connected to once, then 500 connects to one more port (the
// default bound is 20): that port gets its own series although 20 ports were admitted before
// it; between scrapes no series disappears and none decreases ("other" included).
TEST_F(Metrics, BusyPortSeenLateGetsItsOwnSeries) {
  auto t = start_metered("127.0.0.1", {"-u", "0"});
  ASSERT_TRUE(t);
  std::vector<std::unique_ptr<rt::Listener>> once;
  for (int i = 0; i < 30; ++i) {
    once.push_back(std::make_unique<rt::Listener>("127.0.0.1"));
    ASSERT_EQ(rt::run_helper({"127.0.0.1", std::to_string(once.back()->port())}).size(), 1u);
  }
  std::map<std::string, double> seen;
  auto check = [&](const std::string& body) {
    std::map<std::string, double> now;
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("tcpconnect_connects_total{", 0) != 0) continue;
      now[line.substr(0, line.rfind(' '))] = std::stod(line.substr(line.rfind(' ') + 1));
    }
    for (const auto& [series, v] : seen) {
      ASSERT_TRUE(now.contains(series)) << series << " disappeared:\n" << body;
      EXPECT_GE(now[series], v) << series;
    }
    seen = now;
  };
  check(scrape());
  rt::Listener busy("127.0.0.1");
  for (int batch = 0; batch < 5; ++batch) {
    ASSERT_EQ(rt::run_helper({"--count", "100", "127.0.0.1", std::to_string(busy.port())}).size(),
              100u);
    check(scrape());
  }
  const std::string series = connects_series("established", busy.port(), "conn_helper");
  // Its first connects may have gone to "other" before it was among the busiest.
  const double own = wait_series(series, 400);
  EXPECT_GE(own, 400) << scrape();
  check(scrape());
  EXPECT_EQ(t->stop(), 0) << t->err();
}

TEST_F(Metrics, MetricsOnIPv6Loopback) {
  try {
    free_port("::1");
  } catch (const std::exception& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  auto t = start_metered("::1");
  ASSERT_TRUE(t);
  rt::Listener l("::1");
  rt::run_helper({"::1", std::to_string(l.port())});
  const std::string series = connects_series("established", l.port(), "conn_helper");
  const double v = poll_until<double>([&] { return value_of(scrape("::1"), series); },
                                      [](const double& v) { return v >= 1; }, seconds(5));
  EXPECT_EQ(v, 1);
  EXPECT_EQ(http_get("127.0.0.1", port_, "/metrics").status, 0);  // bound to ::1 only
  EXPECT_EQ(t->stop(), 0) << t->err();
}

TEST_F(Metrics, QuietNeedsMetrics) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"--quiet"}, std::vector<std::string>{"--metrics-top", "5"}}) {
    Tracer t(args);
    EXPECT_EQ(t.wait_exit(seconds(10)), 2) << args[0];
    EXPECT_EQ(count_of(t.err(), "\n"), 1) << t.err();
    EXPECT_NE(t.err().find("--metrics"), std::string::npos) << t.err();
    EXPECT_EQ(t.out(), "");
  }
}

TEST_F(Metrics, BadMetricsAddress) {
  for (const char* bad : {"abc", "70000", "0", "1.2.3.4.5:80", "127.0.0.1:", "[::1]", "::1:80",
                          "[::1]:70000", "localhost:9464"}) {
    Tracer t({"--metrics", bad});
    EXPECT_EQ(t.wait_exit(seconds(10)), 2) << bad << ": " << t.err();
    EXPECT_EQ(count_of(t.err(), "\n"), 1) << bad << ": " << t.err();
    EXPECT_EQ(t.out(), "") << bad;
  }

  // A busy port: a runtime error, reported before anything is attached.
  rt::Listener busy("127.0.0.1");
  const std::set<int> progs_before = all_prog_ids();
  Tracer t({"--metrics", fmt::format("127.0.0.1:{}", busy.port()), "--quiet"});
  EXPECT_EQ(t.wait_exit(seconds(10)), 1) << t.err();
  EXPECT_EQ(t.err(), fmt::format("tcpconnect: cannot listen on 127.0.0.1:{}: Address already in "
                                 "use\n",
                                 busy.port()));
  EXPECT_EQ(t.out(), "");
  // Programs are freed asynchronously after the exit; none may stay.
  const auto leaked = poll_until<std::set<int>>(
      [&] {
        std::set<int> now = all_prog_ids(), fresh;
        for (int id : now)
          if (!progs_before.contains(id)) fresh.insert(id);
        return fresh;
      },
      [](const std::set<int>& s) { return s.empty(); }, seconds(3));
  EXPECT_TRUE(leaked.empty()) << leaked.size() << " BPF programs left loaded";
}

TEST_F(Metrics, ClientDisconnectsMidResponse) {
  auto t = start_metered();
  ASSERT_TRUE(t);
  for (int i = 0; i < 50; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port_));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << std::strerror(errno);
    const std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    if (i % 2) {  // an abortive close (RST) for half of them, a FIN for the rest
      linger lg{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);
  }
  HttpResponse r = http_get("127.0.0.1", port_, "/metrics");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_NE(r.body.find("tcpconnect_build_info"), std::string::npos);
  EXPECT_EQ(t->wait_exit(milliseconds(0)), -1) << "tracer exited: " << t->err();
  EXPECT_EQ(t->stop(), 0) << t->err();
}

TEST_F(Metrics, PrometheusScrapes) {
  if (access(kPrometheus, X_OK) != 0)
    SKIP_OR_FAIL_UNDER_CI("no /usr/bin/prometheus (Debian: prometheus)");
  auto t = start_metered();
  ASSERT_TRUE(t);

  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  std::ofstream(dir.path / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      << "scrape_configs:\n  - job_name: tcpconnect\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << port_ << "']\n";

  // Prometheus's own port: picked free, retried if taken before it binds.
  std::unique_ptr<Tracer> prom;
  int web = 0;
  for (int attempt = 0; attempt < 5 && !prom; ++attempt) {
    web = free_port();
    prom = std::make_unique<Tracer>(
        kPrometheus,
        std::vector<std::string>{"--config.file=" + (dir.path / "prometheus.yml").string(),
                                 "--storage.tsdb.path=" + (dir.path / "data").string(),
                                 fmt::format("--web.listen-address=127.0.0.1:{}", web)});
    const int ready = poll_until<int>(
        [&] {
          return prom->wait_exit(milliseconds(0)) == -1
                     ? http_get("127.0.0.1", web, "/-/ready").status
                     : -1;
        },
        [](const int& s) { return s == 200 || s == -1; }, seconds(20));
    if (ready != 200) {
      if (attempt == 4) ADD_FAILURE() << "prometheus did not start: " << prom->err();
      prom->stop(SIGKILL);
      prom.reset();
    }
  }
  ASSERT_TRUE(prom);

  rt::Listener l("127.0.0.1");
  auto ok = rt::run_helper({"--count", "4", "127.0.0.1", std::to_string(l.port())});
  const int closed = rt::closed_port("127.0.0.1");
  auto refused = rt::run_helper({"--count", "2", "127.0.0.1", std::to_string(closed)});
  ASSERT_EQ(ok.size(), 4u);
  ASSERT_EQ(refused.size(), 2u);

  // An instant query's first value, "" when there is none yet.
  auto query = [&](const std::string& q) {
    HttpResponse r = http_get("127.0.0.1", web, "/api/v1/query?query=" + url_encode(q));
    if (r.status != 200) return std::string();
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j["data"]["result"].is_array() || j["data"]["result"].empty())
      return std::string();
    return j["data"]["result"][0]["value"][1].get<std::string>();
  };
  // Scrapes land every second; a query can take a few to see the new values.
  auto wait_query = [&](const std::string& q, const std::string& want) {
    return poll_until<std::string>(
        [&] { return query(q); },
        [&](const std::string& v) { return want.empty() ? !v.empty() : v == want; }, seconds(30));
  };
  EXPECT_EQ(wait_query(R"(up{job="tcpconnect"})", "1"), "1") << prom->err();
  EXPECT_EQ(wait_query(connects_series("established", l.port(), "conn_helper"), "4"), "4");
  EXPECT_EQ(wait_query(connects_series("refused", closed, "conn_helper"), "2"), "2");
  EXPECT_EQ(wait_query(R"(count(tcpconnect_build_info{job="tcpconnect"}))", "1"), "1");
  // The scrapes are traced too: Prometheus's connects to the tracer's port.
  EXPECT_NE(wait_query(connects_series("established", port_, "prometheus"), ""), "");

  EXPECT_EQ(prom->stop(SIGTERM), 0) << prom->err();
  EXPECT_EQ(t->stop(), 0) << t->err();
}

}  // namespace
