// Least privilege: after attaching, the tracer keeps only the capabilities
// it still uses, in every thread, binds metrics to loopback unless told
// otherwise, and pins nothing.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fixture.h"
#include "http.h"

namespace fs = std::filesystem;
using namespace std::chrono;

namespace {

constexpr std::uint64_t bit(int cap) { return 1ull << cap; }

struct ThreadCaps {
  std::uint64_t inh = ~0ull, prm = ~0ull, eff = ~0ull, bnd = ~0ull, amb = ~0ull;
  int no_new_privs = -1;
};

// The capability sets of every thread of `pid`, by thread ID.
std::map<int, ThreadCaps> caps_of_threads(pid_t pid) {
  std::map<int, ThreadCaps> res;
  for (const auto& task : fs::directory_iterator(fmt::format("/proc/{}/task", pid))) {
    std::ifstream in(task.path() / "status");
    ThreadCaps c;
    std::string key, value;
    while (in >> key >> value) {
      auto hex = [&] { return std::stoull(value, nullptr, 16); };
      if (key == "CapInh:") c.inh = hex();
      if (key == "CapPrm:") c.prm = hex();
      if (key == "CapEff:") c.eff = hex();
      if (key == "CapBnd:") c.bnd = hex();
      if (key == "CapAmb:") c.amb = hex();
      if (key == "NoNewPrivs:") c.no_new_privs = std::stoi(value);
    }
    res[std::stoi(task.path().filename())] = c;
  }
  return res;
}

// CAP_BPF stays only on kernels that check it on every bpf() call; the tool
// says so under -v, and the tests accept exactly what it said.
std::uint64_t kept_bpf(const std::string& err) {
  return err.find("capabilities: kept cap_bpf (") != std::string::npos ? bit(CAP_BPF) : 0;
}

// Everything under the BPF filesystem, recursively (pins).
std::set<std::string> bpffs_entries() {
  std::set<std::string> res;
  std::error_code ec;
  for (fs::recursive_directory_iterator it("/sys/fs/bpf", ec), end; !ec && it != end;
       it.increment(ec))
    res.insert(it->path().string());
  return res;
}

// Local addresses (hex, as in /proc/net/tcp{,6}) listening on `port`.
std::vector<std::string> listeners_on(int port) {
  std::vector<std::string> res;
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream l(line);
      std::string sl, local, remote, state;
      l >> sl >> local >> remote >> state;
      const auto colon = local.rfind(':');
      if (state == "0A" && std::stoi(local.substr(colon + 1), nullptr, 16) == port)
        res.push_back(local.substr(0, colon));
    }
  }
  return res;
}

class Privileges : public rt::RuntimeTest {};

TEST_F(Privileges, DefaultModeDropsEveryCapabilityInEveryThread) {
  rt::Listener l("127.0.0.1");
  auto t = start({"-v", "-P", std::to_string(l.port())}, "PID");
  // stderr is read apart from stdout: the banner comes after the capability lines.
  ASSERT_TRUE(t->wait_stderr("Tracing connect")) << t->err();
  const std::uint64_t keep = kept_bpf(t->err());
  if (!keep) {
    EXPECT_NE(t->err().find("capabilities: all dropped after attach"), std::string::npos)
        << t->err();
  }
  const auto threads = caps_of_threads(t->pid());
  ASSERT_FALSE(threads.empty());
  for (const auto& [tid, c] : threads) {
    EXPECT_EQ(c.eff, keep) << "thread " << tid;
    EXPECT_EQ(c.prm, keep) << "thread " << tid;
    EXPECT_EQ(c.bnd, keep) << "thread " << tid;
    EXPECT_EQ(c.inh, 0u) << "thread " << tid;
    EXPECT_EQ(c.amb, 0u) << "thread " << tid;
    EXPECT_EQ(c.no_new_privs, 1) << "thread " << tid;
  }
  // Still tracing with nothing left.
  auto c = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
  EXPECT_TRUE(t->wait_stdout(fmt::format("\n{} ", c[0].pid))) << t->out();
  EXPECT_EQ(t->stop(), 0) << t->err();
}

// JSON resolves cgroup paths by file handle (CAP_DAC_READ_SEARCH); metrics
// threads start after the drop and hold no more than the main thread.
TEST_F(Privileges, JsonAndMetricsKeepOnlyWhatTheyUse) {
  // The listener closes each connection at once and the client holds its side: the client
  // ends it through LAST_ACK, so its close record comes with the peer's ACK (a client that
  // closes first can sit in FIN_WAIT2 for tcp_fin_timeout).
  rt::Listener l("127.0.0.1", 0, /*hold=*/false);
  const int port = rt::closed_port("127.0.0.1");
  auto t = start({"-v", "-j", "--lifetime", "--accept", "-d", "--metrics", std::to_string(port),
                  "-P", std::to_string(l.port())},
                 rt::kJsonStart);
  ASSERT_TRUE(t->wait_stderr("Tracing connect")) << t->err();  // after the capability lines
  const std::uint64_t keep = bit(CAP_DAC_READ_SEARCH) | kept_bpf(t->err());
  EXPECT_NE(t->err().find("capabilities: kept cap_dac_read_search ("), std::string::npos)
      << t->err();
  auto c = rt::run_helper({"--hold-ms", "50", "127.0.0.1", std::to_string(l.port())});
  // The tracer counts the connect on its next poll: scrape until it shows.
  const std::string counted = fmt::format("dport=\"{}\"", l.port());
  rt::HttpResponse scrape;
  for (auto until = steady_clock::now() + seconds(5); steady_clock::now() < until;) {
    scrape = rt::http_get("127.0.0.1", port, "/metrics");
    if (scrape.status != 200 || scrape.body.find(counted) != std::string::npos) break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_EQ(scrape.status, 200) << scrape.error;
  EXPECT_NE(scrape.body.find(counted), std::string::npos) << scrape.body;
  const auto threads = caps_of_threads(t->pid());
  EXPECT_GE(threads.size(), 2u) << "the metrics server runs on its own threads";
  for (const auto& [tid, caps] : threads) {
    EXPECT_EQ(caps.eff, keep) << "thread " << tid;
    EXPECT_EQ(caps.prm, keep) << "thread " << tid;
    EXPECT_EQ(caps.bnd, keep) << "thread " << tid;
    EXPECT_EQ(caps.inh | caps.amb, 0u) << "thread " << tid;
    EXPECT_EQ(caps.no_new_privs, 1) << "thread " << tid;
  }
  // --metrics PORT listens on 127.0.0.1 only.
  EXPECT_EQ(listeners_on(port), std::vector<std::string>{"0100007F"});
  ASSERT_TRUE(t->wait_stdout("\"type\":\"close\"", seconds(10))) << t->out();
  auto closes = rt::for_pid(records(*t, "close"), c[0].pid);
  ASSERT_EQ(closes.size(), 1u) << t->out();
  // The cgroup path was still resolved after the drop.
  EXPECT_FALSE(closes[0]["cgroup"].get<std::string>().empty()) << closes[0].dump();
}

// A service started as a non-root user with CAP_BPF, CAP_PERFMON and
// CAP_DAC_READ_SEARCH (packaging/tcpconnect-metrics.service) ends up with
// the same narrow set; without CAP_SETPCAP its bounding set stays as given.
TEST_F(Privileges, NonRootServiceNarrowsItsCapabilities) {
  char dir[] = "/tmp/tcpconnect-caps.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string bin = std::string(dir) + "/tcpconnect";
  ASSERT_EQ(std::system(
                fmt::format("cp {} {} && chmod 755 {} {}", TCPCONNECT_BIN, bin, dir, bin).c_str()),
            0);
  const std::string caps = "+bpf,+perfmon,+dac_read_search";
  rt::Listener l("127.0.0.1");
  auto t = std::make_unique<rt::Tracer>(
      "/usr/bin/setpriv",
      std::vector<std::string>{"--reuid=65534", "--regid=65534", "--clear-groups",
                               "--inh-caps=" + caps, "--ambient-caps=" + caps,
                               "--bounding-set=-all," + caps, bin, "-v", "-j", "-P",
                               std::to_string(l.port())});
  const bool ready = t->wait_ready(rt::kJsonStart);
  std::system(fmt::format("rm -rf {}", dir).c_str());  // the running binary stays mapped
  ASSERT_TRUE(ready) << t->err();
  const std::uint64_t keep = bit(CAP_DAC_READ_SEARCH) | kept_bpf(t->err());
  for (const auto& [tid, c] : caps_of_threads(t->pid())) {
    EXPECT_EQ(c.eff, keep) << "thread " << tid;
    EXPECT_EQ(c.prm, keep) << "thread " << tid;
    EXPECT_EQ(c.bnd, bit(CAP_BPF) | bit(CAP_PERFMON) | bit(CAP_DAC_READ_SEARCH))
        << "thread " << tid;
    EXPECT_EQ(c.inh | c.amb, 0u) << "thread " << tid;
  }
  auto c = rt::run_helper({"127.0.0.1", std::to_string(l.port())});
  EXPECT_EQ(rt::for_pid(records(*t, "connect"), c[0].pid).size(), 1u) << t->out();
}

// Nothing of ours is pinned, in any mode.
TEST_F(Privileges, NothingIsPinned) {
  const auto before = bpffs_entries();
  rt::Listener l("127.0.0.1");
  const int port = rt::closed_port("127.0.0.1");
  for (std::vector<std::string> args :
       {std::vector<std::string>{"-c"},
        {"-j", "--lifetime", "--accept", "-d", "--parent", "--cmdline", "--container", "--metrics",
         std::to_string(port)}}) {
    args.emplace_back("-P");
    args.push_back(std::to_string(l.port()));
    rt::Tracer t(args);
    ASSERT_TRUE(t.wait_stderr("Tracing connect")) << t.err();
    rt::run_helper({"127.0.0.1", std::to_string(l.port())});
    EXPECT_EQ(t.stop(), 0) << t.err();
  }
  EXPECT_EQ(bpffs_entries(), before);
}

}  // namespace
