// dnsload: sends DNS queries through glibc's resolver as fast as one server answers them,
// for benchmarking the tracer's -d (DNS) hooks. See bench/dns.sh.
//
// Usage: dnsload --server ADDR [--port 53] --name NAME [--threads N] [--duration SECONDS]
//
// Each thread has its own res_ninit'd state with the name server forced to ADDR:PORT and
// loops res_nquery(NAME, IN, A) until the duration ends. A query counts as successful when
// res_nquery returns an answer with at least one answer record.
// Prints one line at the end: queries=N errors=E rate=R (R = successful queries/s).
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <fmt/core.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "workers.h"

namespace {

struct Config {
  in_addr server{};
  std::uint16_t port = 53;
  std::string name;
  int threads = 2;
  double duration = 5.0;
};

// CLI11 does the tokenising and range checks; exit status 2 on bad input.
Config parse_args(int argc, char** argv) {
  Config c;
  std::string server;
  CLI::App app("DNS query load through glibc's resolver", "dnsload");
  app.add_option("--server", server, "name server, an IPv4 literal (res_state holds IPv4 only)")
      ->required();
  app.add_option("--port", c.port, "name server port")->check(CLI::Range(1, 65535));
  app.add_option("--name", c.name, "name to query (type A)")
      ->required()
      ->check([](const std::string& v) {
        return v.empty() ? std::string("must not be empty") : std::string();
      });
  app.add_option("--threads", c.threads, "client threads")->check(CLI::Range(1, 1024));
  app.add_option("--duration", c.duration, "seconds of load")->check(CLI::Range(0.001, 86400.0));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e) == 0 ? 0 : 2);
  }
  if (inet_pton(AF_INET, server.c_str(), &c.server) != 1) {
    fmt::print(stderr, "dnsload: --server must be an IPv4 literal, got '{}'\n", server);
    std::exit(2);
  }
  return c;
}

struct WorkerResult {
  std::uint64_t queries = 0;
  std::uint64_t errors = 0;
  std::map<int, std::uint64_t> by_herrno;  // res_h_errno of failed queries (0: empty answer)
  bool init_failed = false;
};

void query_loop(const Config& c, const std::atomic<bool>& stop, WorkerResult& out) {
  struct __res_state st {};
  if (res_ninit(&st) != 0) {
    out.init_failed = true;
    return;
  }
  // Only the one server. RES_STAYOPEN stays off, as glibc's default: every query opens,
  // connect()s and closes its own UDP socket, which is what ordinary clients do and what
  // the tracer's -d hooks key on.
  st.nscount = 1;
  st.nsaddr_list[0].sin_family = AF_INET;
  st.nsaddr_list[0].sin_addr = c.server;
  st.nsaddr_list[0].sin_port = htons(c.port);

  unsigned char answer[NS_PACKETSZ];
  while (!stop.load(std::memory_order_relaxed)) {
    int n = res_nquery(&st, c.name.c_str(), ns_c_in, ns_t_a, answer, sizeof(answer));
    if (n >= static_cast<int>(sizeof(HEADER)) &&
        ntohs(reinterpret_cast<const HEADER*>(answer)->ancount) > 0) {
      ++out.queries;
    } else {
      ++out.errors;
      ++out.by_herrno[n < 0 ? st.res_h_errno : 0];
    }
  }
  res_nclose(&st);
}

const char* herrno_name(int e) {
  switch (e) {
    case 0:
      return "NO_ANSWER_RECORD";
    case HOST_NOT_FOUND:
      return "HOST_NOT_FOUND";
    case TRY_AGAIN:
      return "TRY_AGAIN";
    case NO_RECOVERY:
      return "NO_RECOVERY";
    case NO_DATA:
      return "NO_DATA";
    case NETDB_INTERNAL:
      return "NETDB_INTERNAL";
    default:
      return nullptr;
  }
}

}  // namespace

int main(int argc, char** argv) try {
  Config cfg = parse_args(argc, argv);

  std::vector<WorkerResult> results;
  const double secs = bench::run_workers(
      cfg.threads, cfg.duration, results,
      [&](const std::atomic<bool>& stop, WorkerResult& r) { query_loop(cfg, stop, r); });

  WorkerResult total;
  for (const auto& r : results) {
    if (r.init_failed) {
      fmt::print(stderr, "dnsload: res_ninit failed\n");
      return 1;
    }
    total.queries += r.queries;
    total.errors += r.errors;
    for (auto [e, n] : r.by_herrno) total.by_herrno[e] += n;
  }
  if (total.errors != 0) {
    std::string detail;
    for (auto [e, n] : total.by_herrno) {
      const char* name = herrno_name(e);
      detail += fmt::format(" {}={}", name ? name : std::to_string(e), n);
    }
    fmt::print(stderr, "dnsload: errors:{}\n", detail);
  }
  fmt::print("queries={} errors={} rate={:.0f}\n", total.queries, total.errors,
             secs > 0 ? static_cast<double>(total.queries) / secs : 0.0);
  std::fflush(stdout);
  return total.queries > 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "dnsload: %s\n", e.what());
  return 1;
}
