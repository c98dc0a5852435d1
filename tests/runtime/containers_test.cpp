// Runtime tests of container awareness: the netns/mntns/cgroup fields of the JSON records, the
// --container columns, and the --netns, --cgroup, --cgroupmap and --mntnsmap filters. Clients run
// in namespaces and cgroups the test creates; every record is matched by pid and destination.
//
// Everything the tests create is owned by an RAII object declared before the processes that use
// it, so it is removed after them, also when an assertion fails or something throws: cgroups
// under <cgroup2>/tcpconnect-test-<pid> (remaining processes are moved back to the test's own
// cgroup before rmdir), pinned maps under /sys/fs/bpf/tcpconnect_test_<pid>_<n> (unlinked), a
// bpffs mounted by the test (unmounted), and network namespaces (rt::NetNs). Cgroups and pins
// left by a test process that was SIGKILLed are removed by the next run.
#include <dirent.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fixture.h"
#include "netns.h"

using namespace std::chrono;
using nlohmann::json;
using rt::Conn;
using rt::Tracer;

namespace {

constexpr const char* kBpfDir = "/sys/fs/bpf";
constexpr const char* kUnshare = "/usr/bin/unshare";

// ---- Mounts, namespaces, files ----

// Undoes the octal escapes (\040 for a space) of /proc/self/mountinfo.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Mount points of the filesystems of type `fstype`, in mount order.
std::vector<std::string> mounts_of(const std::string& fstype) {
  std::vector<std::string> res;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream pre(line.substr(0, sep)), post(line.substr(sep + 3));
    std::string id, parent, dev, root, mnt, type;
    pre >> id >> parent >> dev >> root >> mnt;
    post >> type;
    if (type == fstype) res.push_back(unescape(mnt));
  }
  return res;
}

// Where cgroup2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid layouts), or "".
std::string cgroup2_mount() {
  auto m = mounts_of("cgroup2");
  return m.empty() ? "" : m.front();
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    throw std::runtime_error("stat " + path + ": " + std::strerror(errno));
  return st.st_ino;
}

ino_t host_netns() { return inode_of("/proc/self/ns/net"); }
ino_t host_mntns() { return inode_of("/proc/self/ns/mnt"); }

// The cgroup v2 path of `pid` (the "0::" line of /proc/PID/cgroup), relative to the mount.
std::string cgroup_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  throw std::runtime_error("no cgroup v2 entry for pid " + std::to_string(pid));
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text << std::flush;
  if (!out)
    throw std::runtime_error("write '" + text + "' to " + path + ": " + std::strerror(errno));
}

std::string random_hex64() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  std::string s;
  for (int i = 0; i < 4; i++) s += fmt::format("{:016x}", gen());
  return s;
}

// Absolute path of a system tool (the test's PATH may lack the sbin directories), or "".
std::string find_bin(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}) {
    std::string p = dir + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

std::string bpftool() { return find_bin("bpftool"); }

// ---- Cgroups ----

// Moves `pid` into the cgroup directory `dir`.
void move_to(pid_t pid, const std::string& dir) {
  write_file(dir + "/cgroup.procs", std::to_string(pid));
}

// Removes the cgroup `dir` and its descendants, deepest first. With `home` set, processes still
// inside are moved there first. Never throws; with `report`, failures go to stderr.
void remove_cgroup_tree(const std::string& dir, const std::string& home, bool report) {
  if (DIR* d = opendir(dir.c_str())) {
    std::vector<std::string> subs;
    while (dirent* e = readdir(d))
      if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 &&
          std::strcmp(e->d_name, "..") != 0)
        subs.push_back(dir + "/" + e->d_name);
    closedir(d);
    for (const auto& s : subs) remove_cgroup_tree(s, home, report);
  }
  if (!home.empty()) {
    std::ifstream in(dir + "/cgroup.procs");
    pid_t pid;
    while (in >> pid) {
      try {
        move_to(pid, home);
      } catch (const std::exception& e) {
        if (report) std::fprintf(stderr, "cgroup cleanup: %s\n", e.what());
      }
    }
  }
  // A process that just exited can keep the cgroup busy for a moment.
  auto deadline = steady_clock::now() + seconds(3);
  while (rmdir(dir.c_str()) != 0) {
    if (errno == ENOENT) return;
    if (errno != EBUSY || steady_clock::now() >= deadline) {
      if (report)
        std::fprintf(stderr, "cgroup cleanup: rmdir %s: %s\n", dir.c_str(), std::strerror(errno));
      return;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
}

// A cgroup v2 subtree owned by the test: <cg2>/tcpconnect-test-<pid><suffix>. The destructor
// moves any process left inside back to the test's own cgroup and removes the subtree.
class TestCgroup {
 public:
  explicit TestCgroup(std::string cg2, const std::string& suffix = "") : cg2_(std::move(cg2)) {
    sweep_stale();
    rel_ = "/tcpconnect-test-" + std::to_string(getpid()) + suffix;
    path_ = cg2_ + rel_;
    if (mkdir(path_.c_str(), 0755) != 0)
      throw std::runtime_error("mkdir " + path_ + ": " + std::strerror(errno));
    home_ = cg2_ + cgroup_of(getpid());
  }
  ~TestCgroup() { remove_cgroup_tree(path_, home_, true); }
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;

  const std::string& path() const { return path_; }
  const std::string& rel() const { return rel_; }
  // Creates path()/sub (and missing parents); returns its absolute path.
  std::string make(const std::string& sub) const {
    std::string p = path_;
    std::istringstream parts(sub);
    std::string part;
    while (std::getline(parts, part, '/')) {
      if (part.empty()) continue;
      p += "/" + part;
      if (mkdir(p.c_str(), 0755) != 0 && errno != EEXIST)
        throw std::runtime_error("mkdir " + p + ": " + std::strerror(errno));
    }
    return p;
  }
  // The path of an absolute cgroup directory as the tool reports it.
  std::string rel_of(const std::string& abs) const { return abs.substr(cg2_.size()); }

 private:
  std::string cg2_, rel_, path_, home_;

  // Trees left by test processes that were killed (SIGKILL cannot be cleaned up after); only
  // empty ones are removed.
  void sweep_stale() const {
    DIR* d = opendir(cg2_.c_str());
    if (!d) return;
    std::vector<std::string> stale;
    const std::string prefix = "tcpconnect-test-";
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (e->d_type != DT_DIR || name.rfind(prefix, 0) != 0) continue;
      long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
      if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
        stale.push_back(cg2_ + "/" + name);
    }
    closedir(d);
    for (const auto& s : stale) remove_cgroup_tree(s, "", false);
  }
};

// ---- BPF filesystem and pinned maps ----

// Makes sure bpffs is mounted at /sys/fs/bpf; unmounts it at the end only if it mounted it.
class BpfFs {
 public:
  BpfFs() {
    for (const auto& m : mounts_of("bpf"))
      if (m == kBpfDir) return;
    if (mount("bpf", kBpfDir, "bpf", 0, "mode=0700") != 0)
      throw std::runtime_error(std::string("mount -t bpf bpf ") + kBpfDir + ": " +
                               std::strerror(errno));
    mounted_ = true;
  }
  ~BpfFs() {
    if (mounted_ && umount2(kBpfDir, MNT_DETACH) != 0)
      std::fprintf(stderr, "bpffs cleanup: umount %s: %s\n", kBpfDir, std::strerror(errno));
  }
  BpfFs(const BpfFs&) = delete;
  BpfFs& operator=(const BpfFs&) = delete;

 private:
  bool mounted_ = false;
};

// The 8 bytes of `v`, little-endian, as bpftool's "hex" arguments.
std::vector<std::string> le_hex(uint64_t v, int bytes = 8) {
  std::vector<std::string> out;
  for (int i = 0; i < bytes; i++) out.push_back(fmt::format("{:02x}", (v >> (8 * i)) & 0xff));
  return out;
}

// A map created and pinned by bpftool, as users of bcc's --cgroupmap/--mntnsmap do. The
// destructor removes the pin (the map goes away with its last reference).
class PinnedMap {
 public:
  PinnedMap(const std::string& type, int key_size, int value_size, const std::string& name)
      : value_size_(value_size) {
    sweep_stale();
    static int seq = 0;
    path_ = fmt::format("{}/{}{}_{}", kBpfDir, kPrefix, getpid(), seq++);
    rt::run_checked({bpftool(), "map", "create", path_, "type", type, "key",
                     std::to_string(key_size), "value", std::to_string(value_size), "entries",
                     "128", "name", name, "flags", "0"});
  }
  ~PinnedMap() {
    if (unlink(path_.c_str()) != 0)
      std::fprintf(stderr, "map cleanup: rm %s: %s\n", path_.c_str(), std::strerror(errno));
  }
  PinnedMap(const PinnedMap&) = delete;
  PinnedMap& operator=(const PinnedMap&) = delete;

  const std::string& path() const { return path_; }
  // Adds an 8-byte key (little-endian, as the kernel stores a u64) with an all-zero value.
  void put(uint64_t key) const {
    std::vector<std::string> argv = {bpftool(), "map", "update", "pinned", path_, "key", "hex"};
    for (auto& b : le_hex(key)) argv.push_back(b);
    argv.emplace_back("value");
    argv.emplace_back("hex");
    for (int i = 0; i < value_size_; i++) argv.emplace_back("00");
    rt::run_checked(argv);
  }
  // The map's 8-byte keys, read back with `bpftool map dump`.
  std::set<uint64_t> keys() const {
    std::set<uint64_t> res;
    auto dump = json::parse(rt::run_checked({bpftool(), "-j", "map", "dump", "pinned", path_}));
    for (auto& e : dump) {
      uint64_t k = 0;
      auto& bytes = e.at("key");
      for (size_t i = 0; i < bytes.size(); i++)
        k |= std::stoull(bytes[i].get<std::string>(), nullptr, 16) << (8 * i);
      res.insert(k);
    }
    return res;
  }

 private:
  static constexpr const char* kPrefix = "tcpconnect_test_";
  std::string path_;
  int value_size_;

  // Pins left by test processes that were killed: their pid is in the name.
  static void sweep_stale() {
    DIR* d = opendir(kBpfDir);
    if (!d) return;
    const std::string prefix = kPrefix;
    std::vector<std::string> stale;
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind(prefix, 0) != 0) continue;
      long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
      if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
        stale.push_back(std::string(kBpfDir) + "/" + name);
    }
    closedir(d);
    for (auto& s : stale) unlink(s.c_str());
  }
};

// ---- Records ----

// The records of the connection `c` made (same pid, destination address and port).
std::vector<json> recs_of(const std::vector<json>& recs, const Conn& c) {
  std::vector<json> out;
  for (auto& j : recs)
    if (j.value("pid", -1) == c.pid && j.value("daddr", "") == c.daddr &&
        j.value("dport", -1) == c.dport)
      out.push_back(j);
  return out;
}

std::string dump(const std::vector<json>& recs) {
  std::string s;
  for (auto& j : recs) s += j.dump() + "\n";
  return s;
}

// A record's field, or the string "<missing>" so that a comparison fails readably.
json field(const json& j, const std::string& key) {
  return j.contains(key) ? j.at(key) : json("<missing " + key + ">");
}

bool is_hex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::vector<std::string> tokens(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  std::string t;
  while (in >> t) out.push_back(t);
  return out;
}

// ---- BPF programs ----

// id -> name of every loaded BPF program.
std::map<int, std::string> loaded_progs() {
  std::map<int, std::string> res;
  auto progs = json::parse(rt::run_checked({bpftool(), "-j", "prog", "show"}));
  for (auto& p : progs) res[p.value("id", -1)] = p.value("name", "");
  return res;
}

std::set<int> ids_named(const std::set<std::string>& names) {
  std::set<int> ids;
  for (auto& [id, name] : loaded_progs())
    if (names.contains(name)) ids.insert(id);
  return ids;
}

class Containers : public rt::RuntimeTest {
 protected:
  // Skips the test (fails it under CI) for a missing requirement; returns whether it can go on.
  bool require(bool ok, const std::string& what) {
    if (ok) return true;
    if (std::getenv("CI"))
      ADD_FAILURE() << "container tests cannot run in CI: " << what;
    else
      [&] { GTEST_SKIP() << what; }();
    return false;
  }
  bool require_cgroup2() {
    cg2_ = cgroup2_mount();
    return require(!cg2_.empty(), "cgroup2 is not mounted (no cgroup2 entry in mountinfo)");
  }
  bool require_bpftool() { return require(!bpftool().empty(), "bpftool is not installed"); }

  std::unique_ptr<Tracer> start_json(std::vector<std::string> args) {
    args.insert(args.begin(), "-j");
    return start(std::move(args), rt::kJsonStart);
  }

  // conn_helper waiting on stdin, already moved into the cgroup `dir`.
  std::unique_ptr<rt::PendingHelper> client_in(const std::string& dir, const std::string& rel,
                                               int port) {
    auto h = std::make_unique<rt::PendingHelper>(
        std::vector<std::string>{"--wait-stdin", "127.0.0.1", std::to_string(port)});
    move_to(h->pid(), dir);
    if (cgroup_of(h->pid()) != rel)
      throw std::runtime_error("pid " + std::to_string(h->pid()) + " is in " + cgroup_of(h->pid()) +
                               ", not " + rel);
    return h;
  }

  // Runs `h` and returns its one successful connection.
  static Conn go(rt::PendingHelper& h) {
    auto c = h.go();
    if (c.size() != 1 || c[0].result != "ok")
      throw std::runtime_error("conn_helper pid " + std::to_string(h.pid()) + " did not connect");
    return c[0];
  }
  static Conn run(const std::vector<std::string>& args) {
    auto c = rt::run_helper(args);
    if (c.size() != 1) throw std::runtime_error("conn_helper made " + std::to_string(c.size()));
    return c[0];
  }

  std::string cg2_;
};

// ---- Network namespaces ----

TEST_F(Containers, NetnsIsReported) {
  rt::Refused r;  // a fresh namespace: only our listener in it
  rt::NsListener ns_listener(r.ns, "127.0.0.1");
  rt::Listener host_listener("127.0.0.1");
  auto t = start_json({});
  auto in_ok = rt::run_helper_in(r.ns, {"127.0.0.1", std::to_string(ns_listener.port())});
  auto in_refused = rt::run_helper_in(r.ns, {r.kAddr, std::to_string(r.kPort)});
  auto host = run({"127.0.0.1", std::to_string(host_listener.port())});
  auto recs = records(*t, "connect");
  ASSERT_EQ(in_ok.size(), 1u);
  ASSERT_EQ(in_ok[0].result, "ok");
  ASSERT_EQ(in_refused.size(), 1u);
  ASSERT_EQ(in_refused[0].result, "ECONNREFUSED");

  for (const Conn& c : {in_ok[0], in_refused[0]}) {
    auto mine = recs_of(recs, c);
    ASSERT_EQ(mine.size(), 1u) << "pid " << c.pid << " port " << c.dport << "\n" << dump(recs);
    EXPECT_EQ(field(mine[0], "netns"), json(static_cast<uint64_t>(r.ns.inode()))) << mine[0];
    EXPECT_NE(field(mine[0], "netns"), json(static_cast<uint64_t>(host_netns()))) << mine[0];
  }
  auto mine = recs_of(recs, host);
  ASSERT_EQ(mine.size(), 1u) << dump(recs);
  const json& j = mine[0];
  EXPECT_EQ(field(j, "netns"), json(static_cast<uint64_t>(host_netns()))) << j;
  EXPECT_EQ(field(j, "mntns"), json(static_cast<uint64_t>(host_mntns()))) << j;
  // The helper inherits the test's cgroup.
  std::string cg2 = cgroup2_mount();
  if (!cg2.empty()) {
    std::string own = cgroup_of(getpid());
    EXPECT_EQ(field(j, "cgroup"), json(own)) << j;
    EXPECT_EQ(field(j, "cgroup_id"), json(static_cast<uint64_t>(inode_of(cg2 + own)))) << j;
  }
  ASSERT_TRUE(j.contains("container") && j["container"].is_string()) << j;
  std::string container = j["container"];
  EXPECT_TRUE(container.empty() || is_hex64(container)) << j;
}

TEST_F(Containers, NetnsFilter) {
  rt::Refused r;
  rt::NsListener ns_listener(r.ns, "127.0.0.1");
  rt::Listener host_listener("127.0.0.1");
  const std::vector<std::string> ns_args = {"127.0.0.1", std::to_string(ns_listener.port())};
  const std::vector<std::string> host_args = {"127.0.0.1", std::to_string(host_listener.port())};
  {
    SCOPED_TRACE("--netns <test namespace>");
    auto t = start_json({"--netns", std::to_string(r.ns.inode())});
    auto in = rt::run_helper_in(r.ns, ns_args);
    auto host = run(host_args);
    auto recs = records(*t, "connect");
    ASSERT_EQ(in.size(), 1u);
    auto mine = recs_of(recs, in[0]);
    ASSERT_EQ(mine.size(), 1u) << dump(recs);
    EXPECT_EQ(field(mine[0], "netns"), json(static_cast<uint64_t>(r.ns.inode())));
    EXPECT_TRUE(recs_of(recs, host).empty()) << dump(recs);
    // Nothing else runs in the test's namespace.
    EXPECT_EQ(recs.size(), 1u) << dump(recs);
  }
  {
    SCOPED_TRACE("--netns <host namespace>");
    auto t = start_json({"--netns", std::to_string(host_netns())});
    auto in = rt::run_helper_in(r.ns, ns_args);
    auto host = run(host_args);
    auto recs = records(*t, "connect");
    ASSERT_EQ(in.size(), 1u);
    EXPECT_TRUE(recs_of(recs, in[0]).empty()) << dump(recs);
    auto mine = recs_of(recs, host);
    ASSERT_EQ(mine.size(), 1u) << dump(recs);
    EXPECT_EQ(field(mine[0], "netns"), json(static_cast<uint64_t>(host_netns())));
    for (auto& j : recs)
      EXPECT_EQ(field(j, "netns"), json(static_cast<uint64_t>(host_netns()))) << j;
  }
}

// ---- Cgroups ----

TEST_F(Containers, DockerCgroupIsReported) {
  if (!require_cgroup2()) return;
  TestCgroup cg(cg2_);
  const std::string id = random_hex64();
  const std::string scope = cg.make("docker-" + id + ".scope");
  const std::string rel = cg.rel() + "/docker-" + id + ".scope";
  ASSERT_EQ(cg.rel_of(scope), rel);
  rt::Listener l("127.0.0.1");
  {
    SCOPED_TRACE("-j");
    auto h = client_in(scope, rel, l.port());
    auto t = start_json({});
    Conn c = go(*h);
    auto recs = records(*t, "connect");
    auto mine = recs_of(recs, c);
    ASSERT_EQ(mine.size(), 1u) << dump(recs);
    const json& j = mine[0];
    EXPECT_EQ(field(j, "container"), json(id)) << j;
    EXPECT_EQ(field(j, "cgroup"), json(rel)) << j;
    EXPECT_EQ(field(j, "cgroup_id"), json(static_cast<uint64_t>(inode_of(scope)))) << j;
    EXPECT_EQ(field(j, "netns"), json(static_cast<uint64_t>(host_netns()))) << j;
    EXPECT_EQ(field(j, "mntns"), json(static_cast<uint64_t>(host_mntns()))) << j;
  }
  {
    SCOPED_TRACE("--container");
    auto h = client_in(scope, rel, l.port());
    auto t = start({"--container"}, "PID");
    Conn c = go(*h);
    EXPECT_EQ(t->stop(), 0) << t->err();
    auto lines = t->out_lines();
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(tokens(lines[0]), (std::vector<std::string>{"PID", "COMM", "IP", "SADDR", "DADDR",
                                                          "DPORT", "NETNS", "CONTAINER"}))
        << lines[0];
    auto mine = rt::lines_for_pid(lines, c.pid);
    ASSERT_EQ(mine.size(), 1u) << t->out();
    EXPECT_EQ(tokens(mine[0]),
              (std::vector<std::string>{std::to_string(c.pid), "conn_helper", "4", c.saddr, c.daddr,
                                        std::to_string(c.dport), std::to_string(host_netns()),
                                        id.substr(0, 12)}))
        << mine[0];
  }
}

// Other runtimes' layouts in one trace, and a cgroup that is no container's.
TEST_F(Containers, ContainerIdLayouts) {
  if (!require_cgroup2()) return;
  TestCgroup cg(cg2_);
  struct Case {
    std::string sub, id;
  };
  std::vector<Case> cases;
  for (auto layout : {"docker/{}", "kubepods.slice/kubepods-pod1.slice/cri-containerd-{}.scope",
                      "crio-{}.scope", "machine.slice/libpod-{}.scope"}) {
    std::string id = random_hex64();
    cases.push_back({fmt::format(fmt::runtime(layout), id), id});
  }
  // At most 12 characters: the column is 12 wide, like COMM.
  cases.push_back({"system.slice/web.service", ""});
  rt::Listener l("127.0.0.1");
  std::vector<std::unique_ptr<rt::PendingHelper>> helpers;
  for (const auto& k : cases)
    helpers.push_back(client_in(cg.make(k.sub), cg.rel() + "/" + k.sub, l.port()));
  auto t = start_json({});
  std::vector<Conn> conns;
  for (const auto& h : helpers) conns.push_back(go(*h));
  auto recs = records(*t, "connect");
  for (size_t i = 0; i < cases.size(); i++) {
    SCOPED_TRACE(cases[i].sub);
    auto mine = recs_of(recs, conns[i]);
    ASSERT_EQ(mine.size(), 1u) << dump(recs);
    EXPECT_EQ(field(mine[0], "container"), json(cases[i].id)) << mine[0];
    EXPECT_EQ(field(mine[0], "cgroup"), json(cg.rel() + "/" + cases[i].sub)) << mine[0];
    EXPECT_EQ(field(mine[0], "cgroup_id"),
              json(static_cast<uint64_t>(inode_of(cg.path() + "/" + cases[i].sub))))
        << mine[0];
  }
  // Text: no container id, so the last component of the cgroup path.
  auto h =
      client_in(cg.path() + "/" + cases.back().sub, cg.rel() + "/" + cases.back().sub, l.port());
  auto text = start({"--container"}, "PID");
  Conn c = go(*h);
  EXPECT_EQ(text->stop(), 0) << text->err();
  auto mine = rt::lines_for_pid(text->out_lines(), c.pid);
  ASSERT_EQ(mine.size(), 1u) << text->out();
  auto cols = tokens(mine[0]);
  ASSERT_EQ(cols.size(), 8u) << mine[0];
  EXPECT_EQ(cols[6], std::to_string(host_netns())) << mine[0];
  EXPECT_EQ(cols[7], "web.service") << mine[0];
}

TEST_F(Containers, CgroupFilter) {
  if (!require_cgroup2()) return;
  TestCgroup cg(cg2_);
  // A sibling whose name starts with the filtered directory's name: a prefix match is not enough.
  TestCgroup sibling(cg2_, "-other");
  const std::string id = random_hex64();
  const std::string sub = "docker-" + id + ".scope";
  const std::string scope = cg.make(sub);
  rt::Listener l("127.0.0.1");
  auto in_scope = client_in(scope, cg.rel() + "/" + sub, l.port());
  auto in_parent = client_in(cg.path(), cg.rel(), l.port());
  auto in_sibling = client_in(sibling.path(), sibling.rel(), l.port());
  auto t = start_json({"--cgroup", cg.path()});
  Conn c_scope = go(*in_scope);
  Conn c_parent = go(*in_parent);
  Conn c_sibling = go(*in_sibling);
  Conn c_own = run({"127.0.0.1", std::to_string(l.port())});
  auto recs = records(*t, "connect");
  auto mine = recs_of(recs, c_scope);
  ASSERT_EQ(mine.size(), 1u) << dump(recs);
  EXPECT_EQ(field(mine[0], "container"), json(id)) << mine[0];
  EXPECT_EQ(recs_of(recs, c_parent).size(), 1u) << dump(recs);
  EXPECT_TRUE(recs_of(recs, c_sibling).empty()) << dump(recs);
  EXPECT_TRUE(recs_of(recs, c_own).empty()) << dump(recs);
  EXPECT_EQ(recs.size(), 2u) << dump(recs);  // nothing else runs in the test's cgroups
}

TEST_F(Containers, CgroupMap) {
  if (!require_cgroup2() || !require_bpftool()) return;
  BpfFs bpffs;
  TestCgroup cg(cg2_);
  const std::string x = cg.make("x"), y = cg.make("y");
  PinnedMap map("hash", 8, 8, "cgroupset");
  map.put(inode_of(x));
  ASSERT_EQ(map.keys(), std::set<uint64_t>{inode_of(x)});
  rt::Listener l("127.0.0.1");
  auto hx = client_in(x, cg.rel() + "/x", l.port());
  auto hy = client_in(y, cg.rel() + "/y", l.port());
  auto t = start_json({"--cgroupmap", map.path()});
  Conn cx = go(*hx);
  Conn cy = go(*hy);
  Conn own = run({"127.0.0.1", std::to_string(l.port())});
  // The map is read live by the kernel side, as in bcc: adding Y while tracing takes effect.
  map.put(inode_of(y));
  ASSERT_EQ(map.keys(), (std::set<uint64_t>{inode_of(x), inode_of(y)}));
  auto hy2 = client_in(y, cg.rel() + "/y", l.port());
  Conn cy2 = go(*hy2);
  auto recs = records(*t, "connect");
  auto kept = recs_of(recs, cx);
  ASSERT_EQ(kept.size(), 1u) << dump(recs);
  EXPECT_EQ(field(kept[0], "cgroup_id"), json(static_cast<uint64_t>(inode_of(x)))) << kept[0];
  EXPECT_TRUE(recs_of(recs, cy).empty()) << dump(recs);
  EXPECT_TRUE(recs_of(recs, own).empty()) << dump(recs);
  kept = recs_of(recs, cy2);
  ASSERT_EQ(kept.size(), 1u) << dump(recs);
  EXPECT_EQ(field(kept[0], "cgroup_id"), json(static_cast<uint64_t>(inode_of(y)))) << kept[0];
  EXPECT_EQ(recs.size(), 2u) << dump(recs);
}

// ---- Mount namespaces ----

TEST_F(Containers, MntnsMap) {
  if (!require_bpftool()) return;
  BpfFs bpffs;
  // unshare execs conn_helper in place: its PID is the one spawned, in a new mount namespace.
  rt::Listener l("127.0.0.1");
  rt::PendingHelper h({kUnshare, "--mount", "--propagation", "private"},
                      {"--wait-stdin", "127.0.0.1", std::to_string(l.port())});
  const ino_t mntns = inode_of("/proc/" + std::to_string(h.pid()) + "/ns/mnt");
  ASSERT_NE(mntns, host_mntns());
  PinnedMap map("hash", 8, 4, "mnt_ns_set");  // value 4 as in bcc's docs
  map.put(mntns);
  ASSERT_EQ(map.keys(), std::set<uint64_t>{mntns});
  auto t = start_json({"--mntnsmap", map.path()});
  Conn in = go(h);
  Conn host = run({"127.0.0.1", std::to_string(l.port())});
  auto recs = records(*t, "connect");
  auto mine = recs_of(recs, in);
  ASSERT_EQ(mine.size(), 1u) << dump(recs);
  EXPECT_EQ(field(mine[0], "mntns"), json(static_cast<uint64_t>(mntns))) << mine[0];
  EXPECT_EQ(field(mine[0], "netns"), json(static_cast<uint64_t>(host_netns()))) << mine[0];
  EXPECT_TRUE(recs_of(recs, host).empty()) << dump(recs);
  EXPECT_EQ(recs.size(), 1u) << dump(recs);
}

// ---- Errors ----

TEST_F(Containers, BadArguments) {
  if (!require_bpftool()) return;
  BpfFs bpffs;
  // The tool's program names, from a run that works, so the leak check follows its program set.
  std::set<std::string> names;
  {
    auto t = start_json({});
    for (int id : rt::prog_ids_of(t->pid())) names.insert(loaded_progs()[id]);
    EXPECT_EQ(t->stop(), 0) << t->err();
  }
  ASSERT_FALSE(names.empty());
  const std::set<int> before = ids_named(names);

  PinnedMap array("array", 4, 8, "tcarray");
  PinnedMap key4("hash", 4, 8, "tckey4");
  std::vector<std::vector<std::string>> cases = {
      {"--netns", "abc"},
      {"--netns", "12abc"},
      {"--cgroup", "/nonexistent/tcpconnect-test"},
      {"--cgroup", "/tmp"},
      {"--cgroupmap", "/nonexistent/tcpconnect-test"},
      {"--cgroupmap", "/tmp"},
      {"--cgroupmap", array.path()},
      {"--cgroupmap", key4.path()},
      {"--mntnsmap", "/nonexistent/tcpconnect-test"},
      {"--mntnsmap", "/tmp"},
      {"--mntnsmap", array.path()},
      {"--mntnsmap", key4.path()},
  };
  if (std::string cg2 = cgroup2_mount(); !cg2.empty())
    cases.push_back({"--cgroup", cg2 + "/cgroup.procs"});  // a file, not a directory
  for (auto& v1 : mounts_of("cgroup")) {  // a cgroup v1 hierarchy, where one is mounted
    cases.push_back({"--cgroup", v1});
    break;
  }
  for (auto& args : cases) {
    std::string cmd = "tcpconnect " + args[0] + " " + args[1];
    SCOPED_TRACE(cmd);
    Tracer t(args);
    EXPECT_EQ(t.wait_exit(seconds(20)), 2) << t.err();
    EXPECT_EQ(t.out(), "");
    // Bad input is one line and no hint (README: exit 2, "one line on stderr").
    auto err = rt::split_lines(t.err());
    EXPECT_EQ(err.size(), 1u) << t.err();
    if (!err.empty()) {
      EXPECT_EQ(err[0].rfind("tcpconnect: ", 0), 0u) << err[0];
    }
  }
  // A failed start leaves no program behind (freeing one after its process exits is deferred).
  std::set<int> left;
  auto deadline = steady_clock::now() + seconds(5);
  do {
    left.clear();
    for (int id : ids_named(names))
      if (!before.contains(id)) left.insert(id);
    if (left.empty()) break;
    std::this_thread::sleep_for(milliseconds(50));
  } while (steady_clock::now() < deadline);
  EXPECT_TRUE(left.empty()) << left.size() << " tcpconnect programs still loaded, first id "
                            << *left.begin();
}

TEST_F(Containers, CgroupMapWithoutBpffs) {
  // In a private mount namespace with every bpffs unmounted; the host's mounts are untouched.
  const std::string script =
      "PATH=/usr/sbin:/usr/bin:/sbin:/bin; umount -a -t bpf 2>/dev/null; "
      "if grep -q ' - bpf ' /proc/self/mountinfo; then echo 'bpffs still mounted' >&2; exit 99; "
      "fi; exec \"$0\" --cgroupmap /sys/fs/bpf/tcpconnect_test_none";
  Tracer t(kUnshare,
           {"--mount", "--propagation", "private", "/bin/sh", "-c", script, TCPCONNECT_BIN});
  EXPECT_EQ(t.wait_exit(seconds(20)), 1) << t.err();
  EXPECT_EQ(t.out(), "");
  // An environment problem (exit 1): one line, with what to do after "; hint: ".
  auto err = rt::split_lines(t.err());
  ASSERT_EQ(err.size(), 1u) << t.err();
  EXPECT_NE(err[0].find("; hint: mount it (mount -t bpf bpf /sys/fs/bpf)"), std::string::npos)
      << t.err();
  EXPECT_EQ(err[0].rfind("tcpconnect: ", 0), 0u) << err[0];
  std::string lower = err[0];
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  EXPECT_NE(lower.find("bpf"), std::string::npos) << err[0];
}

// Without a bpffs at /sys/fs/bpf, a map path elsewhere that does not exist is named as missing:
// the bpffs hint is for paths under /sys/fs/bpf only. A usage error: one line, exit 2.
TEST_F(Containers, MissingMapOutsideBpffsWithoutBpffs) {
  const std::string path = "/tmp/tcpconnect-test-does-not-exist";
  for (const std::string opt : {"--cgroupmap", "--mntnsmap"}) {
    SCOPED_TRACE(opt);
    const std::string script =
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin; umount -a -t bpf 2>/dev/null; "
        "if grep -q ' - bpf ' /proc/self/mountinfo; then echo 'bpffs still mounted' >&2; exit 99; "
        "fi; exec \"$0\" " +
        opt + " " + path;
    Tracer t(kUnshare,
             {"--mount", "--propagation", "private", "/bin/sh", "-c", script, TCPCONNECT_BIN});
    EXPECT_EQ(t.wait_exit(seconds(20)), 2) << t.err();
    EXPECT_EQ(t.out(), "");
    EXPECT_EQ(t.err(),
              "tcpconnect: cannot open " + opt + " " + path + ": No such file or directory\n");
  }
}

}  // namespace
