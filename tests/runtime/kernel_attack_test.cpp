// Runtime tests of what a local unprivileged user (uid 65534) can do to the tracer from the
// kernel side: flood it with enrichment (DNS answers it reads, execs) to push other users'
// connection records out, and forge DNS answers to put a false name on someone else's connect.
// The attackers are forked from this process, join a test namespace where needed, and drop
// every privilege before they start.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <new>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "dns_server.h"
#include "fixture.h"
#include "harness.h"
#include "netns.h"

using namespace std::chrono;
using nlohmann::json;
using rt::DnsServer;

namespace {

constexpr uid_t kNobody = 65534;
// The kernel's default budget of enrichment records per user (TracerConfig).
constexpr int kBurst = 64;
constexpr int kRate = 64;

// ---- DNS messages -----------------------------------------------------------------------------

void put16(std::vector<std::uint8_t>& m, unsigned v) {
  m.push_back(static_cast<std::uint8_t>(v >> 8));
  m.push_back(static_cast<std::uint8_t>(v));
}

void put_name(std::vector<std::uint8_t>& m, const std::string& name) {
  std::size_t start = 0;
  while (start < name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    m.push_back(static_cast<std::uint8_t>(dot - start));
    m.insert(m.end(), name.begin() + static_cast<long>(start),
             name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  m.push_back(0);
}

// A recursive query for the A records of `name`; with `edns`, an OPT record offering 4096 bytes.
std::vector<std::uint8_t> dns_query(std::uint16_t id, const std::string& name, bool edns) {
  std::vector<std::uint8_t> m;
  put16(m, id);
  put16(m, 0x0100);  // RD
  put16(m, 1);
  put16(m, 0);
  put16(m, 0);
  put16(m, edns ? 1 : 0);
  put_name(m, name);
  put16(m, 1);  // A
  put16(m, 1);  // IN
  if (edns) {
    m.push_back(0);  // root
    put16(m, 41);    // OPT
    put16(m, 4096);  // UDP payload size
    put16(m, 0);
    put16(m, 0);
    put16(m, 0);
  }
  return m;
}

// A well-formed answer to dns_query(id, name): `name` A `addr`.
std::vector<std::uint8_t> dns_answer(std::uint16_t id, const std::string& name,
                                     const std::string& addr) {
  std::vector<std::uint8_t> m;
  put16(m, id);
  put16(m, 0x8180);  // QR, RD, RA, NOERROR
  put16(m, 1);
  put16(m, 1);
  put16(m, 0);
  put16(m, 0);
  put_name(m, name);
  put16(m, 1);
  put16(m, 1);
  put16(m, 0xc00c);  // the question's name
  put16(m, 1);
  put16(m, 1);
  put16(m, 0);
  put16(m, 300);  // TTL
  put16(m, 4);
  in_addr a{};
  inet_pton(AF_INET, addr.c_str(), &a);
  const auto* b = reinterpret_cast<const std::uint8_t*>(&a);
  m.insert(m.end(), b, b + 4);
  return m;
}

sockaddr_in sin_of(const std::string& addr, int port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, addr.c_str(), &sin.sin_addr);
  return sin;
}

// ---- Attackers --------------------------------------------------------------------------------

// Runs `fn` in a forked child that joins network namespace `netns` (by name; "" stays) and
// then becomes uid/gid 65534 with no supplementary groups. The child exits with fn's result
// (100 when it could not get there). Only raw system calls before fn: the parent has threads.
pid_t spawn_unprivileged(const std::string& netns, const std::function<int()>& fn) {
  const std::string path = "/run/netns/" + netns;
  const pid_t p = fork();
  if (p != 0) return p;
  if (!netns.empty()) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(100);
    close(fd);
  }
  if (syscall(SYS_setgroups, 0, nullptr) != 0 ||
      syscall(SYS_setresgid, kNobody, kNobody, kNobody) != 0 ||
      syscall(SYS_setresuid, kNobody, kNobody, kNobody) != 0)
    _exit(100);
  _exit(fn());
}

int reap(pid_t p) {
  int st = 0;
  if (waitpid(p, &st, 0) != p) return -1;
  return rt::decode_status(st);
}

void kill_all(const std::vector<pid_t>& pids) {
  for (pid_t p : pids) kill(p, SIGKILL);
  for (pid_t p : pids) reap(p);
}

// Records the attackers made, counted in memory shared with the test.
std::atomic<long>* made_counter() {
  static auto* c = [] {
    void* p = mmap(nullptr, sizeof(std::atomic<long>), PROT_READ | PROT_WRITE,
                   // cppcheck-suppress invalidFunctionArg ; fd -1 is what MAP_ANONYMOUS asks for
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : new (p) std::atomic<long>(0);
  }();
  return c;
}

// Asks `name` (large answer) over and over on a connected UDP socket to the namespace's
// dnsmasq, reading every answer, until killed.
int dns_flood(const std::string& name) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const sockaddr_in server = sin_of(DnsServer::kAddr, 53);
  if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof(server)) != 0)
    return 1;
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::vector<std::uint8_t> buf(8192);
  for (std::uint16_t id = 1;; id++) {
    const auto q = dns_query(id, name, true);
    if (send(fd, q.data(), q.size(), 0) < 0) return 1;
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    if (recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len) > 0)
      made_counter()->fetch_add(1);
  }
}

// Execs /bin/true with a long argument over and over, until killed (posix_spawn: a fork of
// this big process would be slower than the exec).
int exec_flood() {
  std::string arg(480, 'x');
  char prog[] = "/bin/true";
  char* const argv[] = {prog, arg.data(), nullptr};
  char* const envp[] = {nullptr};
  for (;;) {
    pid_t c = -1;
    if (posix_spawn(&c, prog, nullptr, nullptr, argv, envp) != 0) return 1;
    int st = 0;
    waitpid(c, &st, 0);
    made_counter()->fetch_add(1);
  }
}

// ---- Tracer output ----------------------------------------------------------------------------

// The exit line about enrichment loss: (lost command lines, lost DNS answers), or -1s.
std::pair<long long, long long> enrichment_lost(const std::string& err) {
  static const std::regex re("WARNING: ([0-9]+) command lines and ([0-9]+) DNS answers lost .*");
  for (const auto& line : rt::split_lines(err)) {
    std::smatch m;
    if (std::regex_match(line, m, re)) return {std::stoll(m[1]), std::stoll(m[2])};
  }
  return {-1, -1};
}

bool have_dnsmasq() {
  if (access(rt::kDnsmasqBin, X_OK) == 0) return true;
  if (std::getenv("CI")) ADD_FAILURE() << "kernel attack tests cannot run in CI: no dnsmasq";
  return false;
}

bool wait_stopped(pid_t pid) {
  for (auto end = steady_clock::now() + seconds(5); steady_clock::now() < end;) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(f, line);
    const auto paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'T')
      return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return false;
}

class KernelAttack : public rt::RuntimeTest {
 protected:
  // Two unprivileged processes run `flood` (which counts what it makes in made_counter()) while
  // the tracer (text, started with `args` and a 512 KiB ring) is stopped, as a reader that falls
  // behind is: once the flood made `flood_records` records, root makes 2,000 connects. All of
  // them must be printed, and no connection record counted lost: the ring holds 2,000 connect
  // records, but not alongside the flood.
  void connects_survive(std::vector<std::string> args, const std::string& netns,
                        const std::function<int()>& flood, long flood_records,
                        const std::string& what) {
    ASSERT_NE(made_counter(), nullptr);
    made_counter()->store(0);
    rt::Listener l("127.0.0.1", 0, false);
    const std::string port = std::to_string(l.port());
    args.insert(args.end(), {"--ringbuf-size", "512K", "-P", port});
    auto t = start(args, "PID");
    ASSERT_FALSE(HasFailure());
    kill(t->pid(), SIGSTOP);
    ASSERT_TRUE(wait_stopped(t->pid()));
    std::vector<pid_t> flooders;
    for (int i = 0; i < 2; i++) flooders.push_back(spawn_unprivileged(netns, flood));
    for (auto end = steady_clock::now() + seconds(20);
         made_counter()->load() < flood_records && steady_clock::now() < end;)
      std::this_thread::sleep_for(milliseconds(10));
    const long flooded = made_counter()->load();
    bool alive = true;
    for (pid_t p : flooders) alive = alive && waitpid(p, nullptr, WNOHANG) == 0;
    const int n = 2000;
    std::vector<rt::Conn> conns;
    std::string helper_error;
    if (alive && flooded >= flood_records) {
      try {
        conns = rt::run_helper({"--count", std::to_string(n), "127.0.0.1", port});
      } catch (const std::exception& e) {
        helper_error = e.what();
      }
    }
    kill_all(flooders);
    kill(t->pid(), SIGCONT);
    ASSERT_TRUE(alive) << what << " flood died";
    ASSERT_GE(flooded, flood_records) << what << " flood too slow";
    ASSERT_EQ(conns.size(), static_cast<std::size_t>(n)) << helper_error;
    const int pid = conns[0].pid;
    for (auto end = steady_clock::now() + seconds(10); steady_clock::now() < end;) {
      if (rt::lines_for_pid(t->out_lines(), pid).size() >= static_cast<std::size_t>(n)) break;
      std::this_thread::sleep_for(milliseconds(50));
    }
    EXPECT_EQ(t->stop(), 0) << t->err();
    const std::size_t printed = rt::lines_for_pid(t->out_lines(), pid).size();
    const auto [lost_execs, lost_dns] = enrichment_lost(t->err());
    std::cout << "[ note     ] " << what << " flood of " << made_counter()->load()
              << " records: " << printed << " of " << n
              << " connects printed; enrichment lost: " << lost_execs << " command lines, "
              << lost_dns << " DNS answers\n";
    RecordProperty("printed", static_cast<int>(printed));
    EXPECT_EQ(printed, static_cast<std::size_t>(n)) << t->err();
    EXPECT_EQ(t->err().find("events lost"), std::string::npos) << t->err();
  }
};

// ---- Enrichment cannot displace connection records --------------------------------------------

TEST_F(KernelAttack, DnsFloodLosesNoConnectRecord) {
  if (!have_dnsmasq()) GTEST_SKIP() << rt::kDnsmasqBin << " is missing";
  std::vector<std::string> records;
  // 200 A records: a 3.2 kB answer, read whole by the attacker and sent whole by the kernel.
  for (int i = 1; i <= 200; i++)
    records.push_back(fmt::format("--host-record=big.test,10.78.0.{}", i));
  DnsServer s("tcatkd", records);
  // 512 KiB holds some 160 of its answers: 400 fill any shared ring of that size.
  connects_survive(
      {"-d"}, s.ns.name(), [] { return dns_flood("big.test"); }, 400, "DNS");
}

TEST_F(KernelAttack, ExecFloodLosesNoConnectRecord) {
  // 512 KiB holds some 940 of its command lines.
  connects_survive({"--cmdline"}, "", exec_flood, 1500, "exec");
}

// ---- The budget -------------------------------------------------------------------------------

// One unprivileged process reads 300 answers as fast as it can: the kernel sends at most the
// burst plus the refill for the time it took, and counts the rest as lost DNS answers.
TEST_F(KernelAttack, DnsAnswersPerUserAreBudgeted) {
  if (!have_dnsmasq()) GTEST_SKIP() << rt::kDnsmasqBin << " is missing";
  DnsServer s("tcatkb", {"--host-record=web.test,10.77.0.1"});
  auto t = start({"-j", "-d", "--netns", std::to_string(s.ns.inode())}, rt::kJsonStart);
  ASSERT_FALSE(HasFailure());
  const int n = 300;
  const auto begin = steady_clock::now();
  const pid_t reader = spawn_unprivileged(s.ns.name(), [] {
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const sockaddr_in server = sin_of(DnsServer::kAddr, 53);
    if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof(server)) != 0)
      return 1;
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::uint8_t buf[4096];
    for (int i = 0; i < n; i++) {
      const auto q = dns_query(static_cast<std::uint16_t>(i + 1), "web.test", false);
      if (send(fd, q.data(), q.size(), 0) < 0) return 2;
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      if (recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len) <= 0)
        return 3;
    }
    return 0;
  });
  ASSERT_EQ(reap(reader), 0) << "the reader did not get its " << n << " answers";
  const double took = duration<double>(steady_clock::now() - begin).count();
  std::this_thread::sleep_for(milliseconds(300));  // everything sent has been read
  const auto end = records(*t, "end");
  ASSERT_EQ(end.size(), 1u) << t->out();
  const auto received = end[0].value("dns_answers", 0ull);
  const auto lost = end[0].value("lost_dns", 0ull);
  std::cout << "[ note     ] " << n << " answers read in " << took << " s: " << received
            << " sent, " << lost << " counted lost\n";
  EXPECT_EQ(received + lost, static_cast<unsigned long long>(n)) << end[0].dump();
  EXPECT_GE(received, static_cast<unsigned long long>(kBurst)) << end[0].dump();
  EXPECT_LE(received, static_cast<unsigned long long>(kBurst + kRate * took + 1)) << end[0].dump();
  EXPECT_GT(lost, 0ull) << end[0].dump();
}

// ---- Forged answers ---------------------------------------------------------------------------

constexpr const char* kTarget = "10.99.0.1";  // local in the namespace, nothing listens there
constexpr const char* kForgedName = "security.debian.org";

// As uid 65534: a query to port 53 of kTarget (nothing answers), then forged answers naming
// kTarget sent from another socket of the same process, read in every way a resolver reads.
// Returns 0 when every read got the forged answer.
int forge() {
  const int a = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int b = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (a < 0 || b < 0) return 1;
  const sockaddr_in target = sin_of(kTarget, 53);
  const std::uint16_t id = 0x4242;
  const auto q = dns_query(id, kForgedName, false);
  if (sendto(a, q.data(), q.size(), 0, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) <
      0)
    return 2;
  sockaddr_in self{};
  socklen_t slen = sizeof(self);
  if (getsockname(a, reinterpret_cast<sockaddr*>(&self), &slen) != 0) return 3;
  const sockaddr_in to_a = sin_of("127.0.0.1", ntohs(self.sin_port));
  const auto answer = dns_answer(id, kForgedName, kTarget);
  std::uint8_t buf[1024];
  auto send_forged = [&](const sockaddr_in& dst) {
    return sendto(b, answer.data(), answer.size(), 0, reinterpret_cast<const sockaddr*>(&dst),
                  sizeof(dst)) == static_cast<ssize_t>(answer.size());
  };
  // 1. recvfrom with a source address (musl), 2. without, 3. read(), 4. recvmsg with msg_name.
  for (int how = 1; how <= 4; how++) {
    if (!send_forged(to_a)) return 4;
    ssize_t n = -1;
    sockaddr_in from{};
    socklen_t flen = sizeof(from);
    if (how == 1) {
      n = recvfrom(a, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &flen);
    } else if (how == 2) {
      n = recvfrom(a, buf, sizeof(buf), 0, nullptr, nullptr);
    } else if (how == 3) {
      n = read(a, buf, sizeof(buf));
    } else {
      iovec iov{buf, sizeof(buf)};
      msghdr msg{};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof(from);
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      n = recvmsg(a, &msg, 0);
    }
    if (n != static_cast<ssize_t>(answer.size())) return 10 + how;
  }
  // 5. Queued before connect(): a connected socket only receives from its peer from then on,
  // but what was queued before stays, and read() does not say where it came from.
  const int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const sockaddr_in any = sin_of("127.0.0.1", 0);
  if (c < 0 || bind(c, reinterpret_cast<const sockaddr*>(&any), sizeof(any)) != 0) return 5;
  slen = sizeof(self);
  if (getsockname(c, reinterpret_cast<sockaddr*>(&self), &slen) != 0) return 6;
  if (!send_forged(self)) return 7;
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // (No query on it: nothing listens at the target, and its ICMP error would be what read()
  // returns.)
  if (connect(c, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0) return 8;
  if (read(c, buf, sizeof(buf)) != static_cast<ssize_t>(answer.size())) return 15;
  return 0;
}

class KernelAttackForged : public KernelAttack, public ::testing::WithParamInterface<bool> {};

TEST_P(KernelAttackForged, AnswerDoesNotNameAConnect) {
  const bool js = GetParam();
  rt::NetNs ns("tcforge");
  ns.ip({"addr", "add", std::string(kTarget) + "/32", "dev", "lo"});
  auto t = js ? start({"-j", "-d", "-P", "9"}, rt::kJsonStart) : start({"-d", "-P", "9"}, "PID");
  ASSERT_FALSE(HasFailure());
  const pid_t forger = spawn_unprivileged(ns.name(), forge);
  ASSERT_EQ(reap(forger), 0) << "the forger could not read its own answers";
  // Root connects to the address the forged answers named.
  const auto conns = rt::run_helper_in(ns, {kTarget, "9"});
  ASSERT_EQ(conns.size(), 1u);
  const int pid = conns[0].pid;
  const std::string needle = js ? fmt::format("\"pid\":{},", pid) : std::to_string(pid) + " ";
  EXPECT_TRUE(t->wait_stdout(needle)) << t->out();
  if (js) {
    const auto mine = rt::for_pid(records(*t, "connect"), pid);
    ASSERT_EQ(mine.size(), 1u) << t->out();
    EXPECT_TRUE(mine[0].contains("query") && mine[0]["query"].is_null()) << mine[0].dump();
  } else {
    EXPECT_EQ(t->stop(), 0) << t->err();
    const auto mine = rt::lines_for_pid(t->out_lines(), pid);
    ASSERT_EQ(mine.size(), 1u) << t->out();
    // The QUERY column, last, says no answer named the destination (bcc's words).
    const std::string line = mine[0].substr(0, mine[0].find_last_not_of(' ') + 1);
    EXPECT_TRUE(line.ends_with(" 9      No DNS Query")) << mine[0];
    EXPECT_EQ(line.find(kForgedName), std::string::npos) << mine[0];
  }
}

INSTANTIATE_TEST_SUITE_P(KernelAttack, KernelAttackForged, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Json" : "Text"; });

// The unconnected style (musl: sendto, then recvfrom or recvmsg with the source) still names
// connects when the answer really comes from the server, also for an unprivileged reader.
TEST_F(KernelAttack, UnconnectedResolverStillNamesItsConnect) {
  if (!have_dnsmasq()) GTEST_SKIP() << rt::kDnsmasqBin << " is missing";
  DnsServer s("tcatku", {"--host-record=musl.test,10.77.0.9", "--host-record=msg.test,10.77.0.10"});
  s.add_local("10.77.0.0/24");
  auto t = start({"-j", "-d", "-P", "9"}, rt::kJsonStart);
  ASSERT_FALSE(HasFailure());
  const pid_t p = spawn_unprivileged(s.ns.name(), [] {
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 1;
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const sockaddr_in server = sin_of(DnsServer::kAddr, 53);
    std::uint8_t buf[1024];
    int id = 7;
    for (const char* name : {"musl.test", "msg.test"}) {
      const auto q = dns_query(static_cast<std::uint16_t>(id++), name, false);
      if (sendto(fd, q.data(), q.size(), 0, reinterpret_cast<const sockaddr*>(&server),
                 sizeof(server)) < 0)
        return 2;
      sockaddr_in from{};
      ssize_t n;
      if (std::strcmp(name, "musl.test") == 0) {
        socklen_t len = sizeof(from);
        n = recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
      } else {
        iovec iov{buf, sizeof(buf)};
        msghdr msg{};
        msg.msg_name = &from;
        msg.msg_namelen = sizeof(from);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        n = recvmsg(fd, &msg, 0);
      }
      if (n <= 0) return 3;
    }
    for (const char* addr : {"10.77.0.9", "10.77.0.10"}) {
      const int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const sockaddr_in dst = sin_of(addr, 9);
      (void)connect(c, reinterpret_cast<const sockaddr*>(&dst), sizeof(dst));  // refused
      close(c);
    }
    return 0;
  });
  const int pid = p;
  ASSERT_EQ(reap(p), 0);
  EXPECT_TRUE(t->wait_stdout("\"daddr\":\"10.77.0.10\"")) << t->out();
  const auto mine = rt::for_pid(records(*t, "connect"), pid);
  ASSERT_EQ(mine.size(), 2u) << t->out();
  for (const auto& r : mine) {
    const std::string want = r.value("daddr", "") == "10.77.0.9" ? "musl.test" : "msg.test";
    EXPECT_EQ(r.value("query", json()), want) << r.dump();
  }
}

}  // namespace
