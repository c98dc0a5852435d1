// Wiring only: parse options, install signal handlers, run the session.
#include <csignal>
#include <iostream>

#include "app/run.h"
#include "cli/options.h"
#include "sink/fd_stream.h"

namespace {
void on_signal(int) { tcpconnect::request_stop(); }
}  // namespace

int main(int argc, char** argv) {
  auto parsed = tcpconnect::parse_options(argc, argv);
  switch (parsed.kind) {
    case tcpconnect::ParseResult::Kind::Help:
      std::cout << parsed.text;
      if (!parsed.text.empty() && parsed.text.back() != '\n') std::cout << '\n';
      return 0;
    case tcpconnect::ParseResult::Kind::Error:
      std::cerr << parsed.text << '\n';
      return parsed.exit_code;
    case tcpconnect::ParseResult::Kind::Run:
      break;
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: epoll_wait returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);  // a closed terminal or session ends tracing cleanly too
  std::signal(SIGPIPE, SIG_IGN);    // EPIPE is handled as a quiet exit

  tcpconnect::FdStreamBuf outbuf(1);
  std::ostream out(&outbuf);
  return tcpconnect::run(parsed.options, out, outbuf, std::cerr);
}
