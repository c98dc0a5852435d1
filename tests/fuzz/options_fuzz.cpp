// libFuzzer target for parse_options. The input is split on NUL bytes into at most kMaxArgs
// arguments after a fixed argv[0] (bytes after the last of them are ignored). Whatever the
// arguments, parsing must not throw and must obey the result contract that main() relies on:
// an error is one line with exit status 1 or 2, help is text with status 0, and a run carries
// options that the rest of the tool can take as validated.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "cli/options.h"

namespace {

constexpr std::size_t kMaxArgs = 16;

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "options_fuzz: invariant broken: %s%s%s\n", what, detail.empty() ? "" : ": ",
               detail.c_str());
  std::abort();
}

void expect(bool ok, const char* what, const std::string& detail = {}) {
  if (!ok) fail(what, detail);
}

void check_error(const tcpconnect::ParseResult& r) {
  expect(r.exit_code == 1 || r.exit_code == 2, "error exit code is not 1 or 2",
         std::to_string(r.exit_code));
  expect(r.text.rfind("tcpconnect: ", 0) == 0, "error does not start with the program name",
         r.text);
  expect(r.text.size() > std::string_view("tcpconnect: ").size(), "empty error message");
  // main() adds the only newline; a raw control character could also break a terminal line.
  for (char c : r.text) {
    const auto u = static_cast<unsigned char>(c);
    expect(u >= 0x20 && u != 0x7f, "control character in the error line", r.text);
  }
  expect(r.text.back() != ' ', "trailing blank in the error line", r.text);
}

void check_run(const tcpconnect::ParseResult& r) {
  const tcpconnect::Options& o = r.options;
  expect(r.exit_code == 0, "run with a non-zero exit code");
  expect(r.text.empty(), "run with text", r.text);
  expect(!(o.ipv4 && o.ipv6), "-4 and -6 both accepted");
  expect(o.ports.size() <= 64, "more than 64 ports accepted");
  for (std::size_t i = 0; i < o.ports.size(); ++i) {
    expect(o.ports[i] != 0, "port 0 accepted");
    for (std::size_t j = 0; j < i; ++j) expect(o.ports[i] != o.ports[j], "duplicate port kept");
  }
  if (o.pid) expect(*o.pid >= 1 && *o.pid <= 4194304, "PID out of range accepted");
  if (o.uid) expect(*o.uid != 0xffffffffu, "UID -1 accepted");
  if (o.duration_s) {
    expect(std::isfinite(*o.duration_s) && *o.duration_s > 0 && *o.duration_s <= 1e9,
           "duration out of range accepted");
  }
  expect(o.ringbuf_bytes >= 4096 && (o.ringbuf_bytes & (o.ringbuf_bytes - 1)) == 0,
         "ring buffer size not a power of two of at least a page", std::to_string(o.ringbuf_bytes));
  if (o.shorter_than_ns) {
    expect(*o.shorter_than_ns > 0, "--shorter-than 0 accepted");
    expect(o.lifetime, "--shorter-than without lifetime");
  }
  if (o.netns) expect(*o.netns != 0, "network namespace 0 accepted");
  for (const auto* p : {&o.cgroup, &o.cgroupmap, &o.mntnsmap}) {
    if (*p) expect(!(*p)->empty(), "empty path accepted");
  }
  expect(o.dns_cache_size >= 1 && o.dns_cache_size <= 10'000'000, "DNS cache size out of range");
  expect(o.dns_max_age_ns > 0, "DNS max age 0 accepted");
  expect(o.exec_cache_size >= 1 && o.exec_cache_size <= 10'000'000, "exec cache size out of range");
  expect(o.metrics_top >= 1 && o.metrics_top <= 10000, "--metrics-top out of range");
  if (o.metrics_addr) {
    expect(o.metrics_port != 0, "metrics port 0 accepted");
    expect(!o.metrics_addr->empty(), "empty metrics address");
  }
  expect(!o.quiet || o.metrics_addr.has_value(), "--quiet without --metrics");
  expect(!o.by_process || o.count, "--by-process without -c");
  if (o.count) {
    expect(!o.dns && !o.container && !o.metrics_addr, "-c combined with -d/--container/--metrics");
    expect(!o.outcome && !o.failed && !o.lifetime, "-c combined with a lifecycle mode");
    expect(!o.timestamp && !o.print_uid && !o.parent && !o.cmdline && !o.accept,
           "-c combined with -t, -U, --parent, --cmdline or --accept");
  }
  if (o.quiet) {
    expect(!o.json && !o.timestamp && !o.print_uid && !o.lport && !o.outcome && !o.failed &&
               !o.lifetime && !o.accept && !o.dns && !o.container && !o.parent && !o.cmdline,
           "--quiet combined with an option of the per-event output");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args{"tcpconnect"};
  // N NULs make N + 1 arguments, so an empty last argument ("-P" "") can be expressed.
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (size > 0 && args.size() <= kMaxArgs) {
    const auto nul = rest.find('\0');
    args.emplace_back(rest.substr(0, nul));
    if (nul == std::string_view::npos) break;
    rest.remove_prefix(nul + 1);
  }
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  const int argc = static_cast<int>(args.size());

  tcpconnect::ParseResult r;
  try {
    r = tcpconnect::parse_options(argc, argv.data());
  } catch (const std::exception& e) {
    fail("parse_options threw", e.what());
  } catch (...) {
    fail("parse_options threw a non-standard exception");
  }
  switch (r.kind) {
    case tcpconnect::ParseResult::Kind::Error:
      check_error(r);
      break;
    case tcpconnect::ParseResult::Kind::Help:
      expect(r.exit_code == 0, "help with a non-zero exit code");
      expect(!r.text.empty() && r.text.back() == '\n', "help text does not end in a newline");
      break;
    case tcpconnect::ParseResult::Kind::Version:
      expect(r.exit_code == 0, "version with a non-zero exit code");
      expect(r.text.rfind("tcpconnect ", 0) == 0 && r.text.find('\n') == std::string::npos,
             "version is not one line starting with the program name", r.text);
      break;
    case tcpconnect::ParseResult::Kind::Run:
      check_run(r);
      break;
  }
  return 0;
}
