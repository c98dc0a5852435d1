// /metrics over cpp-httplib (0.11). The socket is bound before start()
// returns, so a busy port is an error at startup, not a silent thread exit.
#include "sink/metrics_server.h"

#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

namespace tcpconnect {
namespace {

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

constexpr const char* kIndex =
    "<html><head><title>tcpconnect</title></head><body>"
    "<h1>tcpconnect</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

std::string host_port(const std::string& addr, std::uint16_t port) {
  if (addr.find(':') != std::string::npos) return "[" + addr + "]:" + std::to_string(port);
  return addr + ":" + std::to_string(port);
}

// Numeric addresses only: a host name would mean a DNS lookup at startup
// and a listener on whichever address it happened to return.
bool numeric_address(const std::string& addr) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(addr.c_str(), nullptr, &hints, &res) != 0) return false;
  freeaddrinfo(res);
  return true;
}

}  // namespace

struct MetricsServer::Impl {
  httplib::Server svr;
  std::thread thread;
  std::atomic<bool> done{false};
  std::uint16_t port = 0;
};

std::unique_ptr<MetricsServer> MetricsServer::start(const Metrics& metrics, const std::string& addr,
                                                    std::uint16_t port, std::string& err) {
  auto self = bind(metrics, addr, port, err);
  if (self) self->serve();
  return self;
}

std::unique_ptr<MetricsServer> MetricsServer::bind(const Metrics& metrics, const std::string& addr,
                                                   std::uint16_t port, std::string& err) {
  if (!numeric_address(addr)) {
    err = "cannot listen on " + host_port(addr, port) + ": not a numeric IP address";
    return nullptr;
  }
  std::unique_ptr<MetricsServer> self(new MetricsServer());
  self->impl_ = std::make_unique<Impl>();
  Impl& impl = *self->impl_;
  httplib::Server& svr = impl.svr;

  // httplib's default sets SO_REUSEPORT, which would let a second tracer bind
  // the same port and take half the scrapes. SO_REUSEADDR only allows a
  // restart while old connections sit in TIME_WAIT.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    fcntl(sock, F_SETFD, FD_CLOEXEC);
  });
  // Scrapes are rare and cheap: a few workers suffice. Short timeouts bound
  // how long an idle keep-alive or a stalled client can delay shutdown, as
  // stop() does not interrupt connections already being served.
  svr.new_task_queue = [] { return new httplib::ThreadPool(4); };
  svr.set_keep_alive_timeout(1);
  svr.set_read_timeout(2, 0);
  svr.set_write_timeout(2, 0);

  svr.Get("/metrics", [&metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render(), kContentType);
  });
  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kIndex, "text/html; charset=utf-8");
  });
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404 && res.body.empty())
      res.set_content("404 page not found\n", "text/plain; charset=utf-8");
  });

  // httplib keeps no error code; the failing bind()/listen() leaves it in errno.
  errno = 0;
  int bound = port == 0 ? svr.bind_to_any_port(addr) : (svr.bind_to_port(addr, port) ? port : -1);
  if (bound <= 0) {
    int e = errno;
    err = "cannot listen on " + host_port(addr, port) + ": " +
          (e ? std::strerror(e) : "cannot bind the address");
    return nullptr;
  }
  impl.port = static_cast<std::uint16_t>(bound);
  return self;
}

void MetricsServer::serve() {
  Impl& impl = *impl_;
  if (impl.thread.joinable()) return;
  impl.thread = std::thread([&impl] {
    // The worker pool is created on this thread and inherits its mask: with
    // every signal blocked, SIGINT/SIGTERM interrupt the poll loop rather
    // than an HTTP thread. (SIGPIPE from a client that hung up cannot kill
    // the process either way: httplib::Server's constructor sets it to
    // SIG_IGN process-wide, and a blocked one would only stay pending.)
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    impl.svr.listen_after_bind();
    impl.done = true;
  });
  // stop() is a no-op until the accept loop runs; wait so the destructor
  // cannot miss it and join forever.
  while (!impl.svr.is_running() && !impl.done)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

MetricsServer::~MetricsServer() {
  if (!impl_) return;
  // httplib closes a bound socket only from a running server.
  if (!impl_->thread.joinable()) serve();
  impl_->svr.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::uint16_t MetricsServer::port() const { return impl_->port; }

}  // namespace tcpconnect
