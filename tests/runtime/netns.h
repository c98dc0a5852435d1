// Test-owned network namespaces for runtime tests of connect failures.
//
// Everything here is RAII: a namespace, veth pair or process created by one of these objects is
// removed by its destructor, including when a test fails or throws. Creation fails loudly: a
// failed step throws std::runtime_error carrying the command line and its stderr, after undoing
// the steps that already succeeded.
//
// Safety: only namespaces created here are configured. They get loopback, optionally a veth pair
// between two of them, and no default route, so nothing sent from inside can reach a real network.
// Nothing here changes the host (initial) network namespace.
//
// Names are "<prefix>-<pid>-<n>", unique per process and across concurrent test processes.
// A process killed by SIGKILL (e.g. a ctest timeout) cannot clean up; its namespaces stay in
// `ip netns list` under its pid and can be removed with `ip netns del NAME`.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace rt {

// Absolute path of iproute2's `ip`, used for every namespace operation.
inline constexpr const char* kIpBin = "/usr/bin/ip";

// What a finished command did.
struct CmdResult {
  int status = -1;  // exit status, or 128+signal
  bool timed_out = false;
  std::string out, err;
};

// Runs argv (argv[0] an absolute path; no shell) with stdin from /dev/null and captures
// stdout/stderr. On timeout the process is killed and reaped, and timed_out is set.
CmdResult run_cmd(const std::vector<std::string>& argv,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30));

// run_cmd, but throws std::runtime_error (with the command line and its stderr) unless it
// exited 0. Returns stdout.
std::string run_checked(const std::vector<std::string>& argv,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A network namespace owned by the test: `ip netns add <prefix>-<pid>-<n>` with `lo` up, and
// nothing else (no other links, no routes outside the loopback ones). The destructor SIGKILLs
// any process still inside (stop them first: declare their owners after the NetNs so they are
// destroyed before it) and deletes the namespace.
class NetNs {
 public:
  explicit NetNs(const std::string& prefix);
  ~NetNs();
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;

  const std::string& name() const { return name_; }
  // {"/usr/bin/ip", "netns", "exec", name, cmd...}: runs cmd inside the namespace. `ip netns
  // exec` execs cmd in place (no fork), so the spawned PID is cmd's PID.
  std::vector<std::string> exec_args(const std::vector<std::string>& cmd) const;
  // Runs cmd (argv[0] a path or a name looked up in PATH) inside the namespace; throws unless
  // it exits 0. Returns stdout.
  std::string exec(const std::vector<std::string>& cmd) const;
  // `ip netns exec NAME sysctl -qw key=value`; throws on failure.
  void sysctl(const std::string& key, const std::string& value) const;
  // Reads a sysctl inside the namespace (`sysctl -n key`), without the trailing newline.
  std::string sysctl_get(const std::string& key) const;
  // Runs `ip -n NAME <args...>`; throws on failure. Returns stdout.
  std::string ip(const std::vector<std::string>& args) const;
  // The namespace's inode (st_ino of /run/netns/NAME), as in /proc/PID/ns/net -> net:[INODE].
  ino_t inode() const { return inode_; }
  // The namespace's /proc/net/snmp as "Proto.Field" -> value, e.g. "Tcp.OutSegs",
  // "Tcp.RetransSegs", "Tcp.ActiveOpens".
  std::map<std::string, long long> snmp() const;

 private:
  std::string name_;
  ino_t inode_ = 0;
};

// Runs conn_helper (CONN_HELPER_BIN) with `args` inside `ns` via `ip netns exec` and returns one
// Conn per line it printed, like rt::run_helper. Throws if it printed nothing (with its stderr)
// or did not finish within `timeout` (it is killed first).
std::vector<Conn> run_helper_in(const NetNs& ns, const std::vector<std::string>& args,
                                std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Two test-owned namespaces `a` and `b` joined by a veth pair: a_if (a_addr/24) in a, b_if
// (b_addr/24) in b, both up, subnet 10.200.<subnet>.0/24. The only routes are the connected
// /24 and loopback: no default route, so nothing can leave the pair. The veth is created
// directly inside the namespaces (never in the host namespace) and is deleted before them.
class VethPair {
 public:
  explicit VethPair(const std::string& prefix);
  ~VethPair();
  VethPair(const VethPair&) = delete;
  VethPair& operator=(const VethPair&) = delete;

  NetNs a, b;
  int subnet = 0;  // the <k> of 10.200.<k>.0/24
  std::string a_if, b_if;
  std::string a_addr, b_addr;  // 10.200.<k>.1 and 10.200.<k>.2
  // 10.200.<k>.<host>
  std::string addr(int host) const;
};

// Scenario "no route": a namespace with only `lo` up and no routes besides loopback's.
// Guarantees: a connect from inside to kAddr:kPort (192.0.2.1, TEST-NET-1, RFC 5737) fails
// at once with ENETUNREACH in the route lookup, before any segment is built: the namespace's
// Tcp.OutSegs and Tcp.ActiveOpens stay 0. The constructor checks the IPv4 main table is empty.
struct NoRoute {
  NoRoute();
  NetNs ns;
  static constexpr const char* kAddr = "192.0.2.1";
  static constexpr int kPort = 80;
};

// Scenario "black hole" (SYN timeout): a VethPair whose namespace `a` has a permanent
// neighbour entry for dead_addr (10.200.<k>.3) with a MAC nobody owns (02:00:00:00:00:99),
// net.ipv4.tcp_syn_retries=1 and (where the kernel has it) tcp_syn_linear_timeouts=0.
// Namespace `b` has no listener and no such address.
// Guarantees: a blocking connect from `a` to dead_addr:kPort sends its SYN and exactly
// kSynRetransmits retransmission out of a_if; b_if receives them with a foreign destination
// MAC and drops them (rx "otherhost" drops), so no reply, RST or ICMP ever comes back. The
// connect fails with ETIMEDOUT after kExpectedTimeout (1 s initial RTO + 2 s backoff; measured
// 3.03-3.07 s on 6.18). No frame can leave the two namespaces.
struct BlackHole {
  BlackHole();
  VethPair pair;
  std::string dead_addr;
  static constexpr const char* kDeadMac = "02:00:00:00:00:99";
  static constexpr int kPort = 80;
  static constexpr int kSynRetransmits = 1;
  static constexpr std::chrono::milliseconds kExpectedTimeout{3000};
};

// Scenario "refused inside a namespace": a fresh namespace with `lo` up. It has no sockets at
// all, so every port is closed unless the test starts a listener in it.
// Guarantees: a connect from inside to 127.0.0.1:kPort (or ::1:kPort when IPv6 is enabled)
// gets an RST from the namespace's own loopback and fails with ECONNREFUSED.
struct Refused {
  Refused();
  NetNs ns;
  static constexpr const char* kAddr = "127.0.0.1";
  static constexpr const char* kAddr6 = "::1";
  static constexpr int kPort = 9;  // any port: nothing listens in a fresh namespace
};

// Scenario "listener inside a namespace": runs listen_helper (LISTEN_HELPER_BIN) in `ns`,
// listening on addr:port (port 0: an ephemeral port). The constructor returns once it is
// listening, or throws with its stderr. It accepts and holds connections; the destructor closes
// its stdin (it exits), killing it if it has not exited within 5 s, so no process is left in
// the namespace. Must be destroyed before `ns` (declare it after the NetNs).
class NsListener {
 public:
  NsListener(const NetNs& ns, const std::string& addr, int port = 0);
  ~NsListener();
  NsListener(const NsListener&) = delete;
  NsListener& operator=(const NsListener&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Connections accepted so far (it prints "accepted ADDR PORT" per connection).
  int accepted() const;

 private:
  pid_t pid_ = -1;
  int in_fd_ = -1;
  int port_ = 0;
  mutable std::mutex mu_;
  std::string out_, err_;
  std::thread out_reader_, err_reader_;
  void shutdown();
};

// Whether `ip netns list` shows `name`.
bool netns_listed(const std::string& name);
// Whether the host (this process's) network namespace has a link called `ifname`.
bool host_link_exists(const std::string& ifname);
// PIDs whose /proc/PID/ns/net is the namespace with this inode.
std::vector<pid_t> pids_in_netns(ino_t inode);

}  // namespace rt
