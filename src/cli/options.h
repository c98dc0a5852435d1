// Command line: argv -> Options. Pure; no I/O, unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/attach.h"

namespace tcpconnect {

// The tool the binary is run as (its program name): tcpconnect itself, or the command line and
// output of one of the tools of the same family (see cli/options.cpp, kPersonalities).
enum class Tool { Tcpconnect, Tcpaccept, Tcplife, Tcpconnlat };

struct Options {
  Tool tool = Tool::Tcpconnect;
  bool time = false;                 // -T: TIME column, HH:MM:SS local time
  bool timestamp = false;            // -t
  std::optional<std::uint32_t> pid;  // -p PID (tgid)
  std::vector<std::uint16_t> ports;  // -P PORTS (destination; tcpaccept: local), empty = all
  // tcplife: -L and -D, the local and remote ports of the sessions printed; empty = all.
  std::vector<std::uint16_t> local_ports;
  std::vector<std::uint16_t> remote_ports;
  bool wide = false;                            // tcplife -w: wide columns, with IP
  bool csv = false;                             // tcplife -s: comma-separated values
  std::optional<std::uint64_t> min_latency_ns;  // tcpconnlat min_ms: only slower handshakes
  bool ipv4 = false;                            // -4
  bool ipv6 = false;                            // -6
  bool lport = false;                           // -L / -s
  bool print_uid = false;                       // -U
  std::optional<std::uint32_t> uid;             // -u UID
  bool count = false;                           // -c
  bool json = false;                            // -j
  std::optional<double> duration_s;             // --duration DURATION, in seconds (0 < s <= 1e9)
  bool verbose = false;                         // -v
  AttachMode attach = AttachMode::Auto;
  std::uint32_t ringbuf_bytes = 2u << 20;  // --ringbuf-size SIZE: power of two, page..1 GiB
  // Connection lifecycle.
  bool outcome = false;   // --outcome: print when the handshake ends, with OUTCOME and LAT(ms)
  bool failed = false;    // --failed: only attempts that did not establish
  bool lifetime = false;  // --lifetime: one line per connection when it ends
  std::optional<std::uint64_t> shorter_than_ns;  // --shorter-than DURATION (implies lifetime)
  bool accept = false;                           // --accept: also passive (accepted) connections
  bool by_process = false;                       // --by-process: -c rows keyed by PID and COMM too
  std::optional<std::uint64_t> interval_ns;      // --interval DURATION: -c tables every interval
  bool cumulative = false;       // --cumulative: counts since start, not per interval
  bool top = false;              // --top: a live full-screen table (the -c rows by process)
  bool hist = false;             // --hist: log2 histograms of handshake latency and lifetime
  bool hist_by_process = false;  // --hist-by process (default: port)
  std::uint32_t rows = 0;        // --rows N: at most N rows per -c table; 0 = all
  // Containers.
  std::optional<std::uint32_t> netns;         // --netns INODE
  std::optional<std::string> cgroup;          // --cgroup PATH (cgroup v2 directory)
  std::optional<std::string> cgroupmap;       // --cgroupmap MAPPATH (bcc)
  std::optional<std::string> mntnsmap;        // --mntnsmap MAPPATH (bcc)
  std::optional<std::string> runtime_socket;  // --runtime-socket [cri:|engine:]PATH
  std::vector<std::string> container_names;   // --container-name NAME[,NAME...]
  std::vector<std::string> pods;              // --pod NAME[,NAME...]
  std::vector<std::string> pod_namespaces;    // --pod-namespace NS[,NS...]
  bool container = false;                     // --container: NETNS and CONTAINER columns
  bool metrics_container = false;             // --metrics-container: a container label
  // Process context.
  bool parent = false;                    // --parent: PPID and PCOMM columns
  bool cmdline = false;                   // --cmdline: CMDLINE column
  std::uint32_t exec_cache_size = 16384;  // --exec-cache-size N
  // Prometheus metrics.
  std::optional<std::string> metrics_addr;  // --metrics [ADDR:]PORT: IP literal
  std::uint16_t metrics_port = 0;
  bool quiet = false;              // --quiet: no per-event output
  std::uint32_t metrics_top = 20;  // --metrics-top N
  // DNS.
  bool dns = false;                                        // -d: QUERY column
  std::uint32_t dns_cache_size = 10000;                    // --dns-cache-size N
  std::uint64_t dns_max_age_ns = 3600ull * 1'000'000'000;  // --dns-max-age DURATION
};

struct ParseResult {
  enum class Kind { Run, Help, Version, Error };
  Kind kind = Kind::Run;
  Options options;
  std::string text;   // help text (Help), "tcpconnect VERSION" (Version), one-line error (Error)
  int exit_code = 0;  // 0 for Run/Help/Version, 2 for Error
};

// The tool named by a program name (argv[0]): its last path component, "tcpaccept", "tcplife"
// or "tcpconnlat"; anything else is tcpconnect.
Tool tool_of(const char* argv0);
const char* tool_name(Tool tool);

// Parses the command line of the tool argv[0] names. Errors start with that tool's name.
ParseResult parse_options(int argc, const char* const* argv);

}  // namespace tcpconnect
