#include "netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <stdexcept>

namespace rt {

using namespace std::chrono;

namespace {

#ifdef LISTEN_HELPER_BIN
constexpr const char* kListenHelperBin = LISTEN_HELPER_BIN;
#else
constexpr const char* kListenHelperBin = nullptr;
#endif

// Per-process sequence for namespace and veth names.
std::atomic<unsigned> g_seq{0};

std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// fork+execv with stdout/stderr on pipes and stdin from a pipe (in_fd != nullptr) or
// /dev/null. All descriptors we keep are close-on-exec, so other children do not inherit them.
pid_t spawn(const std::vector<std::string>& argv, int* out_fd, int* err_fd, int* in_fd) {
  if (argv.empty()) throw std::invalid_argument("spawn: empty argv");
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : {out[0], out[1], err[0], err[1], in[0], in[1]})
      if (fd >= 0) close(fd);
  };
  if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
    close_all();
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  if (in_fd ? pipe2(in, O_CLOEXEC) != 0 : (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
    close_all();
    throw std::runtime_error(std::string("stdin for child: ") + std::strerror(errno));
  }
  pid_t pid = fork();
  if (pid < 0) {
    close_all();
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Only async-signal-safe calls until execv.
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execv(cargv[0], cargv.data());
    static const char msg[] = "exec failed\n";
    ssize_t ignored = write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  close(in[0]);
  *out_fd = out[0];
  *err_fd = err[0];
  if (in_fd) *in_fd = in[1];
  return pid;
}

// Reads stdout/stderr of `pid` to EOF and reaps it, killing it at the deadline.
CmdResult collect(pid_t pid, int out_fd, int err_fd, milliseconds timeout) {
  CmdResult r;
  auto deadline = steady_clock::now() + timeout;
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* dst[2] = {&r.out, &r.err};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) {
      r.timed_out = true;
      break;
    }
    int n = poll(fds, 2, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t got = read(fds[i].fd, buf, sizeof(buf));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      } else {
        dst[i]->append(buf, static_cast<size_t>(got));
      }
    }
  }
  for (const auto& p : fds)
    if (p.fd >= 0) close(p.fd);
  // Output closed (or deadline passed): reap it, killing it at the deadline.
  if (r.timed_out) kill(pid, SIGKILL);
  int st = 0;
  for (;;) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (w < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (steady_clock::now() >= deadline) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  r.status = decode_status(st);
  return r;
}

// Absolute path of a system tool (the test's PATH may lack the sbin directories).
std::string find_bin(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}) {
    std::string p = dir + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  throw std::runtime_error(name + " not found in /usr/sbin, /usr/bin, /sbin or /bin");
}

// Best-effort command for destructors: never throws, reports failures on stderr.
void run_quietly(const std::vector<std::string>& argv) {
  try {
    CmdResult r = run_cmd(argv, seconds(10));
    if (r.status != 0)
      std::fprintf(stderr, "netns cleanup: '%s' failed (exit %d): %s\n", join(argv).c_str(),
                   r.status, trim(r.err).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "netns cleanup: '%s': %s\n", join(argv).c_str(), e.what());
  }
}

}  // namespace

CmdResult run_cmd(const std::vector<std::string>& argv, milliseconds timeout) {
  int out_fd, err_fd;
  pid_t pid = spawn(argv, &out_fd, &err_fd, nullptr);
  return collect(pid, out_fd, err_fd, timeout);
}

std::string run_checked(const std::vector<std::string>& argv, milliseconds timeout) {
  CmdResult r = run_cmd(argv, timeout);
  if (r.timed_out)
    throw std::runtime_error("command timed out after " + std::to_string(timeout.count()) +
                             " ms: " + join(argv) + ": " + trim(r.err));
  if (r.status != 0)
    throw std::runtime_error("command failed (exit " + std::to_string(r.status) +
                             "): " + join(argv) + ": " + trim(r.err));
  return r.out;
}

// ---- NetNs ----

NetNs::NetNs(const std::string& prefix)
    : name_(prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(g_seq++)) {
  run_checked({kIpBin, "netns", "add", name_});
  try {
    ip({"link", "set", "lo", "up"});
    struct stat st;
    std::string path = "/run/netns/" + name_;
    if (stat(path.c_str(), &st) != 0)
      throw std::runtime_error("stat " + path + ": " + std::strerror(errno));
    inode_ = st.st_ino;
  } catch (...) {
    run_quietly({kIpBin, "netns", "del", name_});
    throw;
  }
}

NetNs::~NetNs() {
  // `ip netns del` only unmounts the name: a process still inside would keep the namespace
  // (and any veth in it) alive. Everything inside a test-owned namespace was started by the
  // test, so stop what the test left behind.
  for (pid_t pid : pids_in_netns(inode_)) {
    std::fprintf(stderr, "netns cleanup: killing pid %d left in %s\n", static_cast<int>(pid),
                 name_.c_str());
    kill(pid, SIGKILL);
  }
  run_quietly({kIpBin, "netns", "del", name_});
}

std::vector<std::string> NetNs::exec_args(const std::vector<std::string>& cmd) const {
  std::vector<std::string> argv = {kIpBin, "netns", "exec", name_};
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return argv;
}

std::string NetNs::exec(const std::vector<std::string>& cmd) const {
  return run_checked(exec_args(cmd));
}

void NetNs::sysctl(const std::string& key, const std::string& value) const {
  exec({find_bin("sysctl"), "-qw", key + "=" + value});
}

std::string NetNs::sysctl_get(const std::string& key) const {
  return trim(exec({find_bin("sysctl"), "-n", key}));
}

std::string NetNs::ip(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {kIpBin, "-n", name_};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_checked(argv);
}

std::map<std::string, long long> NetNs::snmp() const {
  // Lines come in pairs: "Tcp: Name1 Name2 ..." then "Tcp: 1 2 ...".
  std::map<std::string, long long> res;
  auto lines = split_lines(exec({find_bin("cat"), "/proc/net/snmp"}));
  for (size_t i = 0; i + 1 < lines.size(); i += 2) {
    std::istringstream names(lines[i]), values(lines[i + 1]);
    std::string proto, proto2, n, v;
    names >> proto;
    values >> proto2;
    if (proto != proto2 || proto.empty()) throw std::runtime_error("bad /proc/net/snmp");
    proto.pop_back();  // ':'
    while (names >> n && values >> v) res[proto + "." + n] = std::stoll(v);
  }
  return res;
}

std::vector<Conn> run_helper_in(const NetNs& ns, const std::vector<std::string>& args,
                                milliseconds timeout) {
  std::vector<std::string> cmd = {CONN_HELPER_BIN};
  cmd.insert(cmd.end(), args.begin(), args.end());
  CmdResult r = run_cmd(ns.exec_args(cmd), timeout);
  if (r.timed_out)
    throw std::runtime_error("conn_helper in " + ns.name() + " timed out after " +
                             std::to_string(timeout.count()) + " ms; stdout: " + r.out +
                             " stderr: " + r.err);
  return parse_conns(r.out, "(exit " + std::to_string(r.status) + ") " + r.err);
}

// ---- VethPair ----

VethPair::VethPair(const std::string& prefix) : a(prefix + "a"), b(prefix + "b") {
  unsigned n = g_seq++;
  // Addresses only exist inside the two namespaces, so they cannot clash with the host or
  // other tests; varying <k> by pid and sequence just keeps captures and logs distinct.
  subnet = 1 + static_cast<int>((static_cast<unsigned>(getpid()) * 7u + n) % 254u);
  // Interface names: at most 15 characters. They only exist inside the namespaces.
  std::string base = "v" + std::to_string(getpid()) + "-" + std::to_string(n % 10000);
  a_if = base + "a";
  b_if = base + "b";
  a_addr = addr(1);
  b_addr = addr(2);
  // Created inside `a` with the peer directly in `b`: it never appears in the host namespace.
  a.ip({"link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name()});
  try {
    a.ip({"addr", "add", a_addr + "/24", "dev", a_if});
    b.ip({"addr", "add", b_addr + "/24", "dev", b_if});
    a.ip({"link", "set", a_if, "up"});
    b.ip({"link", "set", b_if, "up"});
  } catch (...) {
    run_quietly({kIpBin, "-n", a.name(), "link", "del", a_if});
    throw;
  }
}

VethPair::~VethPair() {
  // Deleting one end deletes both, synchronously; deleting the namespaces alone would also
  // remove it, but asynchronously.
  run_quietly({kIpBin, "-n", a.name(), "link", "del", a_if});
}

std::string VethPair::addr(int host) const {
  return "10.200." + std::to_string(subnet) + "." + std::to_string(host);
}

// ---- Scenarios ----

NoRoute::NoRoute() : ns("tcnoroute") {
  std::string routes = trim(ns.ip({"-4", "route", "show", "table", "main"}));
  if (!routes.empty())
    throw std::runtime_error("NoRoute: " + ns.name() + " has IPv4 routes: " + routes);
}

BlackHole::BlackHole() : pair("tcbh") {
  dead_addr = pair.addr(3);
  pair.a.ip({"neigh", "add", dead_addr, "lladdr", kDeadMac, "dev", pair.a_if, "nud", "permanent"});
  pair.a.sysctl("net.ipv4.tcp_syn_retries", "1");
  // Kernels with tcp_syn_linear_timeouts (6.x, default 4) retransmit the SYN every 1 s
  // instead of backing off: still 3 s to ETIMEDOUT, but two retransmissions. 0 gives the
  // classic single retransmission (1 s + 2 s) on every kernel.
  if (access("/proc/sys/net/ipv4/tcp_syn_linear_timeouts", F_OK) == 0)
    pair.a.sysctl("net.ipv4.tcp_syn_linear_timeouts", "0");
}

Refused::Refused() : ns("tcrefused") {}

// ---- NsListener ----

NsListener::NsListener(const NetNs& ns, const std::string& addr, int port) {
  if (kListenHelperBin == nullptr)
    throw std::runtime_error("listen_helper not built: LISTEN_HELPER_BIN is not defined");
  int out_fd, err_fd;
  pid_ = spawn(ns.exec_args({kListenHelperBin, addr, std::to_string(port)}), &out_fd, &err_fd,
               &in_fd_);
  out_reader_ = std::thread(read_all, out_fd, std::ref(mu_), std::ref(out_));
  err_reader_ = std::thread(read_all, err_fd, std::ref(mu_), std::ref(err_));
  auto deadline = steady_clock::now() + seconds(10);
  for (;;) {
    {
      std::lock_guard<std::mutex> g(mu_);
      auto pos = out_.find("ready port=");
      if (pos != std::string::npos && out_.find('\n', pos) != std::string::npos) {
        port_ = std::stoi(out_.substr(pos + 11));
        return;
      }
    }
    // Exited already? (waitid: waitpid does not take WNOWAIT.) Leaves it for shutdown() to reap.
    siginfo_t info{};
    bool exited = waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                  info.si_pid == pid_;
    if (exited || steady_clock::now() >= deadline) {
      shutdown();
      std::lock_guard<std::mutex> g(mu_);
      throw std::runtime_error(std::string("listen_helper in ") + ns.name() + " on " + addr +
                               " port " + std::to_string(port) +
                               (exited ? " exited" : " not ready in 10 s") + "; stdout: " + out_ +
                               " stderr: " + err_);
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

NsListener::~NsListener() { shutdown(); }

void NsListener::shutdown() {
  if (pid_ > 0) {
    if (in_fd_ >= 0) close(in_fd_);  // EOF on its stdin: it exits
    in_fd_ = -1;
    auto deadline = steady_clock::now() + seconds(5);
    int st;
    while (waitpid(pid_, &st, WNOHANG) == 0) {
      if (steady_clock::now() >= deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &st, 0);
        break;
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    pid_ = -1;
  }
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
}

int NsListener::accepted() const {
  std::lock_guard<std::mutex> g(mu_);
  int n = 0;
  for (const auto& l : split_lines(out_))
    if (l.rfind("accepted ", 0) == 0) n++;
  return n;
}

// ---- Checks ----

bool netns_listed(const std::string& name) {
  for (auto& l : split_lines(run_checked({kIpBin, "netns", "list"}))) {
    std::istringstream in(l);
    std::string first;
    if (in >> first && first == name) return true;
  }
  return false;
}

bool host_link_exists(const std::string& ifname) {
  struct stat st;
  return stat(("/sys/class/net/" + ifname).c_str(), &st) == 0;
}

std::vector<pid_t> pids_in_netns(ino_t inode) {
  std::vector<pid_t> pids;
  DIR* d = opendir("/proc");
  if (!d) return pids;
  while (dirent* e = readdir(d)) {
    char* end;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    struct stat st;
    std::string p = std::string("/proc/") + e->d_name + "/ns/net";
    if (stat(p.c_str(), &st) == 0 && st.st_ino == inode) pids.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return pids;
}

}  // namespace rt
