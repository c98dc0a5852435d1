// execload: starts short-lived processes as fast as the machine allows, for measuring
// what the tracer's exec hook (command lines for -j and --cmdline) costs. See bench/exec.sh.
//
// Usage: execload [--threads N] [--duration SECONDS] [--argv-bytes B]
//
// Each thread loops posix_spawn(/bin/true, argv) + waitpid until the duration ends. argv is
// /bin/true followed by option-like arguments filling about B bytes in all (counting each
// string's terminating NUL, as the kernel's arg area does), so the command line the tracer
// copies at exec has a realistic size. A spawn counts as successful when the child exits
// with status 0.
// Prints one line at the end: execs=N errors=E rate=R (R = successful execs/s).
#include <fmt/core.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "workers.h"

namespace {

constexpr const char* kProgram = "/bin/true";

struct Config {
  int threads = 2;
  double duration = 5.0;
  std::size_t argv_bytes = 64;
};

// CLI11 does the tokenising and range checks; exit status 2 on bad input.
Config parse_args(int argc, char** argv) {
  Config c;
  CLI::App app("short-lived process load: posix_spawn of /bin/true + waitpid", "execload");
  app.add_option("--threads", c.threads, "spawning threads")->check(CLI::Range(1, 1024));
  app.add_option("--duration", c.duration, "seconds of load")->check(CLI::Range(0.001, 86400.0));
  app.add_option("--argv-bytes", c.argv_bytes,
                 "approximate size of the whole argv, NULs included (at least /bin/true's)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 20));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e) == 0 ? 0 : 2);
  }
  return c;
}

// "/bin/true --opt0=xxxx --opt1=xxxx ...": whole arguments of up to 24 bytes (NUL
// included) until the total reaches `bytes`; the last one is cut to land on it.
std::vector<std::string> make_args(std::size_t bytes) {
  std::vector<std::string> args{kProgram};
  std::size_t total = std::strlen(kProgram) + 1;
  for (int i = 0; total < bytes; ++i) {
    std::string a = fmt::format("--opt{}=", i);
    const std::size_t room = bytes - total;  // bytes left, NUL included
    const std::size_t want = std::min<std::size_t>(24, room);
    if (want > a.size() + 1) {
      a.append(want - a.size() - 1, static_cast<char>('a' + i % 26));
    } else {
      a = std::string(want > 1 ? want - 1 : 0, 'x');  // too short for a name: filler
      if (a.empty()) a = "x";
    }
    total += a.size() + 1;
    args.push_back(std::move(a));
  }
  return args;
}

struct WorkerResult {
  std::uint64_t execs = 0;
  std::uint64_t errors = 0;
  std::map<std::string, std::uint64_t> by_cause;
};

void spawn_loop(const std::vector<std::string>& args, const std::atomic<bool>& stop,
                WorkerResult& out) {
  // posix_spawn takes char* const[]; the strings are not modified.
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  // After a failure (e.g. EAGAIN at the process limit): do not spin.
  auto back_off = [] { std::this_thread::sleep_for(std::chrono::milliseconds(1)); };
  while (!stop.load(std::memory_order_relaxed)) {
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, kProgram, nullptr, nullptr, argv.data(), environ);
    if (rc != 0) {
      ++out.errors;
      const char* name = strerrorname_np(rc);
      ++out.by_cause[fmt::format("spawn:{}", name ? name : std::to_string(rc))];
      back_off();
      continue;
    }
    int status = 0;
    pid_t w;
    do {
      w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
      ++out.errors;
      ++out.by_cause["waitpid"];
      back_off();
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      ++out.execs;
    } else {
      ++out.errors;
      ++out.by_cause[WIFEXITED(status) ? fmt::format("exit:{}", WEXITSTATUS(status))
                                       : fmt::format("signal:{}", WTERMSIG(status))];
    }
  }
}

}  // namespace

int main(int argc, char** argv) try {
  Config cfg = parse_args(argc, argv);
  const std::vector<std::string> args = make_args(cfg.argv_bytes);

  std::vector<WorkerResult> results;
  const double secs = bench::run_workers(
      cfg.threads, cfg.duration, results,
      [&](const std::atomic<bool>& stop, WorkerResult& r) { spawn_loop(args, stop, r); });

  WorkerResult total;
  for (const auto& r : results) {
    total.execs += r.execs;
    total.errors += r.errors;
    for (const auto& [cause, n] : r.by_cause) total.by_cause[cause] += n;
  }
  if (total.errors != 0) {
    std::string detail;
    for (const auto& [cause, n] : total.by_cause) detail += fmt::format(" {}={}", cause, n);
    fmt::print(stderr, "execload: errors:{}\n", detail);
  }
  fmt::print("execs={} errors={} rate={:.0f}\n", total.execs, total.errors,
             secs > 0 ? static_cast<double>(total.execs) / secs : 0.0);
  std::fflush(stdout);
  return total.execs > 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "execload: %s\n", e.what());
  return 1;
}
