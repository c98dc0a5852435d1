// latency: measures how long the tracer takes to deliver a line at a low event rate: the
// time from a client's connect() returning to the tracer's line for that connection being
// readable by a consumer of the tracer's stdout.
//
// Usage: latency --tracer PATH [--count N] [--interval-ms M] [--mode pipe|file|both] [-v]
//
// Starts an own accept-and-close listener on 127.0.0.1 (ephemeral port), then per mode:
//   - starts `PATH -L -P <port>` with stdout on a pipe (pipe mode, read with poll()) or on a
//     temporary regular file (file mode, size polled every 1 ms) and waits for the header;
//   - N times: socket, blocking connect, t0 = CLOCK_MONOTONIC right after connect returns,
//     getsockname -> local port, wait (up to 2 s, else a miss) until a row whose LPORT column
//     is that port is readable, t1 = when it was read; close; sleep M ms;
//   - stops the tracer with SIGINT (SIGKILL after 10 s).
// Prints one line per mode on stdout:
//   mode=pipe n=20 misses=0 median_ms=.. p90_ms=.. max_ms=..
// Progress and diagnostics go to stderr (-v adds one line per connect). Loopback only.
// Exit status: 0 = measured (misses are reported, not an error), 1 = setup or tracer
// failure, 2 = usage error, 130 = interrupted.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: latency --tracer PATH [--count N (default 20)] [--interval-ms M (default 200)]\n"
    "               [--mode pipe|file|both (default both)] [-v|--verbose]\n";

constexpr std::int64_t kMs = 1'000'000;  // nanoseconds
constexpr std::int64_t kHeaderTimeout = 20'000 * kMs;
constexpr std::int64_t kConnectWait = 2'000 * kMs;  // per connect; longer = miss
constexpr std::int64_t kStopTimeout = 10'000 * kMs;
constexpr std::int64_t kFilePollInterval = 1 * kMs;

enum class Mode { kPipe, kFile };

struct Config {
  std::string tracer;
  int count = 20;
  int interval_ms = 200;
  std::vector<Mode> modes{Mode::kPipe, Mode::kFile};
  bool verbose = false;
};

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void sleep_ns(std::int64_t ns) {
  if (ns <= 0) return;
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);  // EINTR: caller checks g_stop
}

const char* mode_name(Mode m) { return m == Mode::kPipe ? "pipe" : "file"; }

[[noreturn]] void usage_error(const std::string& msg) {
  fmt::print(stderr, "latency: {}\n{}", msg, kUsage);
  std::exit(2);
}

int parse_int(const std::string& what, const std::string& s, long lo, long hi) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) {
    usage_error(fmt::format("bad {}: '{}'", what, s));
  }
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) {
    usage_error(fmt::format("bad {}: '{}' (allowed {}..{})", what, s, lo, hi));
  }
  return static_cast<int>(v);
}

Config parse_args(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string name = arg;
    std::optional<std::string> inline_val;
    if (auto eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      name = arg.substr(0, eq);
      inline_val = arg.substr(eq + 1);
    }
    auto value = [&]() -> std::string {
      if (inline_val) return *inline_val;
      if (i + 1 >= argc) usage_error(name + " needs a value");
      return argv[++i];
    };
    if (name == "-h" || name == "--help") {
      fmt::print("{}", kUsage);
      std::exit(0);
    } else if (name == "--tracer") {
      c.tracer = value();
    } else if (name == "--count") {
      c.count = parse_int("count", value(), 1, 100000);
    } else if (name == "--interval-ms") {
      c.interval_ms = parse_int("interval", value(), 0, 60000);
    } else if (name == "--mode") {
      std::string m = value();
      if (m == "pipe") {
        c.modes = {Mode::kPipe};
      } else if (m == "file") {
        c.modes = {Mode::kFile};
      } else if (m == "both") {
        c.modes = {Mode::kPipe, Mode::kFile};
      } else {
        usage_error(fmt::format("bad mode: '{}'", m));
      }
    } else if (name == "-v" || name == "--verbose") {
      if (inline_val) usage_error("--verbose takes no value");
      c.verbose = true;
    } else {
      usage_error("unknown argument: " + arg);
    }
  }
  if (c.tracer.empty()) usage_error("--tracer is required");
  if (access(c.tracer.c_str(), X_OK) != 0) {
    usage_error(fmt::format("tracer not executable: {}: {}", c.tracer, std::strerror(errno)));
  }
  return c;
}

// ---- listener ---------------------------------------------------------------------------

// Non-blocking listener on 127.0.0.1, ephemeral port. Returns the fd; sets `port`.
int start_listener(std::uint16_t& port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    fmt::print(stderr, "latency: socket: {}\n", std::strerror(errno));
    std::exit(1);
  }
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = 0;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof(sin)) != 0 ||
      listen(fd, SOMAXCONN) != 0) {
    fmt::print(stderr, "latency: bind/listen: {}\n", std::strerror(errno));
    std::exit(1);
  }
  socklen_t len = sizeof(sin);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  port = ntohs(sin.sin_port);
  return fd;
}

// Accepts and closes until `stop`; wakes at least every 100 ms to check it.
void accept_loop(int lfd, const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      close(fd);
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
      pollfd p{lfd, POLLIN, 0};
      poll(&p, 1, 100);
    } else {
      sleep_ns(10 * kMs);  // EMFILE etc.: do not spin
    }
  }
}

// ---- tracer child -----------------------------------------------------------------------

struct Tracer {
  Mode mode = Mode::kPipe;
  pid_t pid = -1;
  bool reaped = false;
  int status = 0;
  int out_fd = -1;  // pipe read end (non-blocking) or the output file opened for reading
  int err_fd = -1;  // the tracer's stderr: an unlinked temporary file
};

std::string make_temp(const char* stem, int* fd_out) {
  const char* dir = std::getenv("TMPDIR");
  std::string tmpl = fmt::format("{}/{}.XXXXXX", dir && *dir ? dir : "/tmp", stem);
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) {
    fmt::print(stderr, "latency: mkostemp {}: {}\n", tmpl, std::strerror(errno));
    std::exit(1);
  }
  *fd_out = fd;
  return std::string(buf.data());
}

// True once the child has exited (reaps it).
bool child_exited(Tracer& t) {
  if (t.reaped) return true;
  int st = 0;
  pid_t r = waitpid(t.pid, &st, WNOHANG);
  if (r == t.pid) {
    t.reaped = true;
    t.status = st;
  } else if (r < 0 && errno == ECHILD) {
    t.reaped = true;
  }
  return t.reaped;
}

std::string describe_status(int st) {
  if (WIFEXITED(st)) return fmt::format("exit status {}", WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return fmt::format("killed by signal {}", WTERMSIG(st));
  return fmt::format("status {:#x}", st);
}

void dump_stderr(const Tracer& t) {
  char buf[4096];
  ssize_t n = pread(t.err_fd, buf, sizeof(buf), 0);
  if (n <= 0) return;
  std::string_view text(buf, static_cast<std::size_t>(n));
  std::size_t end = 0;
  for (int lines = 0; lines < 20 && end < text.size(); ++lines) {
    std::size_t nl = text.find('\n', end);
    end = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  fmt::print(stderr, "--- tracer stderr (first 20 lines):\n{}", text.substr(0, end));
  if (end > 0 && text[end - 1] != '\n') fmt::print(stderr, "\n");
}

Tracer start_tracer(const Config& cfg, Mode mode, std::uint16_t port) {
  Tracer t;
  t.mode = mode;
  // The temporary files are unlinked at once (the fds stay open), so nothing is left behind
  // whatever way this program ends.
  std::string err_path = make_temp("latency-tracer-err", &t.err_fd);
  unlink(err_path.c_str());
  int child_out = -1;
  if (mode == Mode::kPipe) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      fmt::print(stderr, "latency: pipe: {}\n", std::strerror(errno));
      std::exit(1);
    }
    t.out_fd = p[0];
    child_out = p[1];
    fcntl(t.out_fd, F_SETFL, fcntl(t.out_fd, F_GETFL) | O_NONBLOCK);
  } else {
    // Our side reads with pread; the tracer gets its own write-only open of the same file.
    std::string out_path = make_temp("latency-tracer-out", &t.out_fd);
    child_out = open(out_path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    int e = errno;
    unlink(out_path.c_str());
    if (child_out < 0) {
      fmt::print(stderr, "latency: open {}: {}\n", out_path, std::strerror(e));
      std::exit(1);
    }
  }

  // Everything the child needs is prepared before fork (only async-signal-safe calls after).
  std::string port_s = std::to_string(port);
  std::vector<std::string> args{cfg.tracer, "-L", "-P", port_s};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    fmt::print(stderr, "latency: fork: {}\n", std::strerror(errno));
    std::exit(1);
  }
  if (pid == 0) {
    // Die with us, whatever kills us; SIGINT/SIGTERM/SIGPIPE at their defaults (a background
    // job of a script starts with SIGINT ignored, and SIGINT is how we stop the tracer).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGQUIT}) sigaction(sig, &sa, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    dup2(child_out, STDOUT_FILENO);
    dup2(t.err_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    static const char msg[] = "latency: exec of the tracer failed\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
  }
  t.pid = pid;
  close(child_out);
  if (devnull >= 0) close(devnull);
  return t;
}

// SIGINT, drain, wait up to kStopTimeout, then SIGKILL. Returns a description if the exit
// was not clean (status 0 after SIGINT), else an empty string.
std::string stop_tracer(Tracer& t) {
  std::string problem;
  if (!child_exited(t)) {
    kill(t.pid, SIGINT);
    const std::int64_t deadline = now_ns() + kStopTimeout;
    char buf[4096];
    while (!child_exited(t) && now_ns() < deadline) {
      if (t.mode == Mode::kPipe) {
        while (read(t.out_fd, buf, sizeof(buf)) > 0) {
        }  // keep the pipe from filling while it exits
      }
      sleep_ns(10 * kMs);
    }
    if (!child_exited(t)) {
      kill(t.pid, SIGKILL);
      int st = 0;
      waitpid(t.pid, &st, 0);
      t.reaped = true;
      t.status = st;
      problem = "did not exit within 10 s of SIGINT (killed)";
    }
  }
  if (problem.empty() && !(WIFEXITED(t.status) && WEXITSTATUS(t.status) == 0)) {
    problem = describe_status(t.status);
  }
  if (t.out_fd >= 0) close(t.out_fd);
  t.out_fd = -1;
  if (t.err_fd >= 0) close(t.err_fd);
  t.err_fd = -1;
  return problem;
}

// ---- reading the tracer's lines ---------------------------------------------------------

// Splits the tracer's stdout into lines and remembers, per LPORT, when its first row was read.
class LineReader {
 public:
  enum class Result { kData, kTimeout, kEof, kInterrupted };

  explicit LineReader(Tracer& t) : t_(t) {}

  bool header_seen() const { return lport_from_end_ >= 0; }

  // Time (now_ns) at which a row for `port` was read, if one has been.
  std::optional<std::int64_t> arrival(std::uint16_t port) const {
    auto it = arrivals_.find(port);
    if (it == arrivals_.end()) return std::nullopt;
    return it->second;
  }
  void forget(std::uint16_t port) { arrivals_.erase(port); }

  // Waits until new output was read, the deadline passed, or the tracer's output ended.
  Result pump(std::int64_t deadline) {
    return t_.mode == Mode::kPipe ? pump_pipe(deadline) : pump_file(deadline);
  }

 private:
  Result pump_pipe(std::int64_t deadline) {
    char buf[65536];
    for (;;) {
      if (g_stop) return Result::kInterrupted;
      ssize_t n = read(t_.out_fd, buf, sizeof(buf));
      if (n > 0) {
        feed(std::string_view(buf, static_cast<std::size_t>(n)), now_ns());
        return Result::kData;
      }
      if (n == 0) return Result::kEof;
      if (errno != EAGAIN && errno != EINTR) return Result::kEof;
      std::int64_t left = deadline - now_ns();
      if (left <= 0) return Result::kTimeout;
      pollfd p{t_.out_fd, POLLIN, 0};
      int ms = static_cast<int>(std::min<std::int64_t>((left + kMs - 1) / kMs, 100));
      poll(&p, 1, ms);  // POLLIN/POLLHUP: the read above tells which
    }
  }

  Result pump_file(std::int64_t deadline) {
    char buf[65536];
    for (;;) {
      if (g_stop) return Result::kInterrupted;
      // Check for exit before looking at the size, so no output is missed after it.
      bool gone = child_exited(t_);
      struct stat st {};
      if (fstat(t_.out_fd, &st) == 0 && st.st_size > offset_) {
        std::size_t want =
            static_cast<std::size_t>(std::min<off_t>(st.st_size - offset_, sizeof(buf)));
        ssize_t n = pread(t_.out_fd, buf, want, offset_);
        if (n > 0) {
          std::int64_t t = now_ns();
          offset_ += n;
          feed(std::string_view(buf, static_cast<std::size_t>(n)), t);
          return Result::kData;
        }
      }
      if (gone) return Result::kEof;
      if (now_ns() >= deadline) return Result::kTimeout;
      sleep_ns(kFilePollInterval);
    }
  }

  void feed(std::string_view data, std::int64_t t) {
    partial_.append(data);
    std::size_t start = 0;
    for (std::size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
      on_line(std::string_view(partial_).substr(start, nl - start), t);
    }
    partial_.erase(0, start);
  }

  static std::vector<std::string_view> split(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      std::size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
      if (j > i) out.push_back(line.substr(i, j - i));
      i = j;
    }
    return out;
  }

  void on_line(std::string_view line, std::int64_t t) {
    auto tok = split(line);
    if (!header_seen()) {
      // The header names the columns; LPORT is located from the end of the line, so a COMM
      // with spaces in a row cannot shift it.
      for (std::size_t i = 0; i < tok.size(); ++i) {
        if (tok[i] == "LPORT") lport_from_end_ = static_cast<int>(tok.size() - 1 - i);
      }
      return;
    }
    if (tok.size() <= static_cast<std::size_t>(lport_from_end_)) return;
    std::string_view v = tok[tok.size() - 1 - static_cast<std::size_t>(lport_from_end_)];
    if (v.empty() || v.size() > 5 || v.find_first_not_of("0123456789") != std::string::npos) {
      return;
    }
    unsigned long p = std::strtoul(std::string(v).c_str(), nullptr, 10);
    if (p == 0 || p > 65535) return;
    arrivals_.try_emplace(static_cast<std::uint16_t>(p), t);
  }

  Tracer& t_;
  off_t offset_ = 0;
  std::string partial_;
  int lport_from_end_ = -1;
  std::unordered_map<std::uint16_t, std::int64_t> arrivals_;
};

// ---- measurement ------------------------------------------------------------------------

struct ModeResult {
  bool ok = false;
  int n = 0;
  int misses = 0;
  std::vector<double> ms;  // latencies of the hits
};

// Nearest-rank percentile of sorted values (q in (0,1]).
double percentile(const std::vector<double>& sorted, double q) {
  std::size_t rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

double median(const std::vector<double>& sorted) {
  std::size_t n = sorted.size();
  return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

std::string fmt_ms(std::optional<double> v) { return v ? fmt::format("{:.2f}", *v) : "NA"; }

// One blocking loopback connect; returns the fd and sets t0 and the local port, or -1.
int connect_once(std::uint16_t dport, std::int64_t& t0, std::uint16_t& lport) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{2, 0};  // bounded even if the listener's backlog were full
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons(dport);
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof(sin));
  t0 = now_ns();
  if (rc != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  lport = ntohs(local.sin_port);
  return fd;
}

ModeResult run_mode(const Config& cfg, Mode mode, std::uint16_t port) {
  ModeResult res;
  const char* name = mode_name(mode);
  const std::int64_t started = now_ns();
  Tracer tracer = start_tracer(cfg, mode, port);
  LineReader reader(tracer);

  auto fail = [&](const std::string& why) {
    fmt::print(stderr, "latency: mode={}: {}\n", name, why);
    stop_tracer(tracer);  // closes the tracer's stderr file, so callers show it first
    return res;
  };

  // Wait for the header line.
  const std::int64_t header_deadline = started + kHeaderTimeout;
  while (!reader.header_seen()) {
    auto r = reader.pump(header_deadline);
    if (r == LineReader::Result::kInterrupted) return fail("interrupted");
    if (r == LineReader::Result::kEof) {
      child_exited(tracer);
      fmt::print(stderr, "latency: mode={}: tracer exited before printing its header ({})\n", name,
                 describe_status(tracer.status));
      dump_stderr(tracer);
      return fail("no header");
    }
    if (r == LineReader::Result::kTimeout) {
      dump_stderr(tracer);
      return fail("no header line with an LPORT column within 20 s");
    }
  }
  fmt::print(stderr, "latency: mode={} tracer ready after {:.0f} ms; {} connects, {} ms apart\n",
             name, static_cast<double>(now_ns() - started) / kMs, cfg.count, cfg.interval_ms);

  for (int i = 0; i < cfg.count; ++i) {
    if (g_stop) return fail("interrupted");
    std::int64_t t0 = 0;
    std::uint16_t lport = 0;
    int fd = connect_once(port, t0, lport);
    if (fd < 0) return fail(fmt::format("connect to 127.0.0.1:{}: {}", port, std::strerror(errno)));
    reader.forget(lport);  // a row read before this connect returned is an older connection's
    ++res.n;
    const std::int64_t deadline = t0 + kConnectWait;
    std::optional<std::int64_t> t1;
    bool eof = false;
    while (!(t1 = reader.arrival(lport))) {
      auto r = reader.pump(deadline);
      if (r == LineReader::Result::kInterrupted) {
        close(fd);
        return fail("interrupted");
      }
      if (r == LineReader::Result::kTimeout) break;
      if (r == LineReader::Result::kEof) {
        eof = true;
        break;
      }
    }
    close(fd);
    if (eof && !t1) {
      child_exited(tracer);
      fmt::print(stderr, "latency: mode={}: tracer output ended during the measurement ({})\n",
                 name, describe_status(tracer.status));
      dump_stderr(tracer);
      return fail("tracer exited");
    }
    if (t1) {
      double ms = static_cast<double>(*t1 - t0) / kMs;
      res.ms.push_back(ms);
      if (cfg.verbose) {
        fmt::print(stderr, "latency: mode={} #{} lport={} {:.3f} ms\n", name, i + 1, lport, ms);
      }
    } else {
      ++res.misses;
      fmt::print(stderr, "latency: mode={} #{} lport={}: no line within {} ms (miss)\n", name,
                 i + 1, lport, kConnectWait / kMs);
    }
    if (i + 1 < cfg.count) sleep_ns(static_cast<std::int64_t>(cfg.interval_ms) * kMs);
  }

  std::string problem = stop_tracer(tracer);
  if (!problem.empty()) {
    fmt::print(stderr, "latency: mode={}: warning: tracer after SIGINT: {}\n", name, problem);
  }
  res.ok = true;
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg = parse_args(argc, argv);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR so g_stop is seen promptly
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::uint16_t port = 0;
  int lfd = start_listener(port);
  std::atomic<bool> stop_accept{false};
  // The accept thread blocks SIGINT/SIGTERM so they reach the main thread.
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  std::thread acceptor(accept_loop, lfd, std::cref(stop_accept));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  int rc = 0;
  std::vector<std::string> lines;
  for (Mode m : cfg.modes) {
    ModeResult r = run_mode(cfg, m, port);
    if (g_stop) {
      rc = 130;
      break;
    }
    if (!r.ok) {
      rc = 1;
      lines.push_back(fmt::format("mode={} failed (see stderr)", mode_name(m)));
      continue;
    }
    std::sort(r.ms.begin(), r.ms.end());
    std::optional<double> med, p90, mx;
    if (!r.ms.empty()) {
      med = median(r.ms);
      p90 = percentile(r.ms, 0.9);
      mx = r.ms.back();
    }
    lines.push_back(fmt::format("mode={} n={} misses={} median_ms={} p90_ms={} max_ms={}",
                                mode_name(m), r.n, r.misses, fmt_ms(med), fmt_ms(p90), fmt_ms(mx)));
  }

  stop_accept.store(true);
  acceptor.join();
  close(lfd);

  for (const auto& l : lines) fmt::print("{}\n", l);
  std::fflush(stdout);
  return rc;
}
