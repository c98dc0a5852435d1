// --top and --hist against the real kernel: the live screen drawn in a real terminal (tmux), its
// fallback without one, and histograms whose buckets hold handshakes of known latency.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "fixture.h"
#include "netns.h"

namespace {

using rt::Tracer;

class Views : public rt::RuntimeTest {};

// A listener on 127.0.0.1 with an accept queue of one (listen backlog 0) that accepts each
// connection `delay` after it is queued: while one waits there, the SYN of the next is dropped
// and retransmitted 1 s later, so every connect but the first takes about a second.
class SlowListener {
 public:
  explicit SlowListener(std::chrono::milliseconds delay) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd_, 0) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("slow listener");
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, delay] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        std::this_thread::sleep_for(delay);
        const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) close(c);
      }
    });
  }
  ~SlowListener() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// One histogram of --hist's text output: its title and its buckets (low, count).
struct Hist {
  std::string title;
  std::uint64_t total = 0;  // from the title: "(N connects)"
  std::vector<std::pair<std::uint64_t, std::uint64_t>> buckets;
};

std::vector<Hist> parse_hists(const std::string& out) {
  std::vector<Hist> hists;
  std::istringstream in(out);
  std::string line;
  const std::regex title(R"(^(Handshake latency|Lifetime), (.*) \((\d+) \w+\)$)");
  const std::regex bucket(R"(^\s*(\d+) -> (\d+)\s*: (\d+)\s+\|[* ]*\|$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, title)) {
      hists.push_back({m[1].str() + ", " + m[2].str(), std::stoull(m[3].str()), {}});
    } else if (std::regex_match(line, m, bucket) && !hists.empty()) {
      hists.back().buckets.emplace_back(std::stoull(m[1].str()), std::stoull(m[3].str()));
    }
  }
  return hists;
}

const Hist* find_hist(const std::vector<Hist>& hists, const std::string& title) {
  for (const Hist& h : hists)
    if (h.title == title) return &h;
  return nullptr;
}

// Handshakes answered at once (an accepting listener) and handshakes answered after a SYN
// retransmission (a listener whose queue is full): 50 connects, each counted in the bucket of
// its range, per destination port.
TEST_F(Views, HistogramsPutEachHandshakeInItsBucket) {
  rt::Listener fast("127.0.0.1", 0, false);
  SlowListener slow(std::chrono::milliseconds(100));
  const std::string fast_port = std::to_string(fast.port());
  const std::string slow_port = std::to_string(slow.port());
  auto t = std::make_unique<Tracer>(
      std::vector<std::string>{"--hist", "-P", fast_port + "," + slow_port});
  ASSERT_TRUE(t->wait_stderr("Tracing connect")) << t->err();
  const auto quick = rt::run_helper({"--count", "44", "127.0.0.1", fast_port});
  // The first is queued at once; each of the 5 after it waits for the one before.
  const auto start = std::chrono::steady_clock::now();
  const auto delayed = rt::run_helper({"--count", "6", "127.0.0.1", slow_port});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(quick.size(), 44u);
  ASSERT_EQ(delayed.size(), 6u);
  for (const auto& c : quick) ASSERT_EQ(c.result, "ok");
  for (const auto& c : delayed) ASSERT_EQ(c.result, "ok");
  ASSERT_GE(took, std::chrono::milliseconds(4500)) << "the SYNs to the full queue were not dropped";
  ASSERT_EQ(t->stop(), 0) << t->err();

  const auto hists = parse_hists(t->out());
  const Hist* f = find_hist(hists, "Handshake latency, dport = " + fast_port);
  const Hist* s = find_hist(hists, "Handshake latency, dport = " + slow_port);
  ASSERT_TRUE(f && s) << t->out();
  auto in_range = [](const Hist& h, std::uint64_t from, std::uint64_t to) {
    std::uint64_t n = 0;
    for (auto [low, count] : h.buckets)
      if (low >= from && low < to) n += count;
    return n;
  };
  auto sum = [](const Hist& h) {
    std::uint64_t n = 0;
    for (auto [low, count] : h.buckets) n += count;
    return n;
  };
  EXPECT_EQ(f->total, 44u) << t->out();
  EXPECT_EQ(sum(*f), 44u) << t->out();
  EXPECT_EQ(in_range(*f, 0, 65536), 44u) << t->out();  // under 65 ms: answered at once
  EXPECT_EQ(s->total, 6u) << t->out();
  EXPECT_EQ(sum(*s), 6u) << t->out();
  EXPECT_EQ(in_range(*s, 0, 65536), 1u) << t->out();
  // 524288 -> 1048575 and 1048576 -> 2097151 us: the retransmitted SYN, about 1 s later.
  EXPECT_EQ(in_range(*s, 524288, 2097152), 5u) << t->out();
  EXPECT_EQ(f->total + s->total, 50u);
  // The lifetimes of those that closed (the fast ones, closed by both ends at once).
  const Hist* life = find_hist(hists, "Lifetime, dport = " + fast_port);
  ASSERT_TRUE(life) << t->out();
  EXPECT_GT(life->total, 0u) << t->out();
  EXPECT_LE(life->total, 44u) << t->out();
}

// --hist-by process: one histogram per process, the helper's under its PID.
TEST_F(Views, HistogramsPerProcess) {
  rt::Listener l("127.0.0.1", 0, false);
  const std::string port = std::to_string(l.port());
  auto t = std::make_unique<Tracer>(
      std::vector<std::string>{"--hist", "--hist-by", "process", "-P", port});
  ASSERT_TRUE(t->wait_stderr("Tracing connect")) << t->err();
  const auto c = rt::run_helper({"--count", "7", "127.0.0.1", port});
  ASSERT_EQ(c.size(), 7u);
  ASSERT_EQ(t->stop(), 0) << t->err();
  const auto hists = parse_hists(t->out());
  const Hist* h = find_hist(
      hists, "Handshake latency, pid = " + std::to_string(c[0].pid) + ", comm = conn_helper");
  ASSERT_TRUE(h) << t->out();
  EXPECT_EQ(h->total, 7u) << t->out();
}

// --hist --interval: the histograms of each interval, after its time line; the last (a part of
// an interval) at exit.
TEST_F(Views, HistogramsEveryInterval) {
  rt::Listener l("127.0.0.1", 0, false);
  const std::string port = std::to_string(l.port());
  auto t =
      std::make_unique<Tracer>(std::vector<std::string>{"--hist", "--interval", "1", "-P", port});
  ASSERT_TRUE(t->wait_stderr("Tracing connect")) << t->err();
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(rt::run_helper({"--count", "5", "127.0.0.1", port}).size(), 5u);
  std::this_thread::sleep_until(start + std::chrono::milliseconds(1500));
  ASSERT_EQ(rt::run_helper({"--count", "3", "127.0.0.1", port}).size(), 3u);
  std::this_thread::sleep_until(start + std::chrono::milliseconds(2300));
  ASSERT_EQ(t->stop(), 0) << t->err();
  // Per time line, the total of the latency histogram that follows it.
  std::vector<std::uint64_t> totals;
  std::istringstream in(t->out());
  std::string line;
  const std::regex time(R"(^\d\d:\d\d:\d\d$)");
  const std::regex title(R"(^Handshake latency, dport = \d+ \((\d+) connects?\)$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, time)) totals.push_back(0);
    if (std::regex_match(line, m, title) && !totals.empty()) totals.back() = std::stoull(m[1]);
  }
  ASSERT_GE(totals.size(), 3u) << t->out();
  EXPECT_EQ(totals[0], 5u) << t->out();
  EXPECT_EQ(totals[1], 3u) << t->out();
  std::uint64_t sum = 0;
  for (auto n : totals) sum += n;
  EXPECT_EQ(sum, 8u) << t->out();
}

// Without a terminal, --top prints the interval tables of -c --by-process --interval 1.
TEST_F(Views, TopWithoutATerminalPrintsIntervalTables) {
  rt::Listener l("127.0.0.1");
  const std::string port = std::to_string(l.port());
  auto t = std::make_unique<Tracer>(std::vector<std::string>{"--top", "-P", port});
  ASSERT_TRUE(t->wait_stderr("Tracing connect")) << t->err();
  const auto c = rt::run_helper({"--count", "3", "127.0.0.1", port});
  ASSERT_EQ(c.size(), 3u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_EQ(t->stop(), 0) << t->err();
  const std::string out = t->out();
  EXPECT_NE(out.find("PID     COMM             LADDR"), std::string::npos) << out;
  const std::regex row("\\n\\s*" + std::to_string(c[0].pid) +
                       R"( +conn_helper +127\.0\.0\.1 +127\.0\.0\.1 +)" + port + R"( +3 +0 )");
  EXPECT_TRUE(std::regex_search(out, row)) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "no terminal control without a terminal";
}

// tmux: a real terminal. The screen is read with capture-pane; q quits.
class Tmux {
 public:
  explicit Tmux(const std::string& command) : name_("tc-top-" + std::to_string(getpid())) {
    const auto r = rt::run_cmd(
        {"/usr/bin/tmux", "new-session", "-d", "-s", name_, "-x", "150", "-y", "30", command},
        std::chrono::seconds(10));
    if (r.status != 0) throw std::runtime_error("tmux new-session: " + r.err);
  }
  ~Tmux() { rt::run_cmd({"/usr/bin/tmux", "kill-session", "-t", name_}, std::chrono::seconds(10)); }
  std::string screen() const {
    return rt::run_cmd({"/usr/bin/tmux", "capture-pane", "-p", "-t", name_},
                       std::chrono::seconds(10))
        .out;
  }
  std::string format(const std::string& f) const {
    return rt::run_cmd({"/usr/bin/tmux", "display-message", "-p", "-t", name_, f},
                       std::chrono::seconds(10))
        .out;
  }
  void resize(int columns) const {
    rt::run_cmd({"/usr/bin/tmux", "resize-window", "-t", name_, "-x", std::to_string(columns)},
                std::chrono::seconds(10));
  }
  void keys(const std::string& k) const {
    rt::run_cmd({"/usr/bin/tmux", "send-keys", "-t", name_, k}, std::chrono::seconds(10));
  }

 private:
  std::string name_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_F(Views, TopDrawsTheBusiestConnectorsAndQuitsCleanly) {
  if (access("/usr/bin/tmux", X_OK) != 0) {
    if (std::getenv("CI")) FAIL() << "tmux is not installed";
    GTEST_SKIP() << "tmux is not installed";
  }
  rt::Listener l("127.0.0.1", 0, false);
  const std::string port = std::to_string(l.port());
  const std::string rc_file = "/tmp/tc-top-rc-" + std::to_string(getpid());
  unlink(rc_file.c_str());
  // The pane stays after the tracer exits, so that the restored screen can be read.
  Tmux tmux(std::string(TCPCONNECT_BIN) + " --top -P " + port + "; echo $? > " + rc_file +
            "; sleep 60");

  // A known process connecting every 50 ms: conn_helper, one at a time.
  std::atomic<bool> stop{false};
  std::thread client([&] {
    while (!stop) {
      rt::run_helper({"127.0.0.1", port});
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Join() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join{stop, client};

  // The row: conn_helper to 127.0.0.1:PORT at a non-zero rate.
  const std::regex row(R"(\n\s*\d+ conn_helper\s+127\.0\.0\.1:)" + port + R"( +([0-9.]+) )");
  std::smatch m;
  std::string screen;
  bool seen = false;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
       std::chrono::steady_clock::now() < until && !seen;
       std::this_thread::sleep_for(std::chrono::milliseconds(200))) {
    screen = tmux.screen();
    seen = std::regex_search(screen, m, row) && std::stod(m[1].str()) > 0;
  }
  ASSERT_TRUE(seen) << screen;
  EXPECT_NE(screen.find("tcpconnect --top"), std::string::npos) << screen;
  EXPECT_NE(screen.find("CONN/s"), std::string::npos) << screen;
  EXPECT_EQ(tmux.format("#{alternate_on}"), "1\n") << "the screen is not the full-screen one";

  // The links the tracer holds.
  const auto kids = rt::children_of(std::stoi(tmux.format("#{pane_pid}")));
  ASSERT_EQ(kids.size(), 1u);
  const std::set<int> links = rt::link_ids_of(kids[0]);
  ASSERT_FALSE(links.empty());

  // A narrower terminal: the screen is drawn again at its width.
  ASSERT_NE(screen.find("PATTERN"), std::string::npos) << screen;
  tmux.resize(90);
  for (int i = 0; i < 50 && tmux.screen().find("PATTERN") != std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  screen = tmux.screen();
  EXPECT_EQ(screen.find("PATTERN"), std::string::npos) << screen;
  EXPECT_NE(screen.find("CONN/s"), std::string::npos) << screen;

  tmux.keys("s");  // sorts by the next column
  for (int i = 0; i < 50 && tmux.screen().find("by FAIL%") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(tmux.screen().find("s sort (by FAIL%)"), std::string::npos) << tmux.screen();

  tmux.keys("q");
  std::string rc;
  for (int i = 0; i < 100 && (rc = read_file(rc_file)).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  unlink(rc_file.c_str());
  EXPECT_EQ(rc, "0\n") << tmux.screen();
  EXPECT_EQ(tmux.format("#{alternate_on}"), "0\n") << "the terminal was not restored";
  EXPECT_EQ(tmux.screen().find("CONN/s"), std::string::npos) << tmux.screen();
  bool ok = false;
  const std::set<int> left = rt::all_link_ids(&ok);
  ASSERT_TRUE(ok) << "bpftool link list failed";
  for (int id : links) EXPECT_EQ(left.count(id), 0u) << "link " << id << " left attached";
}

}  // namespace
