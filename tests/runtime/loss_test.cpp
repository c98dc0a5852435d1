// Runtime tests of loss accounting. For every kind of record the kernel sends (connect, outcome,
// close, accept; command lines at exec; DNS answers), a reader that cannot keep up and a ring
// buffer of one page must give exactly: records made = records received + records counted lost.
// The loss must show live (stderr warnings, JSON records), at exit, and in the metrics. A
// stalled stdout must hold the tracer back (bounded memory) and turn into counted kernel loss.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dns_server.h"
#include "fixture.h"
#include "harness.h"

using namespace std::chrono;
using nlohmann::json;
using rt::Tracer;

namespace {

constexpr const char* kMinRing = "1p";  // one page: the smallest ring buffer there is

// ---- Output parsing ---------------------------------------------------------------------------

// "WARNING: N <what> lost (total T)" lines on stderr, written while tracing.
struct Live {
  std::uint64_t sum = 0;  // of N
  int lines = 0;
  bool totals_add_up = true;  // every T is the sum of the N so far
};

Live live_warnings(const std::string& err, const std::string& what) {
  const std::regex re("WARNING: ([0-9]+) " + what + " lost \\(total ([0-9]+)\\)");
  Live w;
  for (const auto& line : rt::split_lines(err)) {
    std::smatch m;
    if (!std::regex_match(line, m, re)) continue;
    w.sum += std::stoull(m[1]);
    w.lines++;
    w.totals_add_up = w.totals_add_up && std::stoull(m[2]) == w.sum;
  }
  return w;
}

// The exit line "WARNING: M events lost in total", if there is one.
std::optional<std::uint64_t> exit_events_lost(const std::string& err) {
  static const std::regex re("WARNING: ([0-9]+) events lost in total");
  for (const auto& line : rt::split_lines(err)) {
    std::smatch m;
    if (std::regex_match(line, m, re)) return std::stoull(m[1]);
  }
  return std::nullopt;
}

// The exit warning about runs the kernel skipped (0 without one).
std::uint64_t exit_skipped(const std::string& err) {
  static const std::regex re("WARNING: the kernel skipped ([0-9]+) tracepoint runs .*");
  for (const auto& line : rt::split_lines(err)) {
    std::smatch m;
    if (std::regex_match(line, m, re)) return std::stoull(m[1]);
  }
  return 0;
}

// made = printed + lost, exactly, unless the kernel skipped tracepoint runs (classic
// tracepoints skip while another BPF program runs on the CPU): then each missing record is
// one of the skipped runs the tool reported, and nothing is printed or counted twice.
void expect_accounted(std::uint64_t made, std::uint64_t printed, std::uint64_t lost,
                      std::uint64_t skipped, const std::string& err) {
  EXPECT_LE(printed + lost, made) << err;
  if (skipped == 0) {
    EXPECT_EQ(printed + lost, made) << err;
  } else {
    EXPECT_GE(printed + lost + skipped, made) << err;
  }
}

// The exit line about command lines and DNS answers, if there is one.
struct EnrichmentSummary {
  std::uint64_t lost_execs = 0, lost_dns = 0, execs = 0, dns_answers = 0;
};

std::optional<EnrichmentSummary> exit_enrichment(const std::string& err) {
  static const std::regex re(
      "WARNING: ([0-9]+) command lines and ([0-9]+) DNS answers lost \\(([0-9]+) and ([0-9]+) "
      "received; CMDLINE may show \\?, QUERY may be empty\\)");
  for (const auto& line : rt::split_lines(err)) {
    std::smatch m;
    if (std::regex_match(line, m, re))
      return EnrichmentSummary{std::stoull(m[1]), std::stoull(m[2]), std::stoull(m[3]),
                               std::stoull(m[4])};
  }
  return std::nullopt;
}

// A JSON run: its records, with the loss notices summed.
struct JsonRun {
  std::vector<json> records;  // every record
  std::uint64_t lost = 0;     // sum of the "lost" records' counts
  bool lost_totals_add_up = true;
  std::map<std::string, std::uint64_t> lost_enrichment;  // kind -> sum of counts
  bool enrichment_totals_add_up = true;
  json end;  // null when there is none
};

JsonRun parse_json(const std::vector<std::string>& lines) {
  JsonRun r;
  for (const auto& line : lines) {
    json j = json::parse(line);  // every line must be one JSON object
    const std::string type = j.value("type", "");
    if (type == "lost") {
      r.lost += j["count"].get<std::uint64_t>();
      r.lost_totals_add_up = r.lost_totals_add_up && j["total"].get<std::uint64_t>() == r.lost;
    } else if (type == "lost_enrichment") {
      auto& sum = r.lost_enrichment[j["kind"].get<std::string>()];
      sum += j["count"].get<std::uint64_t>();
      r.enrichment_totals_add_up =
          r.enrichment_totals_add_up && j["total"].get<std::uint64_t>() == sum;
    } else if (type == "end") {
      r.end = j;
    }
    r.records.push_back(std::move(j));
  }
  return r;
}

std::uint64_t count_records(const JsonRun& r, const std::function<bool(const json&)>& pred) {
  std::uint64_t n = 0;
  for (const auto& j : r.records) n += pred(j);
  return n;
}

std::uint64_t u64(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) {
    ADD_FAILURE() << "no " << key << " in " << j.dump();
    return 0;
  }
  return j[key].get<std::uint64_t>();
}

// The split each test saw, for the log.
void note(const std::string& what, std::uint64_t made, std::uint64_t received, std::uint64_t lost) {
  std::cout << fmt::format("[ loss     ] {}: made {} = received {} + lost {}\n", what, made,
                           received, lost);
}

// ---- Processes and sockets --------------------------------------------------------------------

// Waits until `pid` is stopped (state T in /proc/PID/stat), so a burst really meets a reader
// that does not read.
bool wait_stopped(pid_t pid) {
  for (auto end = steady_clock::now() + seconds(10); steady_clock::now() < end;) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    const auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'T')
      return true;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return false;
}

// A listener on 127.0.0.1 that accepts and at once closes every connection, counting them, so
// that clients' connections end (and are reported closed) without waiting for anything.
class Acceptor {
 public:
  Acceptor() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sin);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&sin), len) != 0 ||
        listen(fd_, 4096) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &len) != 0)
      throw std::runtime_error(std::string("acceptor: ") + std::strerror(errno));
    port_ = ntohs(sin.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        close(c);
        accepted_++;
      }
    });
  }
  ~Acceptor() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  std::string port_arg() const { return std::to_string(port_); }
  long accepted() const { return accepted_; }
  // Waits until `n` connections were accepted.
  bool wait_accepted(long n) const {
    for (auto end = steady_clock::now() + seconds(30); steady_clock::now() < end;) {
      if (accepted_ >= n) return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return accepted_ >= n;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<long> accepted_{0};
  std::thread thread_;
};

// Client sockets to 127.0.0.1:`port` that have not reached CLOSE yet (a TIME_WAIT entry has:
// the socket itself is gone).
int unclosed_clients(int port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  int n = 0;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string slot, local, remote, state;
    s >> slot >> local >> remote >> state;
    const auto colon = remote.find(':');
    if (colon == std::string::npos) continue;
    const int rport = static_cast<int>(std::stoul(remote.substr(colon + 1), nullptr, 16));
    if (rport == port && state != "06" && state != "0A") n++;  // 06 TIME_WAIT, 0A LISTEN
  }
  return n;
}

// Waits until every client connection to `port` has closed, so its close record was sent (or
// counted lost) before the reader resumes.
void wait_clients_closed(int port) {
  auto end = steady_clock::now() + seconds(30);
  while (unclosed_clients(port) > 0 && steady_clock::now() < end)
    std::this_thread::sleep_for(milliseconds(10));
  ASSERT_EQ(unclosed_clients(port), 0) << "client connections to port " << port << " not closed";
}

// A user ID nobody else uses, so `-u` keeps exactly the test's processes (below 2^31: the
// harness reads conn_helper's uid as an int).
uid_t private_uid() { return 2'000'000'000u + static_cast<uid_t>(getpid() % 1'000'000); }

// Runs /bin/true `n` times as `uid` (execs from a forked child that itself never execs).
// Returns true when all `n` ran.
bool exec_as(uid_t uid, int n) {
  const pid_t p = fork();
  if (p < 0) return false;
  if (p == 0) {
    // Only raw system calls: the parent has threads. The raw set*id calls change this
    // (single-threaded) process alone.
    if (syscall(SYS_setgroups, 0, nullptr) != 0 || syscall(SYS_setresgid, uid, uid, uid) != 0 ||
        syscall(SYS_setresuid, uid, uid, uid) != 0)
      _exit(100);
    char arg0[] = "true";
    char* const argv[] = {arg0, nullptr};
    int ok = 0;
    for (int i = 0; i < n; i++) {
      const pid_t c = fork();
      if (c == 0) {
        execv("/bin/true", argv);
        _exit(127);
      }
      int st = 0;
      if (c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0) ok++;
    }
    _exit(ok == n ? 0 : 1);
  }
  int st = 0;
  return waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// One HTTP/1.0 GET of /metrics on 127.0.0.1:port; the body, or "" on failure.
std::string scrape(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<std::uint16_t>(port));
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string raw;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0) {
    const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[8192];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) raw.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  const auto body = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 200", 0) != 0 && raw.rfind("HTTP/1.0 200", 0) != 0) return "";
  return body == std::string::npos ? "" : raw.substr(body + 4);
}

// The value of the sample named exactly `series` (with its labels), or -1.
double sample(const std::string& text, const std::string& series) {
  for (const auto& line : rt::split_lines(text)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

// ---- The stopped-reader burst -----------------------------------------------------------------

class Loss : public rt::RuntimeTest {
 protected:
  struct Run {
    std::vector<std::string> out;
    std::string err;
    std::uint64_t made = 0;
  };

  // Starts the tracer with a one-page ring (plus -j when `json`), stops it, runs `burst` (which
  // returns how many records it caused) and `settle`, resumes it, waits for the live notice
  // `live` (on stdout in JSON, stderr in text), and stops it.
  Run stopped_burst(std::vector<std::string> args, bool json, const std::string& live,
                    const std::function<std::uint64_t()>& burst,
                    const std::function<void()>& settle = {}) {
    args.insert(args.begin(), {"--ringbuf-size", kMinRing});
    if (json) args.emplace_back("-j");
    Run r;
    auto t = std::make_unique<Tracer>(args);
    if (!t->wait_ready(json ? rt::kJsonStart : "PID")) {
      ADD_FAILURE() << "tracer not ready; stderr: " << t->err() << " stdout: " << t->out();
      return r;
    }
    kill(t->pid(), SIGSTOP);
    EXPECT_TRUE(wait_stopped(t->pid()));
    r.made = burst();
    if (settle) settle();
    kill(t->pid(), SIGCONT);
    // Reported while running, not only at exit.
    EXPECT_TRUE(json ? t->wait_stdout(live, seconds(20)) : t->wait_stderr(live)) << t->err();
    EXPECT_EQ(t->stop(), 0) << t->err();
    r.out = t->out_lines();
    r.err = t->err();
    return r;
  }

  // Connection records of text runs: printed lines plus the loss warned about, live and at exit.
  void expect_text_invariant(const std::string& what, const Run& r, std::uint64_t printed) {
    const Live live = live_warnings(r.err, "events");
    const auto total = exit_events_lost(r.err);
    ASSERT_TRUE(total.has_value()) << r.err;
    EXPECT_GE(live.lines, 1) << r.err;
    EXPECT_TRUE(live.totals_add_up) << r.err;
    EXPECT_EQ(live.sum, *total) << r.err;
    EXPECT_GT(*total, 0u) << "a one-page ring cannot hold " << r.made << " records";
    EXPECT_GT(printed, 0u);
    expect_accounted(r.made, printed, *total, exit_skipped(r.err), r.err);
    note(what, r.made, printed, *total);
  }

  // Connection records of JSON runs: records of interest plus the "lost" records, which the end
  // record repeats.
  void expect_json_invariant(const std::string& what, const Run& r,
                             const std::function<bool(const json&)>& mine) {
    const JsonRun j = parse_json(r.out);
    ASSERT_TRUE(j.end.is_object()) << "no end record";
    const std::uint64_t printed = count_records(j, mine);
    EXPECT_TRUE(j.lost_totals_add_up);
    EXPECT_EQ(u64(j.end, "lost"), j.lost);
    EXPECT_EQ(u64(j.end, "events"), printed);  // the filters leave only the test's records
    EXPECT_GT(j.lost, 0u) << "a one-page ring cannot hold " << r.made << " records";
    EXPECT_GT(printed, 0u);
    expect_accounted(r.made, printed, j.lost, u64(j.end, "skipped"), r.err);
    note(what, r.made, printed, j.lost);
  }

  // Runs one connection-record scenario in text and in JSON.
  void connection_records(const std::string& what, const std::vector<std::string>& args,
                          const std::string& type, const std::function<int()>& owner,
                          const std::function<std::uint64_t()>& burst,
                          const std::function<void()>& settle = {}) {
    for (bool js : {false, true}) {
      SCOPED_TRACE(js ? "json" : "text");
      Run r =
          stopped_burst(args, js, js ? "{\"type\":\"lost\"" : "events lost (total", burst, settle);
      if (HasFatalFailure()) return;
      if (js) {
        expect_json_invariant(what + " (json)", r, [&](const json& rec) {
          return rec.value("type", "") == type && rec.value("pid", -1) == owner();
        });
      } else {
        expect_text_invariant(what + " (text)", r, rt::lines_for_pid(r.out, owner()).size());
      }
    }
  }
};

// ---- Connection records -----------------------------------------------------------------------

TEST_F(Loss, ConnectRecords) {
  Acceptor a;
  const int n = 300;
  int helper = -1;
  connection_records(
      "connect", {"-P", a.port_arg()}, "connect", [&] { return helper; },
      [&] {
        auto c = rt::run_helper({"--count", std::to_string(n), "127.0.0.1", a.port_arg()});
        helper = c.at(0).pid;
        return c.size();
      });
}

TEST_F(Loss, OutcomeRecords) {
  Acceptor a;
  const int n = 300;
  int helper = -1;
  connection_records(
      "outcome", {"--outcome", "-P", a.port_arg()}, "outcome", [&] { return helper; },
      [&] {
        auto c = rt::run_helper({"--count", std::to_string(n), "127.0.0.1", a.port_arg()});
        helper = c.at(0).pid;
        for (const auto& conn : c) EXPECT_EQ(conn.result, "ok");
        return c.size();
      });
}

TEST_F(Loss, FailedOutcomeRecords) {
  const std::string port = std::to_string(rt::closed_port("127.0.0.1"));
  const int n = 300;
  int helper = -1;
  connection_records(
      "failed", {"--failed", "-P", port}, "outcome", [&] { return helper; },
      [&] {
        auto c = rt::run_helper({"--count", std::to_string(n), "127.0.0.1", port});
        helper = c.at(0).pid;
        for (const auto& conn : c) EXPECT_EQ(conn.result, "ECONNREFUSED");
        return c.size();
      });
}

TEST_F(Loss, CloseRecords) {
  Acceptor a;
  const int n = 300;
  int helper = -1;
  connection_records(
      "close", {"--lifetime", "-P", a.port_arg()}, "close", [&] { return helper; },
      [&] {
        auto c = rt::run_helper({"--count", std::to_string(n), "127.0.0.1", a.port_arg()});
        helper = c.at(0).pid;
        return c.size();
      },
      [&] { wait_clients_closed(a.port()); });
}

// Accepted connections, made by the test's own acceptor: -p keeps its accepts (and not the
// helper's connects), -P matches their local port.
TEST_F(Loss, AcceptRecords) {
  Acceptor a;
  const int n = 300;
  long before = 0;
  connection_records(
      "accept", {"--accept", "-p", std::to_string(getpid()), "-P", a.port_arg()}, "accept",
      [] { return static_cast<int>(getpid()); },
      [&] {
        before = a.accepted();
        rt::run_helper({"--count", std::to_string(n), "127.0.0.1", a.port_arg()});
        EXPECT_TRUE(a.wait_accepted(before + n));
        return static_cast<std::uint64_t>(a.accepted() - before);
      });
}

// ---- Enrichment records -----------------------------------------------------------------------

// Command lines: every exec of the test's private user sends one; -u keeps only those. Past the
// kernel's per-user budget (a burst of 64) they are counted lost too, like those of a full ring.
TEST_F(Loss, ExecRecords) {
  const uid_t uid = private_uid();
  const int n = 300;
  auto burst = [&]() -> std::uint64_t {
    EXPECT_TRUE(exec_as(uid, n));
    return n;
  };
  for (bool js : {false, true}) {
    SCOPED_TRACE(js ? "json" : "text");
    std::vector<std::string> args = {"-u", std::to_string(uid)};
    if (!js) args.emplace_back("--cmdline");
    Run r = stopped_burst(
        args, js, js ? R"({"type":"lost_enrichment","kind":"exec")" : "command lines lost (total",
        burst);
    if (HasFatalFailure()) return;
    std::uint64_t received = 0, lost = 0;
    if (js) {
      const JsonRun j = parse_json(r.out);
      ASSERT_TRUE(j.end.is_object()) << "no end record";
      received = u64(j.end, "execs");
      lost = u64(j.end, "lost_execs");
      EXPECT_TRUE(j.enrichment_totals_add_up);
      EXPECT_EQ(j.lost_enrichment.contains("exec") ? j.lost_enrichment.at("exec") : 0, lost);
      EXPECT_EQ(j.lost_enrichment.count("dns"), 0u);
      EXPECT_EQ(u64(j.end, "lost"), 0u);  // no connection record is missing
      EXPECT_EQ(j.lost, 0u);
    } else {
      const auto sum = exit_enrichment(r.err);
      ASSERT_TRUE(sum.has_value()) << r.err;
      received = sum->execs;
      lost = sum->lost_execs;
      const Live live = live_warnings(r.err, "command lines");
      EXPECT_TRUE(live.totals_add_up) << r.err;
      EXPECT_EQ(live.sum, lost) << r.err;
      EXPECT_EQ(sum->lost_dns, 0u);
      EXPECT_FALSE(exit_events_lost(r.err).has_value()) << r.err;
    }
    EXPECT_GT(lost, 0u) << "a one-page ring cannot hold " << n << " command lines";
    EXPECT_GT(received, 0u);
    EXPECT_EQ(received + lost, r.made) << r.err;
    note(js ? "exec (json)" : "exec (text)", r.made, received, lost);
  }
}

bool have_dnsmasq() {
  if (access(rt::kDnsmasqBin, X_OK) == 0) return true;
  if (std::getenv("CI")) ADD_FAILURE() << "DNS loss test cannot run in CI: no dnsmasq";
  return false;
}

// DNS answers: one per resolution, all inside a test namespace. The DNS hooks apply --netns
// (answers are only used in their own namespace) but not the task filters, so --netns is what
// keeps the host's other resolutions out.
TEST_F(Loss, DnsRecords) {
  if (!have_dnsmasq()) GTEST_SKIP() << rt::kDnsmasqBin << " is missing";
  rt::DnsServer s("tcloss", {"--host-record=web.test,10.77.0.1"});
  s.add_local("10.77.0.1/32");
  const int n = 120;
  auto burst = [&]() -> std::uint64_t {
    for (int i = 0; i < n; i++) {
      auto res = s.resolve({"web.test", "9"});
      EXPECT_EQ(res.addr, "10.77.0.1");
    }
    return n;
  };
  for (bool js : {false, true}) {
    SCOPED_TRACE(js ? "json" : "text");
    Run r = stopped_burst(
        {"-d", "--netns", std::to_string(s.ns.inode())}, js,
        js ? R"({"type":"lost_enrichment","kind":"dns")" : "DNS answers lost (total", burst);
    if (HasFatalFailure()) return;
    std::uint64_t received = 0, lost = 0;
    if (js) {
      const JsonRun j = parse_json(r.out);
      ASSERT_TRUE(j.end.is_object()) << "no end record";
      received = u64(j.end, "dns_answers");
      lost = u64(j.end, "lost_dns");
      EXPECT_TRUE(j.enrichment_totals_add_up);
      EXPECT_EQ(j.lost_enrichment.contains("dns") ? j.lost_enrichment.at("dns") : 0, lost);
    } else {
      const auto sum = exit_enrichment(r.err);
      ASSERT_TRUE(sum.has_value()) << r.err;
      received = sum->dns_answers;
      lost = sum->lost_dns;
      const Live live = live_warnings(r.err, "DNS answers");
      EXPECT_TRUE(live.totals_add_up) << r.err;
      EXPECT_EQ(live.sum, lost) << r.err;
    }
    EXPECT_GT(lost, 0u) << "a one-page ring cannot hold " << n << " DNS answers";
    EXPECT_GT(received, 0u);
    EXPECT_EQ(received + lost, r.made) << r.err << "\ndnsmasq: " << s.log();
    note(js ? "dns (json)" : "dns (text)", r.made, received, lost);
  }
}

// ---- Metrics ----------------------------------------------------------------------------------

// After a forced loss, /metrics shows exactly the totals the run ends with. The kernel sends a
// connect record for each connection of the private user (the JSON lines), and a command line
// for each of its execs; the metrics count the outcomes and closes in the kernel, so none of
// them is lost with the records.
TEST_F(Loss, MetricsShowTheExactLoss) {
  Acceptor a;
  const uid_t uid = private_uid();
  const int conns = 200, execs = 200;
  const int mport = rt::closed_port("127.0.0.1");
  auto t = start({"--ringbuf-size", kMinRing, "-j", "-u", std::to_string(uid), "--metrics",
                  fmt::format("127.0.0.1:{}", mport)},
                 rt::kJsonStart);
  ASSERT_FALSE(HasFailure()) << t->err();
  kill(t->pid(), SIGSTOP);
  ASSERT_TRUE(wait_stopped(t->pid()));
  auto c = rt::run_helper(
      {"--uid", std::to_string(uid), "--count", std::to_string(conns), "127.0.0.1", a.port_arg()});
  ASSERT_EQ(c.size(), static_cast<std::size_t>(conns));
  ASSERT_TRUE(exec_as(uid, execs));
  wait_clients_closed(a.port());
  kill(t->pid(), SIGCONT);
  EXPECT_TRUE(t->wait_stdout("{\"type\":\"lost\"", seconds(20))) << t->err();

  // Received: connect records printed, outcomes and closes counted in the metrics.
  const std::string outcomes = fmt::format(
      R"(tcpconnect_connects_total{{outcome="established",dport="{}",comm="conn_helper"}})",
      a.port());
  const std::string closes = R"(tcpconnect_connection_duration_seconds_count{dir="out"})";
  auto printed = [&] {
    std::uint64_t n = 0;
    for (const auto& line : t->out_lines())
      n += line.rfind("{\"type\":\"connect\"", 0) == 0 && line.back() == '}';
    return n;
  };
  std::string text;
  double received = 0, lost = 0;
  for (auto end = steady_clock::now() + seconds(20); steady_clock::now() < end;) {
    text = scrape(mport);
    lost = sample(text, "tcpconnect_lost_events_total");
    received = static_cast<double>(printed()) + std::max(0.0, sample(text, outcomes)) +
               std::max(0.0, sample(text, closes));
    if (received + lost == 3 * conns) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  const double lost_execs = sample(text, R"(tcpconnect_lost_enrichment_total{kind="exec"})");
  EXPECT_EQ(sample(text, R"(tcpconnect_lost_enrichment_total{kind="dns"})"), 0) << text;
  EXPECT_EQ(t->stop(), 0) << t->err();

  const JsonRun j = parse_json(t->out_lines());
  ASSERT_TRUE(j.end.is_object()) << "no end record";
  EXPECT_GT(lost, 0) << text;
  EXPECT_EQ(received + lost, 3 * conns) << text;
  EXPECT_EQ(sample(text, outcomes), conns) << text;
  EXPECT_EQ(sample(text, closes), conns) << text;
  EXPECT_EQ(lost, static_cast<double>(u64(j.end, "lost"))) << text;
  EXPECT_EQ(lost, static_cast<double>(j.lost));
  EXPECT_GT(lost_execs, 0) << text;
  EXPECT_EQ(lost_execs, static_cast<double>(u64(j.end, "lost_execs"))) << text;
  EXPECT_EQ(u64(j.end, "execs") + u64(j.end, "lost_execs"), static_cast<std::uint64_t>(execs));
  note("metrics: connection records", std::uint64_t{3} * conns,
       static_cast<std::uint64_t>(received), static_cast<std::uint64_t>(lost));
  note("metrics: exec records", execs, u64(j.end, "execs"), static_cast<std::uint64_t>(lost_execs));
}

// ---- A slow consumer --------------------------------------------------------------------------

// tcpconnect with stdout on a pipe the test reads only when it chooses; stderr is collected.
class StalledTracer {
 public:
  StalledTracer(const std::vector<std::string>& args, bool nonblocking_stdout) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    // A non-blocking pipe must still hold the tracer back, not make it fail or spin.
    if (nonblocking_stdout) fcntl(out[1], F_SETFL, fcntl(out[1], F_GETFL) | O_NONBLOCK);
    std::vector<char*> argv = {const_cast<char*>(TCPCONNECT_BIN)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(err[1], 2);
      execv(TCPCONNECT_BIN, argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_fd_ = out[0];
    err_reader_ = std::thread(rt::read_all, err[0], std::ref(mu_), std::ref(err_));
  }
  ~StalledTracer() {
    if (status_ < 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_reader_.joinable()) out_reader_.join();
    if (err_reader_.joinable()) err_reader_.join();
    if (!draining_) close(out_fd_);
  }

  pid_t pid() const { return pid_; }
  // Reads stdout up to the first newline (the start record), waiting up to 20 s.
  std::string first_line() {
    std::string line;
    char c;
    while (line.find('\n') == std::string::npos) {
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20'000) <= 0 || read(out_fd_, &c, 1) != 1) break;
      line += c;
    }
    return line;
  }
  // From now on stdout is read as fast as it comes.
  void drain() {
    draining_ = true;
    out_reader_ = std::thread(rt::read_all, out_fd_, std::ref(mu_), std::ref(out_));
  }
  // `sig`, then the exit status once stdout and stderr are closed (the tracer is killed if it
  // has not exited 20 s after the signal).
  int stop(int sig = SIGINT) {
    kill(pid_, sig);
    int st = 0;
    pid_t done = 0;
    for (int i = 0; i < 2000 && (done = waitpid(pid_, &st, WNOHANG)) == 0; i++)
      std::this_thread::sleep_for(milliseconds(10));
    if (done == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &st, 0);
    }
    status_ = rt::decode_status(st);
    if (out_reader_.joinable()) out_reader_.join();
    if (err_reader_.joinable()) err_reader_.join();
    return status_;
  }
  std::string out() const {
    std::lock_guard<std::mutex> g(mu_);
    return out_;
  }
  std::string err() const {
    std::lock_guard<std::mutex> g(mu_);
    return err_;
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int status_ = -1;
  bool draining_ = false;
  mutable std::mutex mu_;
  std::string out_, err_;
  std::thread out_reader_, err_reader_;
};

// Nobody reads stdout during a burst far larger than the pipe (64 KiB) and the ring (64 KiB):
// the tracer must block on its output, keep its memory flat, and leave the excess to the
// kernel's loss count. Once the reader drains, every connect is printed or counted lost.
void slow_consumer(bool nonblocking_stdout, int first, int second) {
  Acceptor a;
  StalledTracer t({"-j", "--ringbuf-size", "64K", "-P", a.port_arg()}, nonblocking_stdout);
  ASSERT_EQ(t.first_line().rfind(rt::kJsonStart, 0), 0u) << t.err();

  std::vector<int> helpers;
  auto burst = [&](int n) {
    auto c = rt::run_helper({"--count", std::to_string(n), "127.0.0.1", a.port_arg()});
    ASSERT_EQ(c.size(), static_cast<std::size_t>(n));
    helpers.push_back(c[0].pid);
  };
  burst(first);
  if (::testing::Test::HasFatalFailure()) return;
  const long rss_first = rt::status_kib(t.pid(), "VmRSS");
  burst(second);
  if (::testing::Test::HasFatalFailure()) return;
  const long rss_second = rt::status_kib(t.pid(), "VmRSS");
  // Still there, held back by its output, not failed.
  ASSERT_EQ(waitpid(t.pid(), nullptr, WNOHANG), 0) << t.err();

  t.drain();
  EXPECT_EQ(t.stop(), 0) << t.err();
  const JsonRun j = parse_json(rt::split_lines(t.out()));
  ASSERT_TRUE(j.end.is_object()) << "no end record; stderr: " << t.err();
  const std::uint64_t printed = count_records(j, [&](const json& r) {
    const int pid = r.value("pid", -1);
    return r.value("type", "") == "connect" && (pid == helpers.at(0) || pid == helpers.at(1));
  });
  const auto made = static_cast<std::uint64_t>(first) + second;
  EXPECT_EQ(u64(j.end, "lost"), j.lost);
  EXPECT_GT(j.lost, 0u) << "the burst fitted in the pipe and the ring";
  EXPECT_EQ(printed + j.lost, made) << t.err();
  // Bounded: what was not written waited in the kernel's ring or was counted lost there, so
  // ten times the connects must not mean more memory (2 MiB of slack for the allocator).
  ASSERT_GT(rss_first, 0);
  ASSERT_GT(rss_second, 0);
  EXPECT_LE(rss_second, rss_first + 2048)
      << "VmRSS grew from " << rss_first << " KiB after " << first << " connects to " << rss_second
      << " KiB after " << made;
  note(nonblocking_stdout ? "slow consumer, non-blocking stdout" : "slow consumer", made, printed,
       j.lost);
  std::cout << fmt::format("[ loss     ] VmRSS {} KiB after {} connects, {} KiB after {}\n",
                           rss_first, first, rss_second, made);
}

TEST_F(Loss, SlowConsumerIsHeldBackAndTheKernelCounts) { slow_consumer(false, 2'000, 18'000); }

TEST_F(Loss, SlowConsumerWithNonBlockingStdout) { slow_consumer(true, 2'000, 18'000); }

// A stop request must not wait for a reader that has stopped reading: the tracer exits
// within its one-second grace period and says that buffered records were not written.
TEST_F(Loss, StopSignalWhileStdoutIsStalled) {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    Acceptor a;
    StalledTracer t({"-j", "-P", a.port_arg()}, false);
    ASSERT_EQ(t.first_line().rfind(rt::kJsonStart, 0), 0u) << t.err();
    // 3,000 JSON records are far more than the 64 KiB pipe holds.
    ASSERT_EQ(rt::run_helper({"--count", "3000", "127.0.0.1", a.port_arg()}).size(), 3000u);
    ASSERT_EQ(waitpid(t.pid(), nullptr, WNOHANG), 0) << "exited early: " << t.err();
    EXPECT_EQ(t.stop(sig), 0) << strsignal(sig) << ": " << t.err();
    EXPECT_EQ(t.err(),
              "Tracing connect ... Hit Ctrl-C to end\n"
              "tcpconnect: stopped while the output was blocked; buffered records were not "
              "written\n")
        << strsignal(sig);
  }
}

// With --metrics the counters must not stop with a reader that stopped reading: the loop keeps
// consuming the ring (no kernel loss), records beyond a 1 MiB backlog are counted as not
// written on stderr, the scrape shows every connection and when the kernel side was last read.
TEST_F(Loss, MetricsKeepCountingWhileStdoutIsStalled) {
  Acceptor a;
  const int mport = rt::closed_port("127.0.0.1");
  StalledTracer t({"-j", "-P", a.port_arg(), "--metrics", fmt::format("127.0.0.1:{}", mport)},
                  false);
  ASSERT_EQ(t.first_line().rfind(rt::kJsonStart, 0), 0u) << t.err();
  const int conns = 12'000;  // about 4 MiB of JSON: the pipe and the backlog overflow
  ASSERT_EQ(rt::run_helper({"--count", std::to_string(conns), "127.0.0.1", a.port_arg()}).size(),
            static_cast<std::size_t>(conns));
  const std::string outcomes = fmt::format(
      R"(tcpconnect_connects_total{{outcome="established",dport="{}",comm="conn_helper"}})",
      a.port());
  std::string text;
  for (auto end = steady_clock::now() + seconds(20); steady_clock::now() < end;) {
    text = scrape(mport);
    if (sample(text, outcomes) == conns) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(sample(text, outcomes), conns) << text;
  EXPECT_EQ(sample(text, "tcpconnect_lost_events_total"), 0) << text;
  const double last_read = sample(text, "tcpconnect_last_read_timestamp_seconds");
  const double now =
      static_cast<double>(
          duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count()) /
      1000;
  EXPECT_GT(last_read, now - 2) << text;
  EXPECT_LE(last_read, now + 1) << text;
  const long rss = rt::status_kib(t.pid(), "VmRSS");
  // Reported live, at most once a second.
  bool reported = false;
  for (auto end = steady_clock::now() + seconds(10); !reported && steady_clock::now() < end;) {
    reported = t.err().find("records not written: the output is blocked") != std::string::npos;
    if (!reported) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(reported) << t.err();
  EXPECT_EQ(t.stop(SIGTERM), 0) << t.err();
  EXPECT_NE(t.err().find("tcpconnect: stopped while the output was blocked"), std::string::npos)
      << t.err();
  // The backlog is bounded, so memory is: a stalled reader costs at most a few MiB. Not under
  // ASan (scripts/sanitize): its quarantine keeps freed blocks resident.
#ifndef __SANITIZE_ADDRESS__
  EXPECT_LT(rss, 64 * 1024) << "VmRSS " << rss << " KiB with a stalled stdout";
#endif
  std::cout << fmt::format(
      "[ loss     ] stalled stdout with --metrics: {} of {} connects "
      "counted, VmRSS {} KiB\n",
      sample(text, outcomes), conns, rss);
}

}  // namespace
