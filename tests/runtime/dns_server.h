// Fixtures of the DNS runtime tests: a dnsmasq server with fixed records inside a test-owned
// network namespace, and dns_helper (DNS_HELPER_BIN) runs against it.
//
// Everything stays inside the namespace: dnsmasq listens on its 127.0.0.1:53, the helpers query
// it there, and the addresses they connect to are added to its `lo`. Nothing touches the host
// namespace or the host's /etc/resolv.conf (dns_helper forces the server in its own resolver
// state).
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "netns.h"

namespace rt {

inline constexpr const char* kDnsmasqBin = "/usr/sbin/dnsmasq";

// A child process with stdin, stdout and stderr on pipes. The destructor SIGKILLs and reaps it
// if it is still running.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    // Writing to a child that already exited must fail with EPIPE, not kill the test.
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
      throw std::runtime_error("pipe2 failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Only async-signal-safe calls until execv: the parent has threads.
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    in_fd_ = in[1];
    out_reader_ = std::thread(read_all, out[0], std::ref(mu_), std::ref(out_));
    err_reader_ = std::thread(read_all, err[0], std::ref(mu_), std::ref(err_));
  }
  ~Child() {
    if (status_ < 0) stop(SIGKILL, std::chrono::seconds(5));
    close_stdin();
    join();
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  std::string out() const {
    std::lock_guard<std::mutex> g(mu_);
    return out_;
  }
  std::string err() const {
    std::lock_guard<std::mutex> g(mu_);
    return err_;
  }
  // Waits until stdout (or stderr) contains `needle`. False on timeout, or once the child has
  // exited without printing it.
  bool wait_out(const std::string& needle, std::chrono::milliseconds timeout) {
    return wait_for([&] { return out().find(needle) != std::string::npos; }, timeout);
  }
  bool wait_err(const std::string& needle, std::chrono::milliseconds timeout) {
    return wait_for([&] { return err().find(needle) != std::string::npos; }, timeout);
  }
  // Writes one line to its stdin; false if it is gone.
  bool send_line() const { return in_fd_ >= 0 && write(in_fd_, "\n", 1) == 1; }
  void close_stdin() {
    if (in_fd_ >= 0) close(in_fd_);
    in_fd_ = -1;
  }
  // Waits for it to exit and reaps it: its status (code, or 128+signal), -1 on timeout.
  int wait_exit(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (status_ < 0) {
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = decode_status(st);
        break;
      }
      if (std::chrono::steady_clock::now() >= end) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return status_;
  }
  // Sends `sig`, waits up to `grace`, then SIGKILLs. Returns its status.
  int stop(int sig, std::chrono::milliseconds grace) {
    if (status_ >= 0) return status_;
    kill(pid_, sig);
    if (wait_exit(grace) < 0) {
      kill(pid_, SIGKILL);
      wait_exit(std::chrono::seconds(10));
    }
    return status_;
  }
  // Waits until its output pipes are closed (by it and by anything it forked).
  void join() {
    if (out_reader_.joinable()) out_reader_.join();
    if (err_reader_.joinable()) err_reader_.join();
  }

 private:
  bool exited() const {
    siginfo_t info{};
    return status_ >= 0 ||
           (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            info.si_pid == pid_);
  }
  bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      if (exited()) {
        // Let the readers drain what it printed last.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return pred();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return pred();
  }

  pid_t pid_ = -1;
  int in_fd_ = -1;
  int status_ = -1;
  mutable std::mutex mu_;
  std::string out_, err_;
  std::thread out_reader_, err_reader_;
};

// What one dns_helper run reported (its "pid=.. name=.. addr=.. naddrs=.. result=.." line).
struct DnsResult {
  int pid = 0;
  std::string name;
  std::string addr;
  int naddrs = 0;
  std::string result;
};

// Parses dns_helper's result line out of `out`; throws (with `context`) when there is none.
inline DnsResult parse_dns_result(const std::string& out, const std::string& context) {
  for (auto& line : split_lines(out)) {
    if (line.find(" result=") == std::string::npos) continue;
    std::map<std::string, std::string> kv;
    std::istringstream in(line);
    std::string f;
    while (in >> f)
      if (auto eq = f.find('='); eq != std::string::npos) kv[f.substr(0, eq)] = f.substr(eq + 1);
    DnsResult r;
    r.pid = std::stoi(kv["pid"]);
    r.name = kv["name"];
    r.addr = kv["addr"];
    r.naddrs = std::stoi(kv["naddrs"]);
    r.result = kv["result"];
    return r;
  }
  throw std::runtime_error("dns_helper printed no result line; stdout: " + out + " " + context);
}

// dnsmasq serving fixed records on 127.0.0.1:53 of its own test-owned namespace `ns`.
class DnsServer {
 public:
  static constexpr const char* kAddr = "127.0.0.1";
  // Answered by every server; the constructor's readiness probe asks for it. Its address is
  // loopback but not 127.0.0.1, so it never names a connect to 127.0.0.1.
  static constexpr const char* kProbeName = "probe.dnsserver.test";
  static constexpr const char* kProbeAddr = "127.0.0.53";

  // dnsmasq's command line for `records`: dnsmasq options such as
  // "--host-record=web.test,10.77.0.1" or "--cname=alias.test,web.test".
  static std::vector<std::string> command(const std::vector<std::string>& records) {
    std::vector<std::string> argv = {
        kDnsmasqBin,
        "--keep-in-foreground",   // we own its lifetime and reap it
        "--conf-file=/dev/null",  // ignore /etc/dnsmasq.conf and /etc/dnsmasq.d
        "--no-resolv",            // no upstream: only the records below exist
        "--no-hosts",             // ignore /etc/hosts
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        "--port=53",        // the tracer only captures answers from port 53
        "--pid-file",       // no argument: no pid file
        "--user=root",      // no switch to the "dnsmasq" user, which may not exist
        "--local-ttl=300",  // local records are served with TTL 0 otherwise
        "--log-queries",    // logged to stderr: shows up in failure messages
        "--log-facility=-",
        std::string("--host-record=") + kProbeName + "," + kProbeAddr,
    };
    argv.insert(argv.end(), records.begin(), records.end());
    return argv;
  }

  DnsServer(const std::string& prefix, const std::vector<std::string>& records) : ns(prefix) {
    dnsmasq_ = std::make_unique<Child>(ns.exec_args(command(records)));
    try {
      // It logs "started" once its sockets are bound; the probe proves it answers.
      if (!dnsmasq_->wait_err("started, version", std::chrono::seconds(10)))
        throw std::runtime_error("dnsmasq did not start: " + dnsmasq_->err());
      std::string last_err;
      for (int i = 0; i < 50; i++) {
        CmdResult r = run_cmd(ns.exec_args({DNS_HELPER_BIN, "--server", kAddr, kProbeName, "9"}),
                              std::chrono::seconds(10));
        if (r.status == 0) return;
        last_err = r.err;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      throw std::runtime_error("dnsmasq in " + ns.name() + " does not answer: " + last_err +
                               "; dnsmasq: " + dnsmasq_->err());
    } catch (...) {
      shutdown();
      throw;
    }
  }
  ~DnsServer() { shutdown(); }
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Adds `cidr` to the namespace's lo. On lo an IPv4 prefix makes the whole prefix local, so
  // "10.78.0.0/24" covers 10.78.0.1-254. Connects to these addresses are refused at once.
  void add_local(const std::string& cidr) const {
    if (cidr.find(':') != std::string::npos) {
      // New namespaces normally have IPv6 on; make sure, since AAAA tests need it.
      ns.sysctl("net.ipv6.conf.lo.disable_ipv6", "0");
      ns.ip({"-6", "addr", "add", cidr, "dev", "lo", "nodad"});
    } else {
      ns.ip({"addr", "add", cidr, "dev", "lo"});
    }
  }

  // dns_helper's argv inside the namespace, querying this server.
  std::vector<std::string> helper_argv(const std::vector<std::string>& args) const {
    std::vector<std::string> cmd = {DNS_HELPER_BIN, "--server", kAddr};
    cmd.insert(cmd.end(), args.begin(), args.end());
    return ns.exec_args(cmd);
  }

  // Runs dns_helper with `args` (options, NAME, CONNECT_PORT) to completion inside the
  // namespace. Throws unless it resolved.
  DnsResult resolve(const std::vector<std::string>& args) const {
    CmdResult r = run_cmd(helper_argv(args), std::chrono::seconds(30));
    std::string context =
        "(exit " + std::to_string(r.status) + ") stderr: " + r.err + "; dnsmasq: " + log();
    if (r.status != 0) throw std::runtime_error("dns_helper failed " + context);
    return parse_dns_result(r.out, context);
  }

  // What dnsmasq logged so far (queries and answers).
  std::string log() const { return dnsmasq_ ? dnsmasq_->err() : std::string(); }

  NetNs ns;

 private:
  void shutdown() {
    if (!dnsmasq_) return;
    dnsmasq_->stop(SIGTERM, std::chrono::seconds(5));
    // dnsmasq forks one child per TCP connection; they share its stderr and end with their
    // connection. Stop any still inside before waiting for the pipes to close.
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!pids_in_netns(ns.inode()).empty() && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (pid_t p : pids_in_netns(ns.inode())) kill(p, SIGKILL);
    dnsmasq_->join();
    dnsmasq_.reset();
  }

  std::unique_ptr<Child> dnsmasq_;
};

// dns_helper started with --pause-stdin: it has resolved (its answer is received) but not yet
// connected. go() lets it connect and returns its result.
class PendingDns {
 public:
  PendingDns(const DnsServer& server, std::vector<std::string> args) : server_(server) {
    args.insert(args.begin(), "--pause-stdin");
    child_ = std::make_unique<Child>(server.helper_argv(args));
    if (!child_->wait_out(" resolved addr=", std::chrono::seconds(20)))
      throw std::runtime_error("dns_helper did not resolve; stdout: " + child_->out() +
                               " stderr: " + child_->err() + "; dnsmasq: " + server.log());
    pid_ = child_->pid();
    const auto out = child_->out();
    const auto start = out.find(" resolved addr=") + 15;
    addr_ = out.substr(start, out.find('\n', start) - start);
  }
  int pid() const { return pid_; }
  const std::string& addr() const { return addr_; }
  DnsResult go() {
    child_->send_line();
    child_->close_stdin();
    int st = child_->wait_exit(std::chrono::seconds(20));
    child_->join();
    return parse_dns_result(child_->out(), "(exit " + std::to_string(st) + ") stderr: " +
                                               child_->err() + "; dnsmasq: " + server_.log());
  }

 private:
  const DnsServer& server_;
  std::unique_ptr<Child> child_;
  int pid_ = 0;
  std::string addr_;
};

}  // namespace rt
