// Wiring only: parse options, install signal handlers, run the session.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <iostream>
#include <string>

#include "app/run.h"
#include "cli/options.h"
#include "plan/plan.h"
#include "sink/fd_stream.h"
#include "sink/terminal.h"

namespace {
void on_signal(int) { tcpconnect::request_stop(); }

// Started with fd 0, 1 or 2 closed (`>&-`): the next descriptor opened (a BPF
// map, the metrics socket, an eventfd gRPC opens while it loads) would take its
// number and receive the output. They are opened on /dev/null instead, from the
// executable's preinit array: before the initializers of any library.
bool stdout_closed = false;
void open_closed_std_fds(int, char**, char**) {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    if (fd == 1) stdout_closed = true;
    // The lowest free number: this one, as the ones below it are open.
    if (open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd) return;
  }
}
[[gnu::section(".preinit_array"),
  gnu::used]] void (*const preinit_std_fds)(int, char**, char**) = open_closed_std_fds;
}  // namespace

int main(int argc, char** argv) {
  auto parsed = tcpconnect::parse_options(argc, argv);
  switch (parsed.kind) {
    case tcpconnect::ParseResult::Kind::Help:
    case tcpconnect::ParseResult::Kind::Version:
      std::cout << parsed.text;
      if (!parsed.text.empty() && parsed.text.back() != '\n') std::cout << '\n';
      return 0;
    case tcpconnect::ParseResult::Kind::Error:
      std::cerr << parsed.text << '\n';
      return parsed.exit_code;
    case tcpconnect::ParseResult::Kind::Run:
      break;
  }
  if (stdout_closed && !parsed.options.quiet) {
    std::cerr << "tcpconnect: standard output is closed; hint: redirect it (> FILE or > "
                 "/dev/null), or use --metrics with --quiet\n";
    return 1;
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: epoll_wait returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);  // a closed terminal or session ends tracing cleanly too
  std::signal(SIGPIPE, SIG_IGN);    // EPIPE is handled as a quiet exit

  tcpconnect::FdStreamBuf outbuf(1);
  std::ostream out(&outbuf);
  // --top draws on a terminal it knows (a terminfo entry); elsewhere it prints interval tables.
  bool terminal = isatty(STDOUT_FILENO) == 1;
  if (terminal && parsed.options.top) {
    std::string why;
    if (!tcpconnect::top_screen_available(why)) {
      std::cerr << "tcpconnect: warning: --top cannot draw on this terminal (" << why
                << "); printing interval tables instead\n";
      terminal = false;
    }
  }
  return tcpconnect::run(tcpconnect::make_plan(parsed.options, terminal), out, outbuf, std::cerr);
}
