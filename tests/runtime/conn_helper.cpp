// conn_helper: makes TCP connections with a known PID/TID/UID so runtime tests can
// match what the tracer reports against what really happened.
//
// Usage: conn_helper [--method connect|uring|tfo] [--uid UID] [--bind-port P]
//                    [--hold-ms N] [--send BYTES] [--nonblock] [--count N] [--spread]
//                    [--wait-stdin] ADDR PORT
//
// --spread (IPv4): connection i goes to ADDR + i, e.g. 127.1.0.1, 127.1.0.2, ...
//
// For every connection it prints one flushed line on stdout:
//   pid=.. tid=.. uid=.. af=4|6 saddr=.. sport=.. daddr=.. dport=.. result=ok|<errno name>
// Exit status: 0 all connections ok, 1 any failed (or a runtime error), 2 usage error.
//
// Links only liburing (no fmt): it is built by tests/CMakeLists.txt.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

enum class Method { kConnect, kUring, kTfo };

struct Args {
  Method method = Method::kConnect;
  std::optional<uid_t> uid;
  std::optional<std::uint16_t> bind_port;
  long hold_ms = 0;
  std::optional<std::size_t> send_bytes;
  bool nonblock = false;
  long count = 1;
  bool spread = false;  // --spread: connect i goes to the IPv4 address ADDR + i
  bool wait_stdin = false;
  std::string addr;
  std::uint16_t port = 0;
};

constexpr int kConnectTimeoutMs = 5000;

const char* const kUsage =
    "usage: conn_helper [--method connect|uring|tfo] [--uid UID] [--bind-port P]\n"
    "                   [--hold-ms N] [--send BYTES] [--nonblock] [--count N] [--spread]\n"
    "                   [--wait-stdin] ADDR PORT\n";

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "conn_helper: %s\n%s", msg.c_str(), kUsage);
  std::exit(2);
}

// Parses a decimal integer in [lo, hi]; anything else is a usage error.
long long parse_num(std::string_view what, const std::string& s, long long lo, long long hi) {
  // strtoll would accept leading blanks, '+' and '-': only plain digits are allowed.
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) {
    usage_error("bad " + std::string(what) + ": '" + s + "'");
  }
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || *end != '\0' || v < lo || v > hi) {
    usage_error("bad " + std::string(what) + ": '" + s + "'");
  }
  return v;
}

Args parse_args(int argc, char** argv) {
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
      break;
    }
    if (arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      positional.push_back(arg);
      continue;
    }
    // --opt=value or --opt value
    std::string name = arg;
    std::optional<std::string> inline_val;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_val = arg.substr(eq + 1);
    }
    auto value = [&]() -> std::string {
      if (inline_val) return *inline_val;
      if (i + 1 >= argc) usage_error(name + " needs a value");
      return argv[++i];
    };
    auto no_value = [&]() {
      if (inline_val) usage_error(name + " takes no value");
    };
    if (name == "--method") {
      std::string m = value();
      if (m == "connect") {
        a.method = Method::kConnect;
      } else if (m == "uring") {
        a.method = Method::kUring;
      } else if (m == "tfo") {
        a.method = Method::kTfo;
      } else {
        usage_error("unknown method: " + m);
      }
    } else if (name == "--uid") {
      a.uid = static_cast<uid_t>(parse_num("uid", value(), 0, 0xfffffffeLL));
    } else if (name == "--bind-port") {
      a.bind_port = static_cast<std::uint16_t>(parse_num("bind port", value(), 0, 65535));
    } else if (name == "--hold-ms") {
      a.hold_ms = static_cast<long>(parse_num("hold-ms", value(), 0, 86400000LL));
    } else if (name == "--send") {
      a.send_bytes = static_cast<std::size_t>(parse_num("send bytes", value(), 0, 1LL << 30));
    } else if (name == "--nonblock") {
      no_value();
      a.nonblock = true;
    } else if (name == "--count") {
      a.count = static_cast<long>(parse_num("count", value(), 1, 10000000));
    } else if (name == "--spread") {
      no_value();
      a.spread = true;
    } else if (name == "--wait-stdin") {
      no_value();
      a.wait_stdin = true;
    } else {
      usage_error("unknown option: " + name);
    }
  }
  if (positional.size() != 2) usage_error("expected ADDR PORT");
  a.addr = positional[0];
  a.port = static_cast<std::uint16_t>(parse_num("port", positional[1], 0, 65535));
  return a;
}

// Destination resolved from a numeric literal (IPv4, or IPv6 with optional %scope).
struct Dest {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_UNSPEC;
};

std::optional<Dest> parse_addr(const std::string& addr, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_s = std::to_string(port);
  if (getaddrinfo(addr.c_str(), port_s.c_str(), &hints, &res) != 0 || res == nullptr) {
    return std::nullopt;
  }
  Dest d;
  std::memcpy(&d.ss, res->ai_addr, res->ai_addrlen);
  d.len = res->ai_addrlen;
  d.family = res->ai_family;
  freeaddrinfo(res);
  if (d.family != AF_INET && d.family != AF_INET6) return std::nullopt;
  return d;
}

std::string errno_name(int err) {
  if (err == 0) return "ok";
  const char* n = strerrorname_np(err);
  if (n != nullptr) return n;
  return "E" + std::to_string(err);
}

// Formats an address/port pair from a sockaddr (no scope id, like the tracer).
void format_sockaddr(const sockaddr_storage& ss, std::string& addr, unsigned& port) {
  char buf[INET6_ADDRSTRLEN] = "-";
  port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
    port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
    port = ntohs(sin6->sin6_port);
  }
  addr = buf;
}

bool set_nonblocking(int fd, bool on) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return false;
  fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  return fcntl(fd, F_SETFL, fl) == 0;
}

// After EINPROGRESS on a non-blocking socket: wait for writability (bounded), read SO_ERROR.
int wait_connected(int fd) {
  pollfd p{fd, POLLOUT, 0};
  int r;
  do {
    r = poll(&p, 1, kConnectTimeoutMs);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return errno;
  if (r == 0) return ETIMEDOUT;
  int soerr = 0;
  socklen_t sl = sizeof(soerr);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) return errno;
  return soerr;
}

// Writes all of buf on a blocking socket. Returns 0 or an errno.
int write_all(int fd, const char* buf, std::size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    buf += n;
    len -= static_cast<std::size_t>(n);
  }
  return 0;
}

void sleep_ms(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// Opens a socket and binds it if asked. Returns fd or -errno.
int make_socket(const Args& a, const Dest& d) {
  int type = SOCK_STREAM | SOCK_CLOEXEC;
  if (a.nonblock && a.method != Method::kUring) type |= SOCK_NONBLOCK;
  int fd = socket(d.family, type, IPPROTO_TCP);
  if (fd < 0) return -errno;
  if (a.bind_port) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_storage local{};
    socklen_t llen;
    if (d.family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&local);
      sin->sin_family = AF_INET;
      sin->sin_addr.s_addr = htonl(INADDR_ANY);
      sin->sin_port = htons(*a.bind_port);
      llen = sizeof(sockaddr_in);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&local);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_addr = in6addr_any;
      sin6->sin6_port = htons(*a.bind_port);
      llen = sizeof(sockaddr_in6);
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), llen) != 0) {
      int e = errno;
      close(fd);
      return -e;
    }
  }
  return fd;
}

// One connection attempt by the chosen method. Returns 0 or an errno.
// `sent` is set to how many payload bytes already went out with the connect (TFO).
int do_connect(const Args& a, const Dest& d, int fd, io_uring* ring, const std::string& payload,
               std::size_t& sent) {
  const auto* sa = reinterpret_cast<const sockaddr*>(&d.ss);
  sent = 0;
  switch (a.method) {
    case Method::kConnect: {
      if (connect(fd, sa, d.len) == 0) return 0;
      int e = errno;
      if (a.nonblock && e == EINPROGRESS) return wait_connected(fd);
      return e;
    }
    case Method::kUring: {
      io_uring_sqe* sqe = io_uring_get_sqe(ring);
      if (sqe == nullptr) return EBUSY;
      io_uring_prep_connect(sqe, fd, sa, d.len);
      int r = io_uring_submit(ring);
      if (r < 0) return -r;
      io_uring_cqe* cqe = nullptr;
      do {
        r = io_uring_wait_cqe(ring, &cqe);
      } while (r == -EINTR);
      if (r < 0) return -r;
      int res = cqe->res;
      io_uring_cqe_seen(ring, cqe);
      return res < 0 ? -res : 0;
    }
    case Method::kTfo: {
      ssize_t n;
      do {
        n = sendto(fd, payload.data(), payload.size(), MSG_FASTOPEN | MSG_NOSIGNAL, sa, d.len);
      } while (n < 0 && errno == EINTR);
      if (n >= 0) {
        // Connected (blocking, or data carried in the SYN); a short count leaves the rest
        // for write_all.
        sent = static_cast<std::size_t>(n);
        return 0;
      }
      int e = errno;
      // Non-blocking without a cookie: SYN sent, no data copied yet.
      if (a.nonblock && e == EINPROGRESS) return wait_connected(fd);
      return e;
    }
  }
  return EINVAL;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse_args(argc, argv);
  std::optional<Dest> dest = parse_addr(a.addr, a.port);
  if (!dest) usage_error("ADDR must be an IPv4 or IPv6 literal: " + a.addr);
  if (a.spread && dest->family != AF_INET) usage_error("--spread needs an IPv4 ADDR");
  std::signal(SIGPIPE, SIG_IGN);

  if (a.uid) {
    gid_t gid = static_cast<gid_t>(*a.uid);
    if (setgroups(0, nullptr) != 0 && errno != EPERM) {
      std::perror("conn_helper: setgroups");
      return 1;
    }
    if (setgid(gid) != 0) {
      std::perror("conn_helper: setgid");
      return 1;
    }
    if (setuid(*a.uid) != 0) {
      std::perror("conn_helper: setuid");
      return 1;
    }
  }

  io_uring ring{};
  bool ring_ok = false;
  if (a.method == Method::kUring) {
    int r = io_uring_queue_init(4, &ring, 0);
    if (r < 0) {
      std::fprintf(stderr, "conn_helper: io_uring_queue_init: %s\n", std::strerror(-r));
      return 1;
    }
    ring_ok = true;
  }

  if (a.wait_stdin) {
    std::printf("ready pid=%d\n", static_cast<int>(getpid()));
    std::fflush(stdout);
    std::string line;
    std::getline(std::cin, line);  // EOF also releases us
  }

  // Payload: --send BYTES of 'x'; TFO without --send sends "hello".
  std::string payload;
  if (a.send_bytes) {
    payload.assign(*a.send_bytes, 'x');
  } else if (a.method == Method::kTfo) {
    payload = "hello";
  }

  const int af = dest->family == AF_INET ? 4 : 6;
  const Dest first = *dest;

  bool all_ok = true;
  for (long i = 0; i < a.count; ++i) {
    if (a.spread) {
      auto* in = reinterpret_cast<sockaddr_in*>(&dest->ss);
      const auto* base = reinterpret_cast<const sockaddr_in*>(&first.ss);
      in->sin_addr.s_addr = htonl(ntohl(base->sin_addr.s_addr) + static_cast<std::uint32_t>(i));
    }
    std::string daddr;
    unsigned dport = 0;
    format_sockaddr(dest->ss, daddr, dport);
    int fd = make_socket(a, *dest);
    int err = 0;
    std::size_t sent = 0;
    if (fd < 0) {
      err = -fd;
    } else {
      err = do_connect(a, *dest, fd, ring_ok ? &ring : nullptr, payload, sent);
    }

    sockaddr_storage local{};
    socklen_t llen = sizeof(local);
    std::string saddr = "-";
    unsigned sport = 0;
    if (fd >= 0 && getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) == 0) {
      format_sockaddr(local, saddr, sport);
    }
    std::printf("pid=%d tid=%d uid=%u af=%d saddr=%s sport=%u daddr=%s dport=%u result=%s\n",
                static_cast<int>(getpid()), static_cast<int>(gettid()),
                static_cast<unsigned>(getuid()), af, saddr.c_str(), sport, daddr.c_str(), dport,
                errno_name(err).c_str());
    std::fflush(stdout);

    if (err != 0) {
      all_ok = false;
    } else {
      if (a.nonblock) set_nonblocking(fd, false);
      if (sent < payload.size()) {
        int werr = write_all(fd, payload.data() + sent, payload.size() - sent);
        if (werr != 0) {
          std::fprintf(stderr, "conn_helper: send: %s\n", errno_name(werr).c_str());
          all_ok = false;
        }
      }
      if (a.hold_ms > 0) sleep_ms(a.hold_ms);
    }
    if (fd >= 0) close(fd);
  }

  if (ring_ok) io_uring_queue_exit(&ring);
  return all_ok ? 0 : 1;
}
