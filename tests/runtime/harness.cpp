#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace rt {

using namespace std::chrono;

std::string missing_requirements() {
  if (geteuid() != 0) return "runtime tests need root (BPF and tracepoints)";
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
    return "kernel has no BTF (/sys/kernel/btf/vmlinux)";
  return {};
}

namespace {

pid_t spawn(const std::string& path, const std::vector<std::string>& args, int* out_fd, int* err_fd,
            int* in_fd = nullptr) {
  int out[2], err[2], in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) throw std::runtime_error("pipe");
  if (in_fd && pipe2(in, O_CLOEXEC)) throw std::runtime_error("pipe");
  // Built before fork(): the test process has threads (listeners, output readers), and the
  // child of a threaded process may only make async-signal-safe calls until it execs. An
  // allocation there can wait forever for a lock another thread held at the fork (seen with
  // the sanitizers' allocator: the tracer never started).
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (in_fd) dup2(in[0], 0);
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  *out_fd = out[0];
  *err_fd = err[0];
  if (in_fd) {
    close(in[0]);
    *in_fd = in[1];
  }
  return pid;
}

}  // namespace

void read_all(int fd, std::mutex& mu, std::string& dst) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard<std::mutex> g(mu);
    dst.append(buf, static_cast<size_t>(n));
  }
  close(fd);
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

Tracer::Tracer(std::vector<std::string> args) : Tracer(TCPCONNECT_BIN, std::move(args)) {}

// TCPCONNECT_TEST_ATTACH=MODE runs every tracer the suite starts directly with
// `--attach MODE`, so the same tests check each mechanism on each kernel
// (tests/vm/). It goes first so that a bad-input test still gets the error of
// its own bad argument; a test that picks a mechanism itself keeps its choice.
static void force_attach(std::vector<std::string>& args) {
  const char* mode = std::getenv("TCPCONNECT_TEST_ATTACH");
  if (!mode || !*mode) return;
  for (const auto& a : args)
    if (a == "--attach" || a.rfind("--attach=", 0) == 0) return;
  args.insert(args.begin(), {"--attach", mode});
}

std::string tool_path(const std::string& name) {
  const std::string bin = TCPCONNECT_BIN;
  return bin.substr(0, bin.rfind('/') + 1) + name;
}

Tracer::Tracer(const std::string& path, std::vector<std::string> args) {
  for (const char* tool : {"tcpconnect", "tcpaccept", "tcplife", "tcpconnlat"})
    if (path == tool_path(tool)) force_attach(args);
  int out_fd, err_fd;
  pid_ = spawn(path, args, &out_fd, &err_fd);
  out_reader_ = std::thread(read_all, out_fd, std::ref(mu_), std::ref(out_));
  err_reader_ = std::thread(read_all, err_fd, std::ref(mu_), std::ref(err_));
}

Tracer::~Tracer() {
  if (status_ < 0 && pid_ > 0) {
    kill(pid_, SIGKILL);
    int st;
    waitpid(pid_, &st, 0);
  }
  join_readers();
}

void Tracer::join_readers() {
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
}

static bool wait_for(const std::function<bool()>& pred, pid_t pid, milliseconds timeout) {
  auto end = steady_clock::now() + timeout;
  while (steady_clock::now() < end) {
    if (pred()) return true;
    siginfo_t info{};
    if (pid > 0 && waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid)
      return pred();
    std::this_thread::sleep_for(milliseconds(5));
  }
  return pred();
}

bool Tracer::wait_ready(const std::string& prefix, milliseconds timeout) {
  return wait_for(
      [&] {
        std::lock_guard<std::mutex> g(mu_);
        for (const auto& l : split_lines(out_))
          if (l.rfind(prefix, 0) == 0) return true;
        return false;
      },
      pid_, timeout);
}

bool Tracer::wait_stderr(const std::string& needle, milliseconds timeout) {
  return wait_for(
      [&] {
        std::lock_guard<std::mutex> g(mu_);
        return err_.find(needle) != std::string::npos;
      },
      pid_, timeout);
}

bool Tracer::wait_stdout(const std::string& needle, milliseconds timeout) {
  return wait_for(
      [&] {
        std::lock_guard<std::mutex> g(mu_);
        return out_.find(needle) != std::string::npos;
      },
      pid_, timeout);
}

int Tracer::stop(int sig) {
  if (status_ >= 0) return decode_status(status_);
  kill(pid_, sig);
  return wait_exit(seconds(20));
}

int Tracer::wait_exit(milliseconds timeout) {
  if (status_ >= 0) return decode_status(status_);
  auto end = steady_clock::now() + timeout;
  int st = 0;
  while (steady_clock::now() < end) {
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = st;
      join_readers();
      return decode_status(st);
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  return -1;  // still running
}

std::string Tracer::out() const {
  std::lock_guard<std::mutex> g(mu_);
  return out_;
}

std::string Tracer::err() const {
  std::lock_guard<std::mutex> g(mu_);
  return err_;
}

std::vector<std::string> Tracer::out_lines() const { return split_lines(out()); }

namespace {
std::vector<Conn> collect(pid_t pid, int out_fd, int err_fd) {
  std::mutex mu;
  std::string out, err;
  std::thread t1(read_all, out_fd, std::ref(mu), std::ref(out));
  std::thread t2(read_all, err_fd, std::ref(mu), std::ref(err));
  int st;
  waitpid(pid, &st, 0);
  t1.join();
  t2.join();
  return parse_conns(out, err);
}
}  // namespace

std::vector<Conn> run_helper(const std::vector<std::string>& args) {
  int out_fd, err_fd;
  pid_t pid = spawn(CONN_HELPER_BIN, args, &out_fd, &err_fd);
  return collect(pid, out_fd, err_fd);
}

PendingHelper::PendingHelper(const std::vector<std::string>& args) {
  pid_ = spawn(CONN_HELPER_BIN, args, &out_fd_, &err_fd_, &in_fd_);
  // Wait for "ready pid=N" so the process exists and is set up.
  std::string got;
  char c;
  while (got.find('\n') == std::string::npos && read(out_fd_, &c, 1) == 1) got += c;
  if (got.rfind("ready", 0) != 0) throw std::runtime_error("conn_helper not ready: " + got);
}

PendingHelper::PendingHelper(const std::vector<std::string>& prefix,
                             const std::vector<std::string>& args) {
  if (prefix.empty()) throw std::invalid_argument("PendingHelper: empty prefix");
  std::vector<std::string> argv(prefix.begin() + 1, prefix.end());
  argv.emplace_back(CONN_HELPER_BIN);
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = spawn(prefix[0], argv, &out_fd_, &err_fd_, &in_fd_);
  std::string got;
  char c;
  while (got.find('\n') == std::string::npos && read(out_fd_, &c, 1) == 1) got += c;
  if (got == "ready pid=" + std::to_string(pid_) + "\n") return;
  // Not ready, or ready under another PID (the prefix forked): stop it and report why.
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  close(in_fd_);
  close(out_fd_);
  // Whatever the prefix wrote is in the pipe now; a forked child still holding it must not
  // block us, so read without waiting.
  fcntl(err_fd_, F_SETFL, O_NONBLOCK);
  std::string err;
  char buf[4096];
  ssize_t n;
  while ((n = read(err_fd_, buf, sizeof(buf))) > 0) err.append(buf, static_cast<size_t>(n));
  close(err_fd_);
  std::string cmd;
  for (const auto& a : prefix) cmd += (cmd.empty() ? "" : " ") + a;
  throw std::runtime_error("conn_helper under '" + cmd + "' not ready (spawned pid " +
                           std::to_string(pid_) + "): stdout: " + got + " stderr: " + err);
}

PendingHelper::~PendingHelper() {
  if (!done_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    close(out_fd_);
    close(err_fd_);
    close(in_fd_);
  }
}

std::vector<Conn> PendingHelper::go() {
  done_ = true;
  if (write(in_fd_, "\n", 1) != 1) throw std::runtime_error("write to conn_helper");
  close(in_fd_);
  return collect(pid_, out_fd_, err_fd_);
}

std::vector<Conn> parse_conns(const std::string& out, const std::string& err) {
  std::vector<Conn> conns;
  for (auto& line : split_lines(out)) {
    std::istringstream in(line);
    std::string kv;
    Conn c;
    std::map<std::string, std::string> m;
    while (in >> kv) {
      auto eq = kv.find('=');
      if (eq != std::string::npos) m[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    if (!m.contains("pid")) continue;
    c.pid = std::stoi(m["pid"]);
    c.tid = std::stoi(m["tid"]);
    c.uid = std::stoi(m["uid"]);
    c.af = std::stoi(m["af"]);
    c.saddr = m["saddr"];
    c.sport = std::stoi(m["sport"]);
    c.daddr = m["daddr"];
    c.dport = std::stoi(m["dport"]);
    c.result = m["result"];
    conns.push_back(c);
  }
  if (conns.empty()) throw std::runtime_error("conn_helper printed nothing: " + err);
  return conns;
}

namespace {
int make_bound(const std::string& addr, int* port) {
  bool v6 = addr.find(':') != std::string::npos;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, addr.c_str(), &s6->sin6_addr);
    len = sizeof(*s6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    inet_pton(AF_INET, addr.c_str(), &s4->sin_addr);
    len = sizeof(*s4);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    const int e = errno;
    close(fd);
    throw std::runtime_error("bind " + addr + ": " + std::strerror(e));
  }
  len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  *port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                   : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return fd;
}
}  // namespace

Listener::Listener(const std::string& addr, std::size_t greeting, bool hold) {
  fd_ = make_bound(addr, &port_);
  int qlen = 5;
  setsockopt(fd_, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen));
  listen(fd_, 1024);
  thread_ = std::thread([this, greeting, hold] {
    std::vector<int> held;
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      if (greeting) {
        std::string g(greeting, 'g');
        if (write(c, g.data(), g.size()) != static_cast<ssize_t>(g.size())) {
          close(c);
          continue;
        }
      }
      if (!hold) {
        close(c);
        continue;
      }
      held.push_back(c);
      if (held.size() > 512) {
        close(held.front());
        held.erase(held.begin());
      }
    }
    for (int c : held) close(c);
  });
}

Listener::~Listener() {
  stop_ = true;
  thread_.join();
  close(fd_);
}

int closed_port(const std::string& addr) {
  int port;
  int fd = make_bound(addr, &port);
  close(fd);
  return port;
}

std::vector<std::string> lines_for_pid(const std::vector<std::string>& lines, int pid, int skip) {
  std::vector<std::string> res;
  for (auto& l : lines) {
    std::istringstream in(l);
    std::string col;
    for (int i = 0; i < skip; i++) in >> col;
    if (in >> col && col == std::to_string(pid)) res.push_back(l);
  }
  return res;
}

}  // namespace rt

namespace rt {

std::set<int> prog_ids_of(pid_t pid) {
  std::set<int> ids;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fdinfo";
  DIR* d = opendir(dir.c_str());
  if (!d) return ids;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("prog_id:", 0) == 0) ids.insert(std::stoi(line.substr(8)));
    }
  }
  closedir(d);
  return ids;
}

std::set<int> still_loaded(const std::set<int>& ids) {
  std::set<int> loaded;
  FILE* f = popen("bpftool -j prog show 2>/dev/null", "r");
  if (!f) return loaded;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  pclose(f);
  auto progs = nlohmann::json::parse(text, nullptr, false);
  if (!progs.is_array()) return loaded;
  for (auto& p : progs) {
    int id = p.value("id", -1);
    if (ids.contains(id)) loaded.insert(id);
  }
  return loaded;
}

long status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  const std::string key = field + ":";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  }
  return -1;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> kids;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t k;
  while (in >> k) kids.push_back(k);
  return kids;
}

}  // namespace rt

namespace rt {

namespace {
// Calls fn(pid, id) for every "link_id:" line in /proc/PID/fdinfo of `pid`.
template <typename Fn>
void scan_link_fds(pid_t pid, Fn fn) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fdinfo";
  DIR* d = opendir(dir.c_str());
  if (!d) return;  // the process is gone (or not ours to read)
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("link_id:", 0) == 0) fn(pid, std::stoi(line.substr(8)));
    }
  }
  closedir(d);
}
}  // namespace

std::set<int> link_ids_of(pid_t pid) {
  std::set<int> ids;
  scan_link_fds(pid, [&](pid_t, int id) { ids.insert(id); });
  return ids;
}

std::set<int> all_link_ids(bool* ok) {
  std::set<int> ids;
  if (ok) *ok = false;
  FILE* f = popen("bpftool -j link list 2>/dev/null", "r");
  if (!f) return ids;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  const int st = pclose(f);
  auto links = nlohmann::json::parse(text, nullptr, false);
  if (st != 0 || !links.is_array()) return ids;
  for (auto& l : links) ids.insert(l.value("id", -1));
  if (ok) *ok = true;
  return ids;
}

std::map<int, std::set<pid_t>> link_holders() {
  std::map<int, std::set<pid_t>> holders;
  DIR* d = opendir("/proc");
  if (!d) return holders;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    scan_link_fds(static_cast<pid_t>(pid), [&](pid_t p, int id) { holders[id].insert(p); });
  }
  closedir(d);
  return holders;
}

}  // namespace rt
