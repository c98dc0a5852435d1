// The --metrics endpoint under attack by a local unprivileged user (uid
// 65534): huge bodies, huge heads, Range abuse, idle and slow connections
// against the real tracer, whose memory (/proc/PID/status), descriptors
// (/proc/PID/fd), scrapes and shutdown must stay within stated bounds. Also
// the strict HTTP/1.x the endpoint speaks.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fixture.h"
#include "harness.h"
#include "http.h"

using namespace std::chrono;
using rt::Tracer;

namespace {

constexpr uid_t kNobody = 65534;
constexpr const char* kReady = "Tracing connect";
constexpr const char* kPrlimit = "/usr/bin/prlimit";

// Stated bounds. The tracer idles at about 20 MiB resident.
constexpr long kRssLimitKib = 64L * 1024;
constexpr int kMaxConns = 16;            // the server's connection limit
constexpr int kFdSlack = kMaxConns + 4;  // over the idle count: connections, listener, accept spare
constexpr milliseconds kScrapeBound{2000};
constexpr milliseconds kExitBound{2000};

int fd_count(pid_t pid) {
  DIR* d = opendir(fmt::format("/proc/{}/fd", pid).c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

int connect_to(int port, bool nonblock = false) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

void set_timeouts(int fd, milliseconds t) {
  timeval tv{static_cast<time_t>(t.count() / 1000),
             static_cast<suseconds_t>(t.count() % 1000 * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Everything the server sends until it closes (or `timeout` per read).
std::string read_to_end(int fd, milliseconds timeout = seconds(5)) {
  set_timeouts(fd, timeout);
  std::string raw;
  char buf[16384];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<std::size_t>(n));
  return raw;
}

// One raw request on a fresh connection; the whole response, "" on failure.
std::string roundtrip(int port, const std::string& request) {
  int fd = connect_to(port);
  if (fd < 0) return "";
  set_timeouts(fd, seconds(5));
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return "";
  }
  std::string r = read_to_end(fd);
  close(fd);
  return r;
}

int status_of(const std::string& raw) {
  if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12) return 0;
  char* end = nullptr;
  const long status = std::strtol(raw.c_str() + 9, &end, 10);
  return end == raw.c_str() + 12 ? static_cast<int>(status) : 0;
}

std::string head_of(const std::string& raw) { return raw.substr(0, raw.find("\r\n\r\n") + 2); }

std::string body_of(const std::string& raw) {
  const auto end = raw.find("\r\n\r\n");
  return end == std::string::npos ? "" : raw.substr(end + 4);
}

// A child process that runs `fn` as user nobody with no groups, after
// raising its own descriptor limit while still root. It reports lines on a
// pipe, and can be told to finish (release()) or is killed when destroyed.
class Nobody {
 public:
  using Fn = std::function<void(int report_fd, int release_fd)>;
  explicit Nobody(const Fn& fn, rlim_t nofile = 0) {
    int rep[2], rel[2];
    if (pipe2(rep, O_CLOEXEC) != 0 || pipe2(rel, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(rep[0]);
      close(rel[1]);
      if (nofile) {
        rlimit rl{nofile, nofile};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(121);
      }
      if (setgroups(0, nullptr) != 0 || setresgid(kNobody, kNobody, kNobody) != 0 ||
          setresuid(kNobody, kNobody, kNobody) != 0 || getuid() != kNobody)
        _exit(120);
      fn(rep[1], rel[0]);
      _exit(0);
    }
    close(rep[1]);
    close(rel[0]);
    report_ = rep[0];
    release_ = rel[1];
  }
  ~Nobody() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (report_ >= 0) close(report_);
    if (release_ >= 0) close(release_);
  }
  Nobody(const Nobody&) = delete;
  Nobody& operator=(const Nobody&) = delete;

  bool started() const { return pid_ > 0; }

  // The next line the child reported, "" after `timeout` or at its exit.
  std::string line(milliseconds timeout = seconds(30)) {
    const auto end = steady_clock::now() + timeout;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      const auto left = duration_cast<milliseconds>(end - steady_clock::now()).count();
      if (left <= 0) return "";
      pollfd p{report_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char b[256];
      ssize_t n = read(report_, b, sizeof b);
      if (n <= 0) return "";
      buf_.append(b, static_cast<std::size_t>(n));
    }
  }

  // Lets the child finish and returns its exit status.
  int release() {
    if (release_ >= 0) close(release_);
    release_ = -1;
    int st = 0;
    if (waitpid(pid_, &st, 0) != pid_) return -1;
    reaped_ = true;
    return rt::decode_status(st);
  }

  // In the child: writes one report line.
  static void report(int fd, const std::string& s) {
    const std::string l = s + "\n";
    (void)!write(fd, l.data(), l.size());
  }
  // In the child: true once the parent released it (or went away).
  static bool released(int fd, int wait_ms = 0) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, wait_ms) > 0;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int report_ = -1;
  int release_ = -1;
  std::string buf_;
};

// Streams `head` and then up to `body_bytes` of filler; stops when the server
// closes. Reports "sent=N status=S" (S 0 when no response could be read).
void stream_request(int report_fd, int port, const std::string& head, std::uint64_t body_bytes,
                    const std::string& filler) {
  int fd = connect_to(port);
  if (fd < 0) {
    Nobody::report(report_fd, "connect failed");
    return;
  }
  set_timeouts(fd, seconds(5));
  std::uint64_t sent = 0;
  bool ok = send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size());
  const auto give_up = steady_clock::now() + seconds(20);
  while (ok && sent < body_bytes && steady_clock::now() < give_up) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(filler.size(), body_bytes - sent));
    ssize_t w = send(fd, filler.data(), n, MSG_NOSIGNAL);
    if (w <= 0) break;
    sent += static_cast<std::uint64_t>(w);
  }
  const std::string resp = read_to_end(fd, seconds(2));
  close(fd);
  Nobody::report(report_fd, fmt::format("sent={} status={}", sent, status_of(resp)));
}

class MetricsAttack : public rt::RuntimeTest {
 protected:
  // `tcpconnect --metrics 127.0.0.1:PORT --quiet` on a free port (retried if
  // another process takes it first); under `prlimit --nofile=N` when `nofile`.
  std::unique_ptr<Tracer> start_metered(int nofile = 0, std::vector<std::string> extra = {}) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = rt::closed_port("127.0.0.1");
      std::vector<std::string> args = {"--metrics", fmt::format("127.0.0.1:{}", port_)};
      args.insert(args.end(), extra.begin(), extra.end());
      if (std::find(args.begin(), args.end(), "-j") == args.end()) args.emplace_back("--quiet");
      std::unique_ptr<Tracer> t;
      if (nofile) {
        // prlimit execs the tracer in place: the PID stays the tracer's.
        args.insert(args.begin(), TCPCONNECT_BIN);
        if (const char* mode = std::getenv("TCPCONNECT_TEST_ATTACH"); mode && *mode)
          args.insert(args.begin() + 1, {"--attach", mode});
        args.insert(args.begin(), fmt::format("--nofile={}:{}", nofile, nofile));
        t = std::make_unique<Tracer>(kPrlimit, args);
      } else {
        t = std::make_unique<Tracer>(args);
      }
      const bool json = std::find(args.begin(), args.end(), "-j") != args.end();
      if (json ? t->wait_ready(rt::kJsonStart) : t->wait_stderr(kReady)) {
        ready_kib_ = rt::status_kib(t->pid(), "VmRSS");
        return t;
      }
      if (t->wait_exit(seconds(1)) == 1 && t->err().find("cannot listen") != std::string::npos)
        continue;
      ADD_FAILURE() << "tracer not ready; stderr: " << t->err() << " stdout: " << t->out();
      return nullptr;
    }
    ADD_FAILURE() << "no free port for --metrics";
    return nullptr;
  }

  std::string scrape() const {
    rt::HttpResponse r = rt::http_get("127.0.0.1", port_, "/metrics");
    EXPECT_EQ(r.status, 200) << r.error << r.headers;
    return r.body;
  }

  // The memory the tracer holds and held, checked against the bound. Under the sanitizers
  // (ASAN_OPTIONS set) the tracer is at about 70 MB when ready already (shadow memory of the
  // libraries it maps): there what it grew since is bounded, by the margin the normal build has
  // (it is ready at 20 to 25 MB).
  void expect_memory_bounded(const Tracer& t, const std::string& what) const {
    const long rss = rt::status_kib(t.pid(), "VmRSS"), hwm = rt::status_kib(t.pid(), "VmHWM");
    std::cerr << "note: " << what << ": tracer VmRSS " << rss << " KiB, VmHWM " << hwm << " KiB ("
              << ready_kib_ << " KiB when ready)\n";
    EXPECT_GT(rss, 0);
    if (std::getenv("ASAN_OPTIONS") != nullptr) {
      EXPECT_LT(hwm - ready_kib_, kRssLimitKib - 24L * 1024) << what;
      return;
    }
    EXPECT_LT(hwm, kRssLimitKib) << what;
    EXPECT_LT(rss, kRssLimitKib) << what;
  }

  int port_ = 0;
  long ready_kib_ = 0;  // the tracer's VmRSS when it was ready
};

TEST_F(MetricsAttack, HugeBodyIsRefusedUnread) {
  auto t = start_metered();
  ASSERT_TRUE(t);
  expect_memory_bounded(*t, "idle");
  const std::string filler(std::size_t{64} * 1024, 'x');
  constexpr std::uint64_t kGiB = 1ull << 30;
  Nobody attacker([&](int rep, int) {
    stream_request(rep, port_,
                   fmt::format("POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                               "{}\r\nContent-Type: text/plain\r\n\r\n",
                               kGiB),
                   kGiB, filler);
  });
  ASSERT_TRUE(attacker.started());
  const std::string line = attacker.line(seconds(40));
  EXPECT_EQ(attacker.release(), 0);
  ASSERT_EQ(line.rfind("sent=", 0), 0u) << line;
  const std::uint64_t sent = std::stoull(line.substr(5));
  std::cerr << "note: POST of 1 GiB: the client got to send " << sent << " bytes (" << line
            << ")\n";
  // The server closes after the head: what the client got out is at most
  // what the socket buffers of both ends hold.
  EXPECT_LT(sent, 64ull << 20) << line;
  expect_memory_bounded(*t, "after a 1 GiB POST");
  EXPECT_FALSE(scrape().empty());
  EXPECT_EQ(t->stop(), 0) << t->err();
}

TEST_F(MetricsAttack, HalfAMillionHeadersAreRefused) {
  auto t = start_metered();
  ASSERT_TRUE(t);
  // 16 MB in all, several times what the socket buffers of both ends hold.
  constexpr std::string_view kLine = "X-Attack-Header: abcdefghijklm\r\n";
  std::string filler;
  for (int i = 0; i < 2048; ++i) filler += kLine;  // 64 KiB a send
  const std::uint64_t total = 500'000ull * kLine.size();
  Nobody attacker([&](int rep, int) {
    stream_request(rep, port_, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n", total, filler);
  });
  ASSERT_TRUE(attacker.started());
  const std::string line = attacker.line(seconds(40));
  EXPECT_EQ(attacker.release(), 0);
  ASSERT_EQ(line.rfind("sent=", 0), 0u) << line;
  std::cerr << "note: GET with 500,000 headers (" << total << " bytes): " << line << "\n";
  EXPECT_LT(std::stoull(line.substr(5)), total) << "the server read every header";
  expect_memory_bounded(*t, "after a GET with 500,000 headers");
  EXPECT_FALSE(scrape().empty());
  EXPECT_EQ(t->stop(), 0) << t->err();
}

TEST_F(MetricsAttack, RangeIsIgnored) {
  auto t = start_metered();
  ASSERT_TRUE(t);
  std::string ranges = "bytes=0-";
  for (int i = 1; i < 2700; ++i) ranges += ",0-";
  const std::string req =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: " + ranges + "\r\n\r\n";
  ASSERT_LE(req.size(), 8192u);
  const std::size_t before = scrape().size();
  Nobody attacker([&](int rep, int) {
    const std::string raw = roundtrip(port_, req);
    Nobody::report(rep, fmt::format("{} {} {}", status_of(raw), raw.size(), body_of(raw).size()));
    // The response head on one report line.
    std::string h = head_of(raw);
    for (char& c : h)
      if (c == '\r' || c == '\n') c = '|';
    Nobody::report(rep, h);
  });
  ASSERT_TRUE(attacker.started());
  const std::string summary = attacker.line(seconds(10));
  const std::string head = attacker.line();
  EXPECT_EQ(attacker.release(), 0);
  const std::size_t after = scrape().size();
  int status = 0;
  std::size_t total = 0, body = 0;
  std::istringstream fields(summary);
  ASSERT_TRUE(fields >> status >> total >> body) << summary;
  std::cerr << "note: " << req.size() << "-byte request with 2,700 ranges: status " << status
            << ", " << total << " bytes; plain scrapes " << before << " and " << after
            << " bytes\n";
  EXPECT_EQ(status, 200) << head;
  EXPECT_EQ(head.find("multipart"), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Range"), std::string::npos) << head;
  // The scrapes themselves add series (the tracer sees them): a few hundred bytes.
  EXPECT_GE(body + 512, std::min(before, after)) << head;
  EXPECT_LE(body, std::max(before, after) + 512) << head;
  expect_memory_bounded(*t, "after the Range request");
  EXPECT_EQ(t->stop(), 0) << t->err();
}

TEST_F(MetricsAttack, IdleConnectionsDoNotExhaustDescriptors) {
  // JSON output with cgroup paths: what failed when descriptors ran out.
  auto t = start_metered(1024, {"-j"});
  ASSERT_TRUE(t);
  std::string comm;
  std::getline(std::ifstream(fmt::format("/proc/{}/comm", t->pid())), comm);
  ASSERT_EQ(comm, "tcpconnect") << "prlimit must exec the tracer in place";
  ASSERT_EQ(rt::status_kib(t->pid(), "VmRSS") > 0, true);
  const int fds_idle = fd_count(t->pid());
  ASSERT_GT(fds_idle, 0);

  constexpr int kIdle = 1100;
  Nobody attacker(
      [&](int rep, int rel) {
        std::vector<int> fds;
        for (int i = 0; i < kIdle; ++i) {
          int fd = connect_to(port_, true);
          if (fd < 0) break;
          fds.push_back(fd);
        }
        // Wait for the handshakes (refused ones fail fast, queued ones finish
        // when the server accepts them).
        const auto end = steady_clock::now() + seconds(10);
        std::size_t done = 0;
        for (int& fd : fds) {
          pollfd p{fd, POLLOUT, 0};
          const auto left = duration_cast<milliseconds>(end - steady_clock::now()).count();
          if (poll(&p, 1, static_cast<int>(std::max<long>(left, 0))) > 0) ++done;
        }
        Nobody::report(rep, fmt::format("opened={} connected={}", fds.size(), done));
        while (!Nobody::released(rel, 100)) {
        }
        for (int fd : fds) close(fd);
      },
      4096);
  ASSERT_TRUE(attacker.started());
  int fds_max = fds_idle;
  std::string line;
  for (auto end = steady_clock::now() + seconds(20); line.empty() && steady_clock::now() < end;) {
    fds_max = std::max(fds_max, fd_count(t->pid()));
    line = attacker.line(milliseconds(20));
  }
  std::cerr << "note: " << kIdle << " idle connections: " << line << "\n";
  ASSERT_EQ(line.rfind("opened=" + std::to_string(kIdle), 0), 0u) << line;

  // While they are held open: a scrape succeeds once the server has shed the
  // idle ones (at most its deadline).
  rt::HttpResponse r;
  const auto t0 = steady_clock::now();
  for (auto end = t0 + seconds(5); steady_clock::now() < end;) {
    fds_max = std::max(fds_max, fd_count(t->pid()));
    r = rt::http_get("127.0.0.1", port_, "/metrics");
    if (r.status == 200) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  std::cerr << "note: scrape with " << kIdle << " idle connections open: "
            << duration_cast<milliseconds>(steady_clock::now() - t0).count() << " ms\n";
  EXPECT_EQ(r.status, 200) << r.error;
  // A traced connection after the attack still gets its cgroup path.
  rt::Listener l("127.0.0.1");
  auto c = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
  ASSERT_EQ(c.size(), 1u);
  fds_max = std::max(fds_max, fd_count(t->pid()));
  EXPECT_EQ(attacker.release(), 0);
  std::cerr << "note: tracer descriptors: " << fds_idle << " idle, at most " << fds_max
            << " under attack (limit 1024)\n";
  EXPECT_LE(fds_max, fds_idle + kFdSlack);
  ASSERT_TRUE(t->wait_stdout(fmt::format("\"pid\":{},", c[0].pid), seconds(5))) << t->out();
  auto recs = rt::for_pid(records(*t, "connect"), c[0].pid);
  ASSERT_EQ(recs.size(), 1u) << t->out();
  EXPECT_NE(recs[0]["cgroup"], "") << recs[0].dump();
  EXPECT_EQ(t->err().find("Too many open files"), std::string::npos) << t->err();
}

TEST_F(MetricsAttack, SlowClientsDelayNeitherScrapesNorExit) {
  auto t = start_metered();
  ASSERT_TRUE(t);
  constexpr int kSlow = 8;
  Nobody attacker([&](int rep, int rel) {
    // Each client sends its request line, then one header line a second;
    // one the server has dropped is replaced at once.
    std::vector<int> fds(kSlow, -1);
    auto open_one = [&](int& fd) {
      fd = connect_to(port_);
      if (fd >= 0) {
        const char* line = "GET /metrics HTTP/1.1\r\n";
        (void)!send(fd, line, std::strlen(line), MSG_NOSIGNAL);
      }
    };
    for (int& fd : fds) open_one(fd);
    Nobody::report(rep, "connected");
    while (!Nobody::released(rel, 1000)) {
      for (int& fd : fds) {
        if (fd < 0 || send(fd, "X-A: b\r\n", 8, MSG_NOSIGNAL) != 8) {
          if (fd >= 0) close(fd);
          open_one(fd);
        }
      }
    }
  });
  ASSERT_TRUE(attacker.started());
  ASSERT_EQ(attacker.line(seconds(10)), "connected");
  // Scrapes spread over several of the server's deadlines.
  milliseconds worst{0};
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(milliseconds(700));
    const auto t0 = steady_clock::now();
    rt::HttpResponse r = rt::http_get("127.0.0.1", port_, "/metrics");
    const auto took = duration_cast<milliseconds>(steady_clock::now() - t0);
    worst = std::max(worst, took);
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_LT(took, kScrapeBound);
  }
  std::cerr << "note: slowest scrape with " << kSlow << " slowloris clients: " << worst.count()
            << " ms\n";
  const auto t0 = steady_clock::now();
  kill(t->pid(), SIGTERM);
  const int st = t->wait_exit(seconds(10));
  const auto took = duration_cast<milliseconds>(steady_clock::now() - t0);
  std::cerr << "note: exit after SIGTERM with " << kSlow << " slowloris clients: " << took.count()
            << " ms\n";
  EXPECT_EQ(st, 0) << t->err();
  EXPECT_LT(took, kExitBound);
  EXPECT_EQ(attacker.release(), 0);
}

TEST_F(MetricsAttack, StrictHttp) {
  auto t = start_metered();
  ASSERT_TRUE(t);
  const std::string host = "Host: 127.0.0.1\r\n";

  for (const char* version : {"HTTP/1.1", "HTTP/1.0"}) {
    const std::string raw =
        roundtrip(port_, fmt::format("GET /metrics {}\r\n{}\r\n", version, host));
    EXPECT_EQ(status_of(raw), 200) << version << ": " << raw.substr(0, 200);
    const std::string h = head_of(raw);
    EXPECT_NE(h.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
              std::string::npos)
        << h;
    EXPECT_NE(h.find("\r\nConnection: close\r\n"), std::string::npos) << h;
    EXPECT_NE(h.find(fmt::format("\r\nContent-Length: {}\r\n", body_of(raw).size())),
              std::string::npos)
        << h;
    EXPECT_NE(body_of(raw).find("tcpconnect_build_info"), std::string::npos);
  }

  // HEAD: the headers of GET, no body.
  std::string raw = roundtrip(port_, "HEAD /metrics HTTP/1.1\r\n" + host + "\r\n");
  EXPECT_EQ(status_of(raw), 200) << raw;
  EXPECT_EQ(body_of(raw), "");
  EXPECT_NE(head_of(raw).find("Content-Length: "), std::string::npos) << raw;
  EXPECT_EQ(head_of(raw).find("Content-Length: 0\r\n"), std::string::npos) << raw;

  raw = roundtrip(port_, "GET / HTTP/1.1\r\n" + host + "\r\n");
  EXPECT_EQ(status_of(raw), 200);
  EXPECT_NE(body_of(raw).find("href=\"/metrics\""), std::string::npos) << raw;

  for (const char* path : {"/nope", "/metrics/extra", "/metricsx", "metrics", "http://x/metrics"}) {
    raw = roundtrip(port_, fmt::format("GET {} HTTP/1.1\r\n{}\r\n", path, host));
    EXPECT_EQ(status_of(raw), 404) << path << ": " << raw;
    EXPECT_EQ(body_of(raw), "404 page not found\n") << path;
  }
  // A query string does not change the path (Prometheus can add params).
  EXPECT_EQ(status_of(roundtrip(port_, "GET /metrics?x=1 HTTP/1.1\r\n" + host + "\r\n")), 200);

  for (const char* method :
       {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "get"}) {
    raw = roundtrip(port_, fmt::format("{} /metrics HTTP/1.1\r\n{}\r\n", method, host));
    EXPECT_EQ(status_of(raw), 405) << method << ": " << raw;
    EXPECT_NE(head_of(raw).find("\r\nAllow: GET, HEAD\r\n"), std::string::npos) << raw;
  }

  // Bodies are refused, announced or chunked.
  EXPECT_EQ(status_of(roundtrip(
                port_, "GET /metrics HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello")),
            413);
  EXPECT_EQ(status_of(roundtrip(
                port_, "POST /metrics HTTP/1.1\r\n" + host + "Content-Length: 1073741824\r\n\r\n")),
            413);
  EXPECT_EQ(status_of(roundtrip(port_, "GET /metrics HTTP/1.1\r\n" + host +
                                           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")),
            400);
  EXPECT_EQ(
      status_of(roundtrip(port_, "GET /metrics HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n")),
      200);

  // Malformed heads.
  for (const char* bad :
       {"hello\r\n\r\n", "GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", "GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n", "GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nX: \x01\r\n\r\n"}) {
    EXPECT_EQ(status_of(roundtrip(port_, bad)), 400) << bad;
  }
  EXPECT_EQ(status_of(roundtrip(port_, "GET /metrics HTTP/2.0\r\n\r\n")), 505);

  // Bounds of the head: 64 header lines, 8 KiB.
  std::string headers;
  for (int i = 0; i < 63; ++i) headers += fmt::format("X-{}: y\r\n", i);
  EXPECT_EQ(status_of(roundtrip(port_, "GET /metrics HTTP/1.1\r\n" + host + headers + "\r\n")),
            200);
  EXPECT_EQ(
      status_of(roundtrip(port_, "GET /metrics HTTP/1.1\r\n" + host + headers + "X-64: y\r\n\r\n")),
      431);
  EXPECT_EQ(status_of(roundtrip(
                port_, "GET /metrics HTTP/1.1\r\nX: " + std::string(8200, 'a') + "\r\n\r\n")),
            431);

  // Keep-alive asked for: answered, then closed at once.
  {
    int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    const std::string two = "GET /metrics HTTP/1.1\r\n" + host +
                            "Connection: keep-alive\r\n\r\nGET / HTTP/1.1\r\n" + host + "\r\n";
    ASSERT_EQ(send(fd, two.data(), two.size(), MSG_NOSIGNAL), static_cast<ssize_t>(two.size()));
    const auto t0 = steady_clock::now();
    raw = read_to_end(fd, seconds(5));
    const auto took = steady_clock::now() - t0;
    close(fd);
    EXPECT_EQ(status_of(raw), 200);
    EXPECT_NE(head_of(raw).find("\r\nConnection: close\r\n"), std::string::npos) << raw;
    EXPECT_LT(took, milliseconds(1000)) << "the connection was kept open";
    EXPECT_EQ(raw.find("HTTP/1.1", 1), std::string::npos) << "a second request was answered";
  }

  // An idle connection is dropped at the deadline, with a 408.
  {
    int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    const auto t0 = steady_clock::now();
    raw = read_to_end(fd, seconds(5));
    const auto took = steady_clock::now() - t0;
    close(fd);
    EXPECT_EQ(status_of(raw), 408) << raw;
    EXPECT_GT(took, milliseconds(1500));
    EXPECT_LT(took, milliseconds(3000));
  }

  // Connections over the limit are refused at once (503), never queued; a
  // freed slot is usable at once.
  {
    std::vector<int> held;
    for (int i = 0; i < kMaxConns; ++i) {
      held.push_back(connect_to(port_));
      ASSERT_GE(held.back(), 0);
    }
    std::this_thread::sleep_for(milliseconds(100));  // all accepted
    const auto t0 = steady_clock::now();
    raw = roundtrip(port_, "GET /metrics HTTP/1.1\r\n" + host + "\r\n");
    EXPECT_EQ(status_of(raw), 503) << raw;
    EXPECT_LT(steady_clock::now() - t0, milliseconds(1000));
    close(held.back());
    held.pop_back();
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(status_of(roundtrip(port_, "GET /metrics HTTP/1.1\r\n" + host + "\r\n")), 200);
    for (int fd : held) close(fd);
  }
  EXPECT_EQ(t->stop(), 0) << t->err();
}

}  // namespace
