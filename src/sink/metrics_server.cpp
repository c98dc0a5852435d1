// /metrics over a small HTTP/1.x server of our own: one thread, poll() over
// non-blocking sockets, an eventfd to wake it for shutdown.
//
// Why not cpp-httplib (Debian's 0.11, a compiled library): the endpoint is
// reachable by every local user, and that build cannot be bounded. Its
// compile-time limits (CPPHTTPLIB_HEADER_MAX_LENGTH, ...) are fixed in the
// .so, it has no header-count limit (500,000 headers left 1 GB resident), it
// reads request bodies into memory (a 1 GiB POST grew the process by 1 GiB),
// it answers Range requests (2,700 parts in 8 KB made a 12 MB response), it
// has no per-request deadline (slowloris clients starved scrapes and held
// shutdown 30 s+ while its workers were joined) and it queues every accepted
// connection (1,100 idle ones used up RLIMIT_NOFILE, and cgroup lookups
// failed). Here every limit is ours: a request head of at most kMaxHead bytes
// and kMaxHeaderLines lines, no body, no Range, kMaxConns connections (more
// are refused at once), kDeadline from accept to the last byte sent, and a
// shutdown that waits for no client.
#include "sink/metrics_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

namespace tcpconnect {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kIndexType = "text/html; charset=utf-8";
constexpr const char* kTextType = "text/plain; charset=utf-8";

constexpr const char* kIndex =
    "<html><head><title>tcpconnect</title></head><body>"
    "<h1>tcpconnect</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

// A Prometheus scrape request is a few hundred bytes and a dozen headers.
constexpr std::size_t kMaxHead = 8192;     // request line + headers + blank line
constexpr int kMaxHeaderLines = 64;        // header lines after the request line
constexpr std::size_t kMaxConns = 16;      // served at once; more are refused
constexpr milliseconds kDeadline{2000};    // accept -> response sent (and drained)
constexpr std::size_t kMaxDrain = 65536;   // bytes read and dropped after the response
constexpr milliseconds kAcceptPause{100};  // after accept() ran out of descriptors
constexpr int kBacklog = 64;
constexpr int kAcceptBurst = 64;  // accepts per wake-up, so that clients being served get a turn

std::string host_port(const std::string& addr, std::uint16_t port) {
  if (addr.find(':') != std::string::npos) return "[" + addr + "]:" + std::to_string(port);
  return addr + ":" + std::to_string(port);
}

struct Response {
  int status;
  const char* reason;
};

constexpr Response kOk{200, "OK"};
constexpr Response kBadRequest{400, "Bad Request"};
constexpr Response kNotFound{404, "Not Found"};
constexpr Response kMethodNotAllowed{405, "Method Not Allowed"};
constexpr Response kTimeout{408, "Request Timeout"};
constexpr Response kTooLarge{413, "Content Too Large"};
constexpr Response kHeadTooLarge{431, "Request Header Fields Too Large"};
constexpr Response kUnavailable{503, "Service Unavailable"};
constexpr Response kBadVersion{505, "HTTP Version Not Supported"};

// Every response closes its connection: one request per connection keeps the
// server's state to a single buffer and a single deadline.
std::string response(Response r, const char* type, std::string_view body, bool with_body) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + r.reason + "\r\n";
  if (type) out += std::string("Content-Type: ") + type + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (r.status == 405) out += "Allow: GET, HEAD\r\n";
  out += "Connection: close\r\n\r\n";
  if (with_body) out += body;
  return out;
}

std::string error_response(Response r, bool with_body = true) {
  std::string body = std::to_string(r.status) + " " + r.reason + "\n";
  for (char& c : body) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return response(r, kTextType, body, with_body);
}

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The response to a complete request head: `lines` are its lines without
// their line ends, the request line first.
std::string answer(const std::vector<std::string_view>& lines, const Metrics& metrics) {
  const std::string_view line = lines.front();
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return error_response(kBadRequest);
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty()) return error_response(kBadRequest);
  const bool head = method == "HEAD";
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return error_response(version.starts_with("HTTP/") ? kBadVersion : kBadRequest, !head);
  }

  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string_view h = lines[i];
    // Folded continuation lines are obsolete (RFC 9112 5.2) and a known way
    // to smuggle a header past one parser and not another.
    const std::size_t colon = h.find(':');
    if (colon == std::string_view::npos || !is_token(h.substr(0, colon)))
      return error_response(kBadRequest, !head);
    const std::string_view name = h.substr(0, colon);
    const std::string_view value = trim(h.substr(colon + 1));
    // There is no body to read: a request announcing one is refused rather
    // than read (and the connection closed with the body unread).
    if (iequals(name, "Transfer-Encoding")) return error_response(kBadRequest, !head);
    if (iequals(name, "Content-Length")) {
      if (value.empty() || value.find_first_not_of("0123456789") != std::string_view::npos)
        return error_response(kBadRequest, !head);
      if (value.find_first_not_of('0') != std::string_view::npos)
        return error_response(kTooLarge, !head);
    }
    // Range, If-Range, Accept-Encoding, Connection, ...: ignored. Every
    // response is the whole body, uncompressed, and closes the connection.
  }

  if (method != "GET" && !head) return error_response(kMethodNotAllowed);
  if (const std::size_t q = target.find('?'); q != std::string_view::npos)
    target = target.substr(0, q);
  if (target == "/metrics") return response(kOk, kContentType, metrics.render(), !head);
  if (target == "/") return response(kOk, kIndexType, kIndex, !head);
  return response(kNotFound, kTextType, "404 page not found\n", !head);
}

// Best effort, never blocking: a short answer to a client that is being let go.
void send_now(int fd, const std::string& s) {
  (void)send(fd, s.data(), s.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

struct Conn {
  int fd = -1;
  Clock::time_point deadline;
  enum class State { Reading, Writing, Draining } state = State::Reading;
  std::array<char, kMaxHead> head{};  // the request head as received
  std::size_t len = 0;                // bytes in `head`
  std::size_t scanned = 0;            // bytes of `head` already split into lines
  std::size_t line_start = 0;
  std::vector<std::string_view> lines;  // into `head`
  std::string out;                      // the response
  std::size_t sent = 0;
  std::size_t drained = 0;

  void close_fd() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

enum class Scan { NeedMore, Complete, Bad, TooLarge };

// Splits the bytes received since the last call into lines. Bare CR, NUL and
// other control characters are refused: nothing a scraper sends needs them.
Scan scan(Conn& c) {
  for (; c.scanned < c.len; ++c.scanned) {
    const char ch = c.head[c.scanned];
    if (ch != '\n') {
      const auto u = static_cast<unsigned char>(ch);
      if ((u < 0x20 && ch != '\t' && ch != '\r') || u == 0x7f) return Scan::Bad;
      continue;
    }
    std::size_t end = c.scanned;
    if (end > c.line_start && c.head[end - 1] == '\r') --end;
    std::string_view line(c.head.data() + c.line_start, end - c.line_start);
    c.line_start = c.scanned + 1;
    if (line.find('\r') != std::string_view::npos) return Scan::Bad;
    if (line.empty()) {
      // Blank lines before the request line are tolerated (RFC 9112 2.2).
      if (c.lines.empty()) continue;
      ++c.scanned;
      return Scan::Complete;
    }
    if (line.front() == ' ' || line.front() == '\t') return Scan::Bad;  // folding, or junk
    if (c.lines.size() > static_cast<std::size_t>(kMaxHeaderLines)) return Scan::TooLarge;
    c.lines.push_back(line);
  }
  return c.len == c.head.size() ? Scan::TooLarge : Scan::NeedMore;
}

}  // namespace

struct MetricsServer::Impl {
  const Metrics* metrics = nullptr;
  int listen_fd = -1;
  int wake_fd = -1;
  std::uint16_t port = 0;
  std::thread thread;
  std::vector<Conn> conns = std::vector<Conn>(kMaxConns);  // fixed: `lines` point into them

  ~Impl() {
    for (auto& c : conns) c.close_fd();
    if (listen_fd >= 0) close(listen_fd);
    if (wake_fd >= 0) close(wake_fd);
  }

  void run();
  Conn* free_slot();
  void progress_all();
  void accept_all(Clock::time_point now, Clock::time_point& pause_until);
  void on_readable(Conn& c);
  void on_writable(Conn& c);
  void drain(Conn& c);
};

Conn* MetricsServer::Impl::free_slot() {
  for (auto& c : conns)
    if (c.fd < 0) return &c;
  return nullptr;
}

// As far as each connection can go without waiting (every socket is non-blocking).
void MetricsServer::Impl::progress_all() {
  for (auto& c : conns) {
    if (c.fd < 0) continue;
    if (c.state == Conn::State::Writing)
      on_writable(c);
    else
      on_readable(c);
  }
}

void MetricsServer::Impl::accept_all(Clock::time_point now, Clock::time_point& pause_until) {
  for (int i = 0; i < kAcceptBurst; ++i) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // Out of descriptors or memory: the pending connection stays in the
      // backlog and the listener stays readable, so stop polling it a while
      // rather than spin.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        pause_until = now + kAcceptPause;
      return;
    }
    Conn* slot = free_slot();
    if (!slot) {
      // Clients that sent their request and left at once (a scraper timing
      // out) still hold slots until their next turn: move every connection
      // on now, so that only clients really present fill the server.
      progress_all();
      slot = free_slot();
    }
    if (!slot) {
      // Full: refused now rather than queued, so that idle clients cannot
      // pile up descriptors or delay the scrapes behind them.
      send_now(fd, error_response(kUnavailable));
      close(fd);
      continue;
    }
    Conn& c = *slot;
    c.fd = fd;
    c.deadline = now + kDeadline;
    c.state = Conn::State::Reading;
    c.len = c.scanned = c.line_start = c.sent = c.drained = 0;
    c.lines.clear();
    c.out.clear();
  }
}

// Waiting for the client to close after the response, so that unread request
// bytes cannot turn our close into a reset that destroys the response before
// the client reads it.
void MetricsServer::Impl::drain(Conn& c) {
  char sink[4096];
  ssize_t n = recv(c.fd, sink, sizeof sink, 0);
  if (n > 0) c.drained += static_cast<std::size_t>(n);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || c.drained > kMaxDrain) c.close_fd();
}

void MetricsServer::Impl::on_readable(Conn& c) {
  if (c.state == Conn::State::Draining) {
    drain(c);
    return;
  }
  ssize_t n = recv(c.fd, c.head.data() + c.len, c.head.size() - c.len, 0);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) c.close_fd();
    return;
  }
  if (n == 0) {  // the client gave up before finishing its request
    c.close_fd();
    return;
  }
  c.len += static_cast<std::size_t>(n);
  switch (scan(c)) {
    case Scan::NeedMore:
      return;
    case Scan::Bad:
      c.out = error_response(kBadRequest);
      break;
    case Scan::TooLarge:
      c.out = error_response(kHeadTooLarge);
      break;
    case Scan::Complete:
      c.out = answer(c.lines, *metrics);
      break;
  }
  c.state = Conn::State::Writing;
  on_writable(c);
}

void MetricsServer::Impl::on_writable(Conn& c) {
  while (c.sent < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      c.close_fd();  // the client hung up
      return;
    }
    c.sent += static_cast<std::size_t>(n);
  }
  std::string().swap(c.out);
  shutdown(c.fd, SHUT_WR);
  c.state = Conn::State::Draining;
  drain(c);  // a client already gone frees its slot now
}

void MetricsServer::Impl::run() {
  std::vector<pollfd> fds;
  std::vector<Conn*> polled;
  Clock::time_point accept_paused_until{};
  for (;;) {
    Clock::time_point now = Clock::now();
    fds.clear();
    polled.clear();
    fds.push_back({wake_fd, POLLIN, 0});
    const bool accepting = now >= accept_paused_until;
    if (accepting) fds.push_back({listen_fd, POLLIN, 0});
    Clock::time_point wake = accepting ? Clock::time_point::max() : accept_paused_until;
    for (auto& c : conns) {
      if (c.fd < 0) continue;
      if (now >= c.deadline) {
        if (c.state == Conn::State::Reading) send_now(c.fd, error_response(kTimeout));
        c.close_fd();
        continue;
      }
      wake = std::min(wake, c.deadline);
      fds.push_back(
          {c.fd, static_cast<short>(c.state == Conn::State::Writing ? POLLOUT : POLLIN), 0});
      polled.push_back(&c);
    }
    int timeout = -1;
    if (wake != Clock::time_point::max()) {
      auto ms = std::chrono::ceil<milliseconds>(wake - now).count();
      timeout = static_cast<int>(std::max<decltype(ms)>(ms, 0));
    }
    if (poll(fds.data(), fds.size(), timeout) < 0) {
      if (errno == EINTR) continue;
      return;  // cannot happen with valid descriptors; serving ends, tracing goes on
    }
    if (fds[0].revents) return;  // stop
    const std::size_t first_conn = accepting ? 2 : 1;
    for (std::size_t i = first_conn; i < fds.size(); ++i) {
      Conn& c = *polled[i - first_conn];
      const short ev = fds[i].revents;
      if (!ev || c.fd < 0) continue;
      if (c.state == Conn::State::Writing) {
        if (ev & (POLLOUT | POLLERR | POLLHUP)) on_writable(c);
      } else {
        on_readable(c);
      }
    }
    // After the clients being served, whose slots may have just come free.
    if (accepting && (fds[1].revents & POLLIN)) accept_all(Clock::now(), accept_paused_until);
  }
}

std::unique_ptr<MetricsServer> MetricsServer::start(const Metrics& metrics, const std::string& addr,
                                                    std::uint16_t port, std::string& err) {
  auto self = bind(metrics, addr, port, err);
  if (self) self->serve();
  return self;
}

std::unique_ptr<MetricsServer> MetricsServer::bind(const Metrics& metrics, const std::string& addr,
                                                   std::uint16_t port, std::string& err) {
  const std::string where = host_port(addr, port);
  // Numeric addresses only: a host name would mean a DNS lookup at startup
  // and a listener on whichever address it happened to return.
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(addr.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res) {
    err = "cannot listen on " + where + ": not a numeric IP address";
    return nullptr;
  }
  std::unique_ptr<MetricsServer> self(new MetricsServer());
  self->impl_ = std::make_unique<Impl>();
  Impl& impl = *self->impl_;
  impl.metrics = &metrics;

  auto fail = [&](int e) {
    err = "cannot listen on " + where + ": " + std::strerror(e);
    freeaddrinfo(res);
    return nullptr;
  };
  impl.listen_fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (impl.listen_fd < 0) return fail(errno);
  // Not SO_REUSEPORT, which would let a second tracer bind the same port and
  // take half the scrapes. SO_REUSEADDR only allows a restart while old
  // connections sit in TIME_WAIT.
  int yes = 1;
  setsockopt(impl.listen_fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  // "::" takes IPv4 as well, whatever net.ipv6.bindv6only says.
  if (res->ai_family == AF_INET6) {
    int no = 0;
    setsockopt(impl.listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof no);
  }
  if (::bind(impl.listen_fd, res->ai_addr, res->ai_addrlen) != 0 ||
      listen(impl.listen_fd, kBacklog) != 0)
    return fail(errno);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(impl.listen_fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return fail(errno);
  impl.port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  impl.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl.wake_fd < 0) return fail(errno);
  freeaddrinfo(res);
  return self;
}

void MetricsServer::serve() {
  Impl& impl = *impl_;
  if (impl.thread.joinable()) return;
  // The thread starts with every signal blocked (it inherits the mask it is
  // created with), so SIGINT/SIGTERM always reach the poll loop of the main
  // thread, and SIGPIPE cannot be raised here (sends use MSG_NOSIGNAL).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  impl.thread = std::thread([&impl] { impl.run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

MetricsServer::~MetricsServer() {
  if (!impl_) return;
  // The thread never blocks but in poll(), which the eventfd wakes.
  if (impl_->thread.joinable()) {
    const std::uint64_t one = 1;
    (void)write(impl_->wake_fd, &one, sizeof one);
    impl_->thread.join();
  }
}

std::uint16_t MetricsServer::port() const { return impl_->port; }

}  // namespace tcpconnect
