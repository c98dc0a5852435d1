// dns_helper: resolves a name through glibc's stub resolver (res_nquery) against one forced
// server, then connects a TCP socket to the first address of the answer, so runtime tests know
// the PID that received the DNS answer and made the connect.
//
// Usage: dns_helper --server ADDR [--port P] [--tcp] [--edns] [--type A|AAAA] [--delay-ms N]
//                   [--wait-stdin] [--pause-stdin] NAME CONNECT_PORT
//
//   --server ADDR   IPv4 address of the DNS server (replaces /etc/resolv.conf's servers)
//   --port P        its port (default 53)
//   --tcp           query over TCP (RES_USEVC); otherwise UDP, falling back to TCP on TC
//   --edns          advertise EDNS0 (RES_USE_EDNS0): glibc accepts up to 1200 bytes over UDP
//   --type          record type to ask for (default A)
//   --delay-ms N    sleep N ms between the answer and the connect
//   --wait-stdin    print "pid=<pid> ready", wait for a line on stdin, then resolve
//   --pause-stdin   after resolving print "pid=<pid> resolved addr=<addr>" and wait for a line
//                   on stdin before connecting
//
// Prints one flushed line:
//   pid=<pid> name=<NAME> addr=<addr> naddrs=<count> result=ok|<errno name>
// Exit status: 0 resolved (whatever the connect did), 1 resolution failed (reason on stderr),
// 2 usage error.
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

namespace {

struct Args {
  std::string server;
  long port = 53;
  bool tcp = false;
  bool edns = false;
  int type = ns_t_a;
  long delay_ms = 0;
  bool wait_stdin = false;
  bool pause_stdin = false;
  std::string name;
  long connect_port = 0;
};

const char* const kUsage =
    "usage: dns_helper --server ADDR [--port P] [--tcp] [--edns] [--type A|AAAA]\n"
    "                  [--delay-ms N] [--wait-stdin] [--pause-stdin] NAME CONNECT_PORT\n";

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "dns_helper: %s\n%s", msg.c_str(), kUsage);
  std::exit(2);
}

long parse_num(const std::string& what, const std::string& s, long lo, long hi) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
    usage_error("bad " + what + ": '" + s + "'");
  long v = std::stol(s);
  if (v < lo || v > hi) usage_error("bad " + what + ": '" + s + "'");
  return v;
}

Args parse_args(int argc, char** argv) {
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--server") {
      a.server = value();
    } else if (arg == "--port") {
      a.port = parse_num("port", value(), 1, 65535);
    } else if (arg == "--tcp") {
      a.tcp = true;
    } else if (arg == "--edns") {
      a.edns = true;
    } else if (arg == "--type") {
      std::string t = value();
      if (t == "A") {
        a.type = ns_t_a;
      } else if (t == "AAAA") {
        a.type = ns_t_aaaa;
      } else {
        usage_error("unknown type: " + t);
      }
    } else if (arg == "--delay-ms") {
      a.delay_ms = parse_num("delay-ms", value(), 0, 600000);
    } else if (arg == "--wait-stdin") {
      a.wait_stdin = true;
    } else if (arg == "--pause-stdin") {
      a.pause_stdin = true;
    } else if (arg.rfind("--", 0) == 0) {
      usage_error("unknown option: " + arg);
    } else {
      positional.push_back(arg);
    }
  }
  if (a.server.empty()) usage_error("--server is required");
  if (positional.size() != 2) usage_error("expected NAME CONNECT_PORT");
  a.name = positional[0];
  a.connect_port = parse_num("connect port", positional[1], 0, 65535);
  return a;
}

void wait_line() {
  std::string line;
  std::getline(std::cin, line);  // EOF also releases us
}

struct Answer {
  int family = AF_UNSPEC;
  unsigned char addr[16] = {};
  int naddrs = 0;
};

// Queries `name` with the server forced to a.server:a.port. Returns false (message on stderr)
// when there is no usable answer.
bool resolve(const Args& a, Answer& out) {
  in_addr server{};
  if (inet_pton(AF_INET, a.server.c_str(), &server) != 1)
    usage_error("--server must be an IPv4 literal: " + a.server);
  struct __res_state st {};
  if (res_ninit(&st) != 0) {
    std::fprintf(stderr, "dns_helper: res_ninit failed\n");
    return false;
  }
  // res_ninit read the host's /etc/resolv.conf: replace its servers and reset its options
  // (use-vc, edns0, rotate, ...) so that only our flags decide UDP vs TCP and EDNS.
  st.nscount = 1;
  st.nsaddr_list[0] = sockaddr_in{};
  st.nsaddr_list[0].sin_family = AF_INET;
  st.nsaddr_list[0].sin_port = htons(static_cast<uint16_t>(a.port));
  st.nsaddr_list[0].sin_addr = server;
  st.retry = 1;
  st.retrans = 2;  // seconds per try
  st.options = RES_INIT | RES_RECURSE | RES_DEFNAMES | RES_DNSRCH;
  if (a.tcp) st.options |= RES_USEVC;
  if (a.edns) st.options |= RES_USE_EDNS0;

  std::vector<unsigned char> buf(65536);
  int n =
      res_nquery(&st, a.name.c_str(), ns_c_in, a.type, buf.data(), static_cast<int>(buf.size()));
  int herr = st.res_h_errno;
  res_nclose(&st);
  if (n < 0) {
    std::fprintf(stderr, "dns_helper: res_nquery %s: %s\n", a.name.c_str(), hstrerror(herr));
    return false;
  }
  ns_msg msg;
  if (ns_initparse(buf.data(), n, &msg) != 0) {
    std::fprintf(stderr, "dns_helper: unparsable answer (%d bytes)\n", n);
    return false;
  }
  const int want_len = a.type == ns_t_a ? 4 : 16;
  for (int i = 0; i < ns_msg_count(msg, ns_s_an); ++i) {
    ns_rr rr;
    if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) {
      std::fprintf(stderr, "dns_helper: bad answer record %d: %s\n", i, std::strerror(errno));
      return false;
    }
    if (ns_rr_type(rr) != a.type || ns_rr_rdlen(rr) != want_len) continue;  // CNAMEs etc.
    if (out.naddrs++ == 0) {
      out.family = a.type == ns_t_a ? AF_INET : AF_INET6;
      std::memcpy(out.addr, ns_rr_rdata(rr), static_cast<size_t>(want_len));
    }
  }
  if (out.naddrs == 0) {
    std::fprintf(stderr, "dns_helper: no %s record for %s\n", a.type == ns_t_a ? "A" : "AAAA",
                 a.name.c_str());
    return false;
  }
  return true;
}

// Blocking connect, bounded by SO_SNDTIMEO (connect() honours it). Returns 0 or an errno.
int connect_to(const Answer& ans, long port) {
  int fd = socket(ans.family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return errno;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_storage ss{};
  socklen_t len;
  if (ans.family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&sin->sin_addr, ans.addr, 4);
    len = sizeof(*sin);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&sin6->sin6_addr, ans.addr, 16);
    len = sizeof(*sin6);
  }
  int err = 0;
  while (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno == EINTR) continue;
    err = errno == EINPROGRESS ? ETIMEDOUT : errno;  // EINPROGRESS: SO_SNDTIMEO expired
    break;
  }
  close(fd);
  return err;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse_args(argc, argv);
  const int pid = static_cast<int>(getpid());
  if (a.wait_stdin) {
    std::printf("pid=%d ready\n", pid);
    std::fflush(stdout);
    wait_line();
  }
  Answer ans;
  if (!resolve(a, ans)) return 1;
  char addr[INET6_ADDRSTRLEN] = "";
  inet_ntop(ans.family, ans.addr, addr, sizeof(addr));
  if (a.pause_stdin) {
    std::printf("pid=%d resolved addr=%s\n", pid, addr);
    std::fflush(stdout);
    wait_line();
  }
  if (a.delay_ms > 0) {
    timespec ts{a.delay_ms / 1000, (a.delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
  int err = connect_to(ans, a.connect_port);
  const char* result = "ok";
  if (err != 0) result = strerrorname_np(err) ? strerrorname_np(err) : "EUNKNOWN";
  std::printf("pid=%d name=%s addr=%s naddrs=%d result=%s\n", pid, a.name.c_str(), addr, ans.naddrs,
              result);
  std::fflush(stdout);
  return 0;
}
