// Runtime test harness: runs the real tcpconnect binary and a helper client,
// with real sockets on loopback.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace rt {

// Why runtime tests cannot run here, or empty when they can.
std::string missing_requirements();

// A tcpconnect process with its stdout and stderr captured.
// The build tree's link for one of the tools of the family ("tcplife", ...), beside tcpconnect.
std::string tool_path(const std::string& name);

class Tracer {
 public:
  explicit Tracer(std::vector<std::string> args);  // runs tcpconnect
  Tracer(const std::string& path, std::vector<std::string> args);
  ~Tracer();
  // Waits until stdout has a line for which `ready` is true (the header, or
  // the JSON start record). Returns false on timeout or early exit.
  bool wait_ready(const std::string& stdout_prefix,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20));
  bool wait_stderr(const std::string& needle,
                   std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Waits until stdout contains `needle`.
  bool wait_stdout(const std::string& needle,
                   std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // SIGINT (or `sig`), then collects everything. Returns the exit status
  // (128+signal if killed by one).
  int stop(int sig = 2);
  // Waits for exit without signalling.
  int wait_exit(std::chrono::milliseconds timeout);
  std::string out() const;
  std::string err() const;
  std::vector<std::string> out_lines() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  mutable std::mutex mu_;
  std::string out_, err_;
  std::thread out_reader_, err_reader_;
  void join_readers();
};

// One connection made by conn_helper, as it reported it.
struct Conn {
  int pid = 0;
  int tid = 0;
  int uid = 0;
  int af = 0;
  std::string saddr;
  int sport = 0;
  std::string daddr;
  int dport = 0;
  std::string result;
};

// Appends everything read from `fd` to `dst` (under `mu`) until EOF, then closes it.
void read_all(int fd, std::mutex& mu, std::string& dst);
std::vector<std::string> split_lines(const std::string& s);
// Exit status from waitpid(): the code, or 128 + signal.
int decode_status(int st);
// conn_helper's output lines as Conns; throws (with `err`) when there are none.
std::vector<Conn> parse_conns(const std::string& out, const std::string& err);

// Runs conn_helper with `args` to completion; returns one Conn per line.
std::vector<Conn> run_helper(const std::vector<std::string>& args);

// conn_helper started with --wait-stdin: its PID is known before it
// connects; go() lets it connect and collects its lines.
class PendingHelper {
 public:
  explicit PendingHelper(const std::vector<std::string>& args);
  // Runs `prefix` + conn_helper + `args`, e.g. prefix {"/usr/bin/unshare", "--mount"} (prefix[0]
  // an absolute path). The prefix must exec conn_helper in place, without forking, so that pid()
  // is conn_helper's: the constructor checks that the PID in its "ready" line is the spawned one.
  // Throws (with the prefix's stderr) if conn_helper does not get ready, after killing and
  // reaping the spawned process.
  PendingHelper(const std::vector<std::string>& prefix, const std::vector<std::string>& args);
  ~PendingHelper();
  int pid() const { return pid_; }
  std::vector<Conn> go();

 private:
  int pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool done_ = false;
};

// A listening socket on loopback that accepts and holds connections.
class Listener {
 public:
  // "127.0.0.1" or "::1"; writes `greeting` bytes to each accepted connection, then holds it
  // (the last 512) or, without `hold`, closes it.
  explicit Listener(const std::string& addr, std::size_t greeting = 0, bool hold = true);
  ~Listener();
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A loopback port with nothing listening (connects are refused).
int closed_port(const std::string& addr);

// Lines of `lines` whose PID column (after skipping `skip` leading columns)
// equals `pid`.
std::vector<std::string> lines_for_pid(const std::vector<std::string>& lines, int pid,
                                       int skip = 0);

// IDs of the BPF programs process `pid` holds open (from /proc/PID/fdinfo).
std::set<int> prog_ids_of(pid_t pid);

// Which of `ids` are still loaded in the kernel.
std::set<int> still_loaded(const std::set<int>& ids);

// Direct children of `pid`.
std::vector<pid_t> children_of(pid_t pid);

// A field of /proc/PID/status in KiB (e.g. "VmRSS", "VmHWM", "RssAnon"), or -1 when absent.
long status_kib(pid_t pid, const std::string& field);

}  // namespace rt

namespace rt {

// IDs of the BPF links process `pid` holds open (from /proc/PID/fdinfo `link_id:`).
std::set<int> link_ids_of(pid_t pid);

// IDs of every BPF link in the kernel (`bpftool -j link list`). Sets `ok` to
// false (and returns nothing) when bpftool cannot be run or its output is not
// a JSON array.
std::set<int> all_link_ids(bool* ok = nullptr);

// Link ID -> the live processes holding it open, from every /proc/PID/fdinfo.
std::map<int, std::set<pid_t>> link_holders();

}  // namespace rt
