// loadgen: opens TCP connections to a loopback listener as fast as the machine allows,
// for benchmarking the tracer's overhead on the connect path.
//
// Usage: loadgen [--threads N] [--duration SECONDS] [--port P] [--addr ADDR] [--ipv6]
//
// --port 0 (the default) starts an own accept-and-close listener on an ephemeral port.
// Each client thread loops socket/connect/close until the duration ends; sockets are
// closed with SO_LINGER {1,0} (RST) so no TIME_WAIT piles up and exhausts ephemeral ports.
// Prints one line at the end: connects=N seconds=S rate=R errors=E
// Only loopback destinations are accepted.
#include <arpa/inet.h>
#include <fmt/core.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  int threads = 2;
  double duration = 5.0;
  std::uint16_t port = 0;
  std::optional<std::string> addr;
  bool ipv6 = false;
};

struct Target {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
};

constexpr const char* kUsage =
    "usage: loadgen [--threads N (default 2)] [--duration SECONDS (default 5)]\n"
    "               [--port P (0 = own listener, default)] [--addr 127.0.0.1] [--ipv6]\n";

// A connect that does not finish within this is counted as an error (EINPROGRESS), so a
// full backlog cannot stall a thread past the duration for long.
constexpr long kConnectTimeoutMs = 500;

[[noreturn]] void usage_error(const std::string& msg) {
  fmt::print(stderr, "loadgen: {}\n{}", msg, kUsage);
  std::exit(2);
}

long long parse_int(const std::string& what, const std::string& s, long long lo, long long hi) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) {
    usage_error(fmt::format("bad {}: '{}'", what, s));
  }
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) {
    usage_error(fmt::format("bad {}: '{}'", what, s));
  }
  return v;
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
    } else if (name == "--threads") {
      c.threads = static_cast<int>(parse_int("thread count", value(), 1, 1024));
    } else if (name == "--duration") {
      std::string v = value();
      char* end = nullptr;
      errno = 0;
      c.duration = std::strtod(v.c_str(), &end);
      if (v.empty() || errno != 0 || *end != '\0' || !(c.duration > 0) || c.duration > 86400) {
        usage_error(fmt::format("bad duration: '{}'", v));
      }
    } else if (name == "--port") {
      c.port = static_cast<std::uint16_t>(parse_int("port", value(), 0, 65535));
    } else if (name == "--addr") {
      c.addr = value();
    } else if (name == "--ipv6") {
      if (inline_val) usage_error("--ipv6 takes no value");
      c.ipv6 = true;
    } else {
      usage_error("unknown argument: " + arg);
    }
  }
  return c;
}

std::optional<Target> make_target(const Config& c) {
  std::string a = c.addr ? *c.addr : (c.ipv6 ? "::1" : "127.0.0.1");
  Target t;
  in_addr v4{};
  in6_addr v6{};
  if (!c.ipv6 && inet_pton(AF_INET, a.c_str(), &v4) == 1) {
    if ((ntohl(v4.s_addr) >> 24) != 127) return std::nullopt;
    auto* sin = reinterpret_cast<sockaddr_in*>(&t.ss);
    sin->sin_family = AF_INET;
    sin->sin_addr = v4;
    t.len = sizeof(sockaddr_in);
    t.family = AF_INET;
  } else if (inet_pton(AF_INET6, a.c_str(), &v6) == 1) {
    bool loop = IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
    if (!loop) return std::nullopt;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&t.ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = v6;
    t.len = sizeof(sockaddr_in6);
    t.family = AF_INET6;
  } else {
    return std::nullopt;
  }
  return t;
}

void set_port(Target& t, std::uint16_t port) {
  if (t.family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&t.ss)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&t.ss)->sin6_port = htons(port);
  }
}

void set_rst_linger(int fd) {
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

// Binds a non-blocking listener on the target address, port 0; returns fd and sets the port.
int start_listener(Target& t) {
  int fd = socket(t.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    fmt::print(stderr, "loadgen: socket: {}\n", std::strerror(errno));
    std::exit(1);
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // Accepted sockets close normally (FIN): an RST from this side could reach the client
  // before its connect() returns and turn a completed connect into ECONNRESET. The client's
  // RST close then tears both ends down, so neither side enters TIME_WAIT.
  set_port(t, 0);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&t.ss), t.len) != 0 ||
      listen(fd, SOMAXCONN) != 0) {
    fmt::print(stderr, "loadgen: bind/listen: {}\n", std::strerror(errno));
    std::exit(1);
  }
  sockaddr_storage bound{};
  socklen_t bl = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bl);
  std::uint16_t port = bound.ss_family == AF_INET
                           ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                           : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  set_port(t, port);
  return fd;
}

// Accepts and closes until `stop`; wakes at least every 100 ms to check it. Once `stop` is
// set (after every client has finished), it drains the accept queue before returning, so
// every completed connect is also accepted: a tracer of accepts sees one per connect.
void accept_loop(int lfd, const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      close(fd);
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      pollfd p{lfd, POLLIN, 0};
      poll(&p, 1, 100);
    } else if (errno != EINTR && errno != ECONNABORTED) {
      // EMFILE etc.: back off briefly rather than spin.
      pollfd p{-1, 0, 0};
      poll(&p, 0, 10);
    }
  }
  for (;;) {  // drain (the listener is non-blocking)
    int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      close(fd);
    } else if (errno != EINTR && errno != ECONNABORTED) {
      break;  // EAGAIN: queue empty (or a persistent error such as EMFILE: give up)
    }
  }
}

struct WorkerResult {
  std::uint64_t connects = 0;
  std::uint64_t errors = 0;
  std::map<int, std::uint64_t> by_errno;
};

void client_loop(const Target& t, const std::atomic<bool>& stop, WorkerResult& out) {
  const auto* sa = reinterpret_cast<const sockaddr*>(&t.ss);
  timeval tv{0, kConnectTimeoutMs * 1000};
  while (!stop.load(std::memory_order_relaxed)) {
    int fd = socket(t.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      ++out.errors;
      ++out.by_errno[errno];
      pollfd p{-1, 0, 0};
      poll(&p, 0, 1);  // e.g. EMFILE: do not spin
      continue;
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    set_rst_linger(fd);
    if (connect(fd, sa, t.len) == 0) {
      ++out.connects;
    } else {
      ++out.errors;
      ++out.by_errno[errno];
    }
    close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg = parse_args(argc, argv);
  std::optional<Target> target = make_target(cfg);
  if (!target) {
    usage_error(
        fmt::format("--addr must be a loopback literal{}", cfg.ipv6 ? " (IPv6 with --ipv6)" : ""));
  }

  std::atomic<bool> stop_accept{false};
  std::thread acceptor;
  int lfd = -1;
  if (cfg.port == 0) {
    lfd = start_listener(*target);
    acceptor = std::thread(accept_loop, lfd, std::cref(stop_accept));
  } else {
    set_port(*target, cfg.port);
  }

  std::atomic<bool> stop{false};
  std::vector<WorkerResult> results(static_cast<std::size_t>(cfg.threads));
  std::vector<std::thread> clients;
  clients.reserve(results.size());
  const auto t0 = Clock::now();
  for (auto& r : results) {
    clients.emplace_back(client_loop, std::cref(*target), std::cref(stop), std::ref(r));
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(cfg.duration));
  stop.store(true);
  for (auto& th : clients) th.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();

  if (acceptor.joinable()) {
    stop_accept.store(true);
    acceptor.join();
    close(lfd);
  }

  WorkerResult total;
  for (const auto& r : results) {
    total.connects += r.connects;
    total.errors += r.errors;
    for (auto [e, n] : r.by_errno) total.by_errno[e] += n;
  }
  if (total.errors != 0) {
    std::string detail;
    for (auto [e, n] : total.by_errno) {
      const char* name = strerrorname_np(e);
      detail += fmt::format(" {}={}", name ? name : std::to_string(e), n);
    }
    fmt::print(stderr, "loadgen: errors:{}\n", detail);
  }
  fmt::print("connects={} seconds={:.3f} rate={:.0f} errors={}\n", total.connects, secs,
             secs > 0 ? static_cast<double>(total.connects) / secs : 0.0, total.errors);
  std::fflush(stdout);
  return total.connects > 0 ? 0 : 1;
}
