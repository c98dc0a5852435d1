// listen_helper: a TCP listener for runtime tests, typically run inside a test-owned network
// namespace (`ip netns exec NAME listen_helper ADDR PORT`), where the test process itself
// cannot listen.
//
// Usage: listen_helper ADDR PORT
//   ADDR  an IPv4 or IPv6 literal to bind (e.g. 127.0.0.1, ::1, 10.200.7.2)
//   PORT  0 for an ephemeral port
//
// Once listening it prints one flushed line on stdout:   ready port=<p>
// then accepts and holds connections (printing "accepted <addr> <port>" for each) until its
// stdin reaches EOF (or errors), then closes everything and exits 0.
// Exit status: 0 after stdin closed, 1 on a runtime error, 2 on a usage error.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>

namespace {

constexpr std::size_t kMaxHeld = 512;  // beyond this the oldest connection is closed

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "listen_helper: %s\nusage: listen_helper ADDR PORT\n", msg.c_str());
  std::exit(2);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "listen_helper: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

std::string format_peer(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = "-";
  unsigned port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
    port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
    port = ntohs(sin6->sin6_port);
  }
  return std::string(buf) + " " + std::to_string(port);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) usage_error("expected ADDR PORT");
  std::string port_s = argv[2];
  if (port_s.empty() || port_s.size() > 5 ||
      port_s.find_first_not_of("0123456789") != std::string::npos || std::stol(port_s) > 65535) {
    usage_error("bad port: '" + port_s + "'");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* res = nullptr;
  if (getaddrinfo(argv[1], port_s.c_str(), &hints, &res) != 0 || res == nullptr) {
    usage_error(std::string("ADDR must be an IPv4 or IPv6 literal: ") + argv[1]);
  }
  std::signal(SIGPIPE, SIG_IGN);

  int lfd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(lfd, res->ai_addr, res->ai_addrlen) != 0) die(std::string("bind ") + argv[1]);
  freeaddrinfo(res);
  if (listen(lfd, 1024) != 0) die("listen");

  sockaddr_storage local{};
  socklen_t llen = sizeof(local);
  if (getsockname(lfd, reinterpret_cast<sockaddr*>(&local), &llen) != 0) die("getsockname");
  unsigned port =
      ntohs(local.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&local)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
  std::printf("ready port=%u\n", port);
  std::fflush(stdout);

  std::deque<int> held;
  for (;;) {
    pollfd fds[2] = {{0, POLLIN, 0}, {lfd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (fds[0].revents != 0) {
      char buf[256];
      ssize_t n = read(0, buf, sizeof(buf));
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;  // stdin closed
    }
    if (fds[1].revents & POLLIN) {
      sockaddr_storage peer{};
      socklen_t plen = sizeof(peer);
      int c = accept4(lfd, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::printf("accepted %s\n", format_peer(peer).c_str());
      std::fflush(stdout);
      held.push_back(c);
      if (held.size() > kMaxHeld) {
        close(held.front());
        held.pop_front();
      }
    }
  }
  for (int c : held) close(c);
  close(lfd);
  return 0;
}
