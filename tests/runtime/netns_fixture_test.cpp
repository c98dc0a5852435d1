// Runtime tests of the test-owned network namespace fixtures (netns.h): each scenario really
// produces the connect outcome later tests rely on, and leaves nothing behind.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "netns.h"

using namespace std::chrono;
using rt::Conn;

namespace {

class NetNsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string missing;
    if (geteuid() != 0)
      missing = "network namespace tests need root (ip netns add)";
    else if (access(rt::kIpBin, X_OK) != 0)
      missing = std::string(rt::kIpBin) + " (iproute2) is missing";
    if (!missing.empty()) {
      // CI must exercise these: a skip there would hide a broken setup.
      if (std::getenv("CI")) FAIL() << "netns tests cannot run in CI: " << missing;
      GTEST_SKIP() << missing;
    }
  }
};

struct Timed {
  std::vector<Conn> conns;
  milliseconds took{};
};

Timed timed_helper_in(const rt::NetNs& ns, const std::vector<std::string>& args) {
  auto start = steady_clock::now();
  Timed t;
  t.conns = rt::run_helper_in(ns, args);
  t.took = duration_cast<milliseconds>(steady_clock::now() - start);
  return t;
}

ino_t host_netns_inode() {
  struct stat st {};
  stat("/proc/self/ns/net", &st);
  return st.st_ino;
}

// Receive drops for a foreign destination MAC on `ifname` in `ns` (ip -s -s -j link).
long long otherhost_drops(const rt::NetNs& ns, const std::string& ifname) {
  auto j = nlohmann::json::parse(ns.ip({"-s", "-s", "-j", "link", "show", "dev", ifname}));
  return j.at(0).at("stats64").at("rx").value("otherhost", 0LL);
}

TEST_F(NetNsFixture, NamesAreUniqueAndNamespacesAreIsolated) {
  rt::NetNs a("tcnsname");
  rt::NetNs b("tcnsname");
  std::string pid = std::to_string(getpid());
  EXPECT_NE(a.name(), b.name());
  EXPECT_EQ(a.name().rfind("tcnsname-" + pid + "-", 0), 0u) << a.name();
  EXPECT_TRUE(rt::netns_listed(a.name()));
  EXPECT_TRUE(rt::netns_listed(b.name()));
  EXPECT_NE(a.inode(), 0u);
  EXPECT_NE(a.inode(), b.inode());
  EXPECT_NE(a.inode(), host_netns_inode());
  // exec_args runs the command in place inside the namespace.
  auto args = a.exec_args({"/usr/bin/readlink", "/proc/self/ns/net"});
  ASSERT_GE(args.size(), 4u);
  EXPECT_EQ(args[0], "/usr/bin/ip");
  EXPECT_EQ(rt::run_checked(args), "net:[" + std::to_string(a.inode()) + "]\n");
  // Only lo, and it is up.
  auto links = nlohmann::json::parse(a.ip({"-j", "link", "show"}));
  ASSERT_EQ(links.size(), 1u) << links.dump();
  EXPECT_EQ(links[0].value("ifname", ""), "lo");
  EXPECT_NE(links[0].value("flags", nlohmann::json::array()).dump().find("\"UP\""),
            std::string::npos);
  // sysctl is per namespace.
  a.sysctl("net.ipv4.tcp_syn_retries", "2");
  EXPECT_EQ(a.sysctl_get("net.ipv4.tcp_syn_retries"), "2");
  EXPECT_NE(b.sysctl_get("net.ipv4.tcp_syn_retries"), "2");
}

TEST_F(NetNsFixture, FailuresThrowWithTheCommandsStderr) {
  try {
    rt::NetNs bad("tc/bad");
    FAIL() << "created " << bad.name();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("Invalid netns name"), std::string::npos) << e.what();
  }
  rt::NetNs ns("tcnsfail");
  try {
    ns.sysctl("net.ipv4.no_such_sysctl", "1");
    FAIL() << "sysctl of a missing key succeeded";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("no_such_sysctl"), std::string::npos) << what;
    EXPECT_NE(what.find("No such file"), std::string::npos) << what;
  }
#ifdef LISTEN_HELPER_BIN
  auto start = steady_clock::now();
  try {
    rt::NsListener l(ns, "192.0.2.1");  // not an address of the namespace
    FAIL() << "listening on a foreign address succeeded";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("Cannot assign requested address"), std::string::npos) << what;
  }
  EXPECT_LT(steady_clock::now() - start, seconds(2));
  EXPECT_TRUE(rt::pids_in_netns(ns.inode()).empty());
#endif
}

TEST_F(NetNsFixture, NoRouteFailsFastWithEnetunreach) {
  rt::NoRoute f;
  auto t = timed_helper_in(f.ns, {rt::NoRoute::kAddr, std::to_string(rt::NoRoute::kPort)});
  ASSERT_EQ(t.conns.size(), 1u);
  EXPECT_EQ(t.conns[0].result, "ENETUNREACH");
  EXPECT_EQ(t.conns[0].daddr, rt::NoRoute::kAddr);
  EXPECT_EQ(t.conns[0].dport, rt::NoRoute::kPort);
  EXPECT_LT(t.took, milliseconds(1000));
  // No SYN was built, let alone sent.
  auto snmp = f.ns.snmp();
  EXPECT_EQ(snmp.at("Tcp.ActiveOpens"), 0);
  EXPECT_EQ(snmp.at("Tcp.OutSegs"), 0);
  std::printf("[   INFO   ] no route: %s in %lld ms\n", t.conns[0].result.c_str(),
              static_cast<long long>(t.took.count()));
}

TEST_F(NetNsFixture, BlackHoleTimesOutWithEtimedout) {
  rt::BlackHole f;
  EXPECT_EQ(f.pair.a.sysctl_get("net.ipv4.tcp_syn_retries"), "1");
  EXPECT_EQ(f.dead_addr, "10.200." + std::to_string(f.pair.subnet) + ".3");
  auto t = timed_helper_in(f.pair.a, {f.dead_addr, std::to_string(rt::BlackHole::kPort)});
  ASSERT_EQ(t.conns.size(), 1u);
  EXPECT_EQ(t.conns[0].result, "ETIMEDOUT");
  EXPECT_EQ(t.conns[0].daddr, f.dead_addr);
  EXPECT_GE(t.took, milliseconds(2000));
  EXPECT_LE(t.took, milliseconds(6000));
  // The SYN and its retransmission left `a` ...
  auto snmp = f.pair.a.snmp();
  EXPECT_EQ(snmp.at("Tcp.ActiveOpens"), 1);
  EXPECT_EQ(snmp.at("Tcp.AttemptFails"), 1);
  EXPECT_EQ(snmp.at("Tcp.RetransSegs"), rt::BlackHole::kSynRetransmits);
  EXPECT_EQ(snmp.at("Tcp.InSegs"), 0);  // nothing came back
  // ... and `b` dropped every one of them for the foreign destination MAC.
  EXPECT_EQ(otherhost_drops(f.pair.b, f.pair.b_if), 1 + rt::BlackHole::kSynRetransmits);
  std::printf("[   INFO   ] black hole: %s in %lld ms (SYN retransmissions: %lld)\n",
              t.conns[0].result.c_str(), static_cast<long long>(t.took.count()),
              snmp.at("Tcp.RetransSegs"));
}

TEST_F(NetNsFixture, RefusedInsideNamespace) {
  rt::Refused f;
  auto t = timed_helper_in(f.ns, {rt::Refused::kAddr, std::to_string(rt::Refused::kPort)});
  ASSERT_EQ(t.conns.size(), 1u);
  EXPECT_EQ(t.conns[0].result, "ECONNREFUSED");
  EXPECT_EQ(t.conns[0].daddr, "127.0.0.1");
  EXPECT_EQ(t.conns[0].dport, rt::Refused::kPort);
  EXPECT_EQ(f.ns.snmp().at("Tcp.OutRsts"), 1);  // the namespace's own loopback refused it
  std::printf("[   INFO   ] refused: %s in %lld ms\n", t.conns[0].result.c_str(),
              static_cast<long long>(t.took.count()));
  if (f.ns.sysctl_get("net.ipv6.conf.lo.disable_ipv6") == "0") {
    auto c6 = rt::run_helper_in(f.ns, {rt::Refused::kAddr6, std::to_string(rt::Refused::kPort)});
    ASSERT_EQ(c6.size(), 1u);
    EXPECT_EQ(c6[0].af, 6);
    EXPECT_EQ(c6[0].result, "ECONNREFUSED");
  }
}

TEST_F(NetNsFixture, ListenerInsideNamespace) {
#ifndef LISTEN_HELPER_BIN
  if (std::getenv("CI")) FAIL() << "listen_helper is not built (LISTEN_HELPER_BIN undefined)";
  GTEST_SKIP() << "listen_helper is not built (LISTEN_HELPER_BIN undefined)";
#endif
  rt::VethPair pair("tclisten");
  {
    // Same namespace, over its loopback.
    rt::NsListener l(pair.a, "127.0.0.1");
    auto c = rt::run_helper_in(pair.a, {"127.0.0.1", std::to_string(l.port())});
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].result, "ok");
    EXPECT_EQ(rt::pids_in_netns(pair.a.inode()), std::vector<pid_t>{l.pid()});
  }
  EXPECT_TRUE(rt::pids_in_netns(pair.a.inode()).empty());
  // Across the veth pair: a -> b.
  rt::NsListener l(pair.b, pair.b_addr);
  auto c = rt::run_helper_in(pair.a, {pair.b_addr, std::to_string(l.port()), "--count", "2"});
  ASSERT_EQ(c.size(), 2u);
  for (auto& conn : c) {
    EXPECT_EQ(conn.result, "ok");
    EXPECT_EQ(conn.saddr, pair.a_addr);
  }
  auto deadline = steady_clock::now() + seconds(2);
  while (l.accepted() < 2 && steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(5));
  EXPECT_EQ(l.accepted(), 2);
}

TEST_F(NetNsFixture, HungHelperIsKilledAndReported) {
  rt::BlackHole f;
  f.pair.a.sysctl("net.ipv4.tcp_syn_retries", "6");  // about two minutes
  // Read after the catch below, on the exception path the analyzer does not follow.
  // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores)
  auto start = steady_clock::now();
  try {
    rt::run_helper_in(f.pair.a, {f.dead_addr, "80"}, milliseconds(300));
    FAIL() << "run_helper_in did not time out";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
  }
  EXPECT_LT(steady_clock::now() - start, seconds(2));
  EXPECT_TRUE(rt::pids_in_netns(f.pair.a.inode()).empty());
}

TEST_F(NetNsFixture, NothingLeftBehind) {
  std::vector<std::string> names, ifnames;
  std::vector<ino_t> inodes;
  {
    rt::NoRoute no_route;
    rt::BlackHole black_hole;
    rt::Refused refused;
    std::optional<rt::NsListener> listener;
#ifdef LISTEN_HELPER_BIN
    listener.emplace(black_hole.pair.b, black_hole.pair.b_addr);
#endif
    for (const rt::NetNs* ns :
         {&no_route.ns, &black_hole.pair.a, &black_hole.pair.b, &refused.ns}) {
      names.push_back(ns->name());
      inodes.push_back(ns->inode());
      EXPECT_TRUE(rt::netns_listed(ns->name())) << ns->name();
    }
    ifnames = {black_hole.pair.a_if, black_hole.pair.b_if};
    // The veth lives only in the test namespaces, never in the host one.
    for (auto& ifname : ifnames) EXPECT_FALSE(rt::host_link_exists(ifname)) << ifname;
    EXPECT_NO_THROW(black_hole.pair.a.ip({"link", "show", "dev", black_hole.pair.a_if}));
    EXPECT_NO_THROW(black_hole.pair.b.ip({"link", "show", "dev", black_hole.pair.b_if}));
  }
  std::string list = rt::run_checked({rt::kIpBin, "netns", "list"});
  std::string links = rt::run_checked({rt::kIpBin, "-o", "link", "show"});
  for (size_t i = 0; i < names.size(); i++) {
    EXPECT_EQ(list.find(names[i]), std::string::npos) << list;
    EXPECT_FALSE(rt::netns_listed(names[i]));
    struct stat st {};
    EXPECT_NE(stat(("/run/netns/" + names[i]).c_str(), &st), 0) << names[i];
    EXPECT_TRUE(rt::pids_in_netns(inodes[i]).empty()) << names[i];
  }
  for (auto& ifname : ifnames) {
    EXPECT_EQ(links.find(ifname), std::string::npos) << links;
    EXPECT_FALSE(rt::host_link_exists(ifname));
  }
}

TEST_F(NetNsFixture, ProcessLeftInsideIsKilled) {
  std::unique_ptr<rt::Tracer> sleeper;  // outlives the namespace: its owner forgot to stop it
  ino_t inode;
  {
    rt::NetNs ns("tcleft");
    inode = ns.inode();
    auto argv = ns.exec_args({"/usr/bin/sleep", "60"});
    sleeper = std::make_unique<rt::Tracer>(argv[0],
                                           std::vector<std::string>(argv.begin() + 1, argv.end()));
    auto deadline = steady_clock::now() + seconds(5);
    while (rt::pids_in_netns(inode).empty() && steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(5));
    ASSERT_EQ(rt::pids_in_netns(inode), std::vector<pid_t>{sleeper->pid()});
  }
  EXPECT_EQ(sleeper->wait_exit(seconds(5)), 128 + SIGKILL);
  EXPECT_TRUE(rt::pids_in_netns(inode).empty());
}

TEST_F(NetNsFixture, CleanupRunsWhenATestThrows) {
  std::string name, a_if;
  try {
    rt::BlackHole f;
    name = f.pair.a.name();
    a_if = f.pair.a_if;
    throw std::runtime_error("test body failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(rt::netns_listed(name));
  EXPECT_FALSE(rt::host_link_exists(a_if));
}

}  // namespace
