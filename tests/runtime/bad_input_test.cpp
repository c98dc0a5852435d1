// Bad-input campaign: one table of invalid invocations of the real binary. Each must print
// exactly one line on stderr (the expected one), nothing on stdout, and exit with 2 (usage) or 1
// (environment); and the whole table must leave no BPF program or link of ours behind.
#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fixture.h"
#include "harness.h"
#include "netns.h"

namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// Absolute path of a system tool (the test's PATH may lack the sbin directories), or "".
std::string find_bin(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}) {
    std::string p = dir + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Mount points of filesystem type `type`, from /proc/self/mountinfo.
std::vector<std::string> mounts_of(const std::string& type) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    const auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream pre(line.substr(0, sep)), post(line.substr(sep + 3));
    std::string id, parent, dev, root, mnt, fstype;
    pre >> id >> parent >> dev >> root >> mnt;
    post >> fstype;
    if (fstype == type) out.push_back(mnt);
  }
  return out;
}

// Everything a row needs from the file system, removed again by the destructor: a scratch
// directory with a regular file, and a private bpffs instance mounted inside it holding maps
// that --cgroupmap/--mntnsmap must refuse. Unmounting the instance drops its pins.
class Scratch {
 public:
  Scratch() {
    char tmpl[] = "/tmp/tcpconnect-badinput.XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    dir_ = tmpl;
    std::ofstream(dir_ + "/file") << "not a map\n";
    bpf_ = dir_ + "/bpf";
    if (mkdir(bpf_.c_str(), 0700) != 0 || mount("bpf", bpf_.c_str(), "bpf", 0, "mode=0700") != 0)
      throw std::runtime_error("mount -t bpf bpf " + bpf_ + ": " + std::strerror(errno));
    mounted_ = true;
    if (mkdir((bpf_ + "/dir").c_str(), 0700) != 0)
      throw std::runtime_error("mkdir in bpffs: " + std::string(std::strerror(errno)));
  }
  ~Scratch() {
    if (mounted_ && umount2(bpf_.c_str(), MNT_DETACH) != 0)
      std::fprintf(stderr, "cleanup: umount %s: %s\n", bpf_.c_str(), std::strerror(errno));
    for (const std::string& p : {dir_ + "/file", bpf_, dir_}) std::remove(p.c_str());
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  // Pins a map made by bpftool, as a user of bcc's --cgroupmap would; returns its path.
  std::string map(const std::string& name, const std::string& type, int key, int value,
                  int entries = 16) const {
    std::string path = bpf_ + "/" + name;
    rt::run_checked({find_bin("bpftool"), "map", "create", path, "type", type, "key",
                     std::to_string(key), "value", std::to_string(value), "entries",
                     std::to_string(entries), "name", name, "flags", "0"});
    return path;
  }
  const std::string& dir() const { return dir_; }
  const std::string& bpf() const { return bpf_; }

 private:
  std::string dir_, bpf_;
  bool mounted_ = false;
};

// Makes sure a bpffs is mounted at /sys/fs/bpf (the tool reports a missing one as an environment
// error with a hint); unmounts it at the end only if it mounted it.
class SysBpfFs {
 public:
  SysBpfFs() {
    for (const auto& m : mounts_of("bpf"))
      if (m == "/sys/fs/bpf") return;
    if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0)
      throw std::runtime_error(std::string("mount -t bpf bpf /sys/fs/bpf: ") +
                               std::strerror(errno));
    mounted_ = true;
  }
  ~SysBpfFs() {
    if (mounted_ && umount2("/sys/fs/bpf", MNT_DETACH) != 0)
      std::fprintf(stderr, "cleanup: umount /sys/fs/bpf: %s\n", std::strerror(errno));
  }
  SysBpfFs(const SysBpfFs&) = delete;
  SysBpfFs& operator=(const SysBpfFs&) = delete;

 private:
  bool mounted_ = false;
};

// ---- BPF objects of ours ----

// Names of the programs in the tool's BPF object, read from the object's BTF (the build puts it
// next to the binary).
std::set<std::string> our_prog_names() {
  std::string bin = TCPCONNECT_BIN;
  const std::string obj = bin.substr(0, bin.rfind('/')) + "/bpf/tc_bpf.bpf.o";
  const auto btf =
      json::parse(rt::run_checked({find_bin("bpftool"), "-j", "btf", "dump", "file", obj}));
  std::set<std::string> names;
  for (const auto& t : btf.at("types"))
    if (t.value("kind", "") == "FUNC") names.insert(t.value("name", ""));
  return names;
}

// The loaded programs named as ours (id -> name) and every link (id -> program id).
struct BpfState {
  std::map<int, std::string> progs;
  std::map<int, int> links;
};

BpfState bpf_state(const std::set<std::string>& names) {
  BpfState s;
  const std::string tool = find_bin("bpftool");
  for (const auto& p : json::parse(rt::run_checked({tool, "-j", "prog", "show"})))
    if (names.contains(p.value("name", ""))) s.progs[p.value("id", -1)] = p.value("name", "");
  for (const auto& l : json::parse(rt::run_checked({tool, "-j", "link", "show"})))
    s.links[l.value("id", -1)] = l.value("prog_id", -1);
  return s;
}

// Program and link ids some live process holds a descriptor of (/proc/PID/fdinfo).
std::set<int> held_ids(const char* key) {
  std::set<int> ids;
  const std::string k = key;
  DIR* proc = opendir("/proc");
  if (!proc) return ids;
  while (dirent* e = readdir(proc)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    const std::string dir = std::string("/proc/") + e->d_name + "/fdinfo";
    DIR* d = opendir(dir.c_str());
    if (!d) continue;  // gone meanwhile
    while (dirent* f = readdir(d)) {
      if (f->d_name[0] == '.') continue;
      std::ifstream in(dir + "/" + f->d_name);
      std::string line;
      while (std::getline(in, line))
        if (line.rfind(k, 0) == 0) ids.insert(std::stoi(line.substr(k.size())));
    }
    closedir(d);
  }
  closedir(proc);
  return ids;
}

// Our programs (and links to them) that appeared since `before` and that no live process holds:
// nothing but a leak keeps those. Other people's tracers, running concurrently, hold theirs.
std::set<std::string> orphans(const BpfState& before, const std::set<std::string>& names) {
  const BpfState now = bpf_state(names);
  const std::set<int> progs_held = held_ids("prog_id:");
  const std::set<int> links_held = held_ids("link_id:");
  std::set<int> held = progs_held;
  for (const auto& [link, prog] : now.links)
    if (links_held.contains(link)) held.insert(prog);
  std::set<std::string> out;
  for (const auto& [id, name] : now.progs) {
    if (before.progs.contains(id) || held.contains(id)) continue;
    out.insert("prog " + std::to_string(id) + " " + name);
    for (const auto& [link, prog] : now.links)
      if (prog == id && !before.links.contains(link)) out.insert("link " + std::to_string(link));
  }
  return out;
}

// ---- The table ----

struct Row {
  std::vector<std::string> args;
  int exit_code;     // 2: usage, 1: environment
  std::string line;  // the stderr line, without its '\n'
  bool prefix;       // `line` is only the start (the rest is worded by code that may change)
  std::string tool = "tcpconnect";  // the name it is run as (tcpaccept, tcplife, ...)
};

std::string shown(const Row& r) {
  std::string s = r.tool;
  for (const auto& a : r.args) s += " '" + a + "'";
  return s;
}

constexpr const char* kPid = "for -p/--pid: expected an integer in 1..4194304";
constexpr const char* kPort = "in -P/--port: expected an integer in 1..65535";
constexpr const char* kPortList = "expected comma-separated port numbers in 1..65535";
constexpr const char* kUid = "for -u/--uid: expected an integer in 0..4294967294";
// Every duration option's message, after "for OPTION".
constexpr const char* kDurationForms =
    ": expected a duration > 0 and <= 1000000000s: a number of seconds or a number with a unit "
    "us, ms, s, m or h (e.g. 10, 0.5, 250ms, 2m)";
const std::string kDuration = std::string("for --duration") + kDurationForms;
const std::string kSpan = std::string("for --shorter-than") + kDurationForms;
const std::string kMaxAge = std::string("for --dns-max-age") + kDurationForms;
constexpr const char* kNetns = "for --netns: expected an inode number (as in net:[4026531840])";
constexpr const char* kAttach = "for --attach: expected one of auto, tp_btf, raw_tp, tracepoint";
constexpr const char* kMetrics =
    "for --metrics: expected PORT, IPV4:PORT or [IPV6]:PORT with a port in 1..65535";
constexpr const char* kLifecycle = ": the table counts connect attempts, not how they end";
constexpr const char* kCountKey =
    ": the table is keyed by addresses and port; use --by-process for per-process rows";
constexpr const char* kQuiet =
    ": --quiet prints no per-event output, and --metrics counts every connection";
constexpr const char* kNotHashMap =
    "expected a pinned BPF hash map with 8-byte keys (bpftool map create PATH type hash key 8 "
    "value 8 entries 128 name NAME flags 0)";

std::string msg(const std::string& s) { return "tcpconnect: " + s; }

std::vector<Row> usage_rows() {
  auto u = [](std::vector<std::string> args, const std::string& line) {
    return Row{std::move(args), 2, msg(line), false};
  };
  std::string many_ports;
  for (int p = 1; p <= 65; p++) many_ports += (p > 1 ? "," : "") + std::to_string(p);
  return {
      // Unknown options, values given to flags, positionals.
      u({"--bogus"}, "unknown option '--bogus'"),
      u({"-X"}, "unknown option '-X'"),
      u({"-tX"}, "unknown option '-X'"),
      u({"--pid 5"}, "unknown option '--pid 5'"),
      u({"--fo\no"}, "unknown option '--fo\\no'"),
      u({"--json=false"}, "option '--json' does not take a value"),
      u({"--count=1"}, "option '--count' does not take a value"),
      u({"foo"}, "unexpected argument 'foo': tcpconnect takes no positional arguments"),
      u({"-t", "--", "-p"}, "unexpected argument '-p': tcpconnect takes no positional arguments"),
      u({"-"}, "unexpected argument '-': tcpconnect takes no positional arguments"),
      // Missing values.
      u({"-p"}, "option -p/--pid requires a value (PID)"),
      u({"-P"}, "option -P/--port requires a value (PORTS)"),
      u({"-t", "-u"}, "option -u/--uid requires a value (UID)"),
      u({"--pid="}, "option -p/--pid requires a value (PID)"),
      u({"--duration"}, "option --duration requires a value (DURATION)"),
      u({"--shorter-than"}, "option --shorter-than requires a value (DURATION)"),
      u({"--netns"}, "option --netns requires a value (INODE)"),
      u({"--cgroupmap"}, "option --cgroupmap requires a value (MAPPATH)"),
      u({"--metrics"}, "option --metrics requires a value ([ADDR:]PORT)"),
      // -p
      u({"-p", "0"}, std::string("invalid PID '0' ") + kPid),
      u({"-p", "-5"}, std::string("invalid PID '-5' ") + kPid),
      u({"-p", "4194305"}, std::string("invalid PID '4194305' ") + kPid),
      u({"-p", "99999999999999999999999"},
        std::string("invalid PID '99999999999999999999999' ") + kPid),
      u({"-p", "abc"}, std::string("invalid PID 'abc' ") + kPid),
      u({"-p", "1.5"}, std::string("invalid PID '1.5' ") + kPid),
      u({"-p5x"}, std::string("invalid PID '5x' ") + kPid),
      u({"-p", "1", "--pid", "2"}, "option -p/--pid given more than once"),
      // -P
      u({"-P", "0"}, std::string("invalid port '0' ") + kPort),
      u({"-P", "65536"}, std::string("invalid port '65536' ") + kPort),
      u({"-P", "-1"}, std::string("invalid port '-1' ") + kPort),
      u({"-P", "http"}, std::string("invalid port 'http' ") + kPort),
      u({"-P", ""}, std::string("invalid -P/--port value '': ") + kPortList),
      u({"-P", "80,,81"},
        std::string("invalid -P/--port value '80,,81': empty entry; ") + kPortList),
      u({"-P", "80,"}, std::string("invalid -P/--port value '80,': empty entry; ") + kPortList),
      u({"-P", many_ports}, "too many ports in -P/--port: 65 given, at most 64 allowed"),
      // -u
      u({"-u", "-1"}, std::string("invalid UID '-1' ") + kUid),
      u({"-u", "4294967295"}, std::string("invalid UID '4294967295' ") + kUid),
      u({"-u", "99999999999999999999999"},
        std::string("invalid UID '99999999999999999999999' ") + kUid),
      u({"-u", "root"}, std::string("invalid UID 'root' ") + kUid),
      // --duration
      u({"--duration", "1x"}, std::string("invalid duration '1x' ") + kDuration),
      u({"--duration", "-1"}, std::string("invalid duration '-1' ") + kDuration),
      u({"--duration", "nan"}, std::string("invalid duration 'nan' ") + kDuration),
      u({"--duration", "inf"}, std::string("invalid duration 'inf' ") + kDuration),
      u({"--duration", "1e400"}, std::string("invalid duration '1e400' ") + kDuration),
      u({"--duration", ""}, std::string("invalid duration '' ") + kDuration),
      u({"--duration", "0"}, std::string("invalid duration '0' ") + kDuration),
      u({"--duration", "1000000001"}, std::string("invalid duration '1000000001' ") + kDuration),
      u({"--duration", "1..5"}, std::string("invalid duration '1..5' ") + kDuration),
      u({"--duration", "10S"}, std::string("invalid duration '10S' ") + kDuration),
      u({"--duration", "1m30s"}, std::string("invalid duration '1m30s' ") + kDuration),
      // --shorter-than
      u({"--shorter-than", "5x"}, std::string("invalid duration '5x' ") + kSpan),
      u({"--shorter-than", "5d"}, std::string("invalid duration '5d' ") + kSpan),
      u({"--shorter-than", "5MS"}, std::string("invalid duration '5MS' ") + kSpan),
      u({"--shorter-than", "0ms"}, std::string("invalid duration '0ms' ") + kSpan),
      u({"--shorter-than", "-5s"}, std::string("invalid duration '-5s' ") + kSpan),
      u({"--shorter-than", "1e3ms"}, std::string("invalid duration '1e3ms' ") + kSpan),
      u({"--shorter-than", "0.0001us"}, std::string("invalid duration '0.0001us' ") + kSpan),
      u({"--shorter-than", "300000h"}, std::string("invalid duration '300000h' ") + kSpan),
      // --ringbuf-size: its accepted forms are being extended, so only the start is fixed here.
      Row{{"--ringbuf-size", "3"}, 2, msg("invalid size '3' for --ringbuf-size"), true},
      Row{{"--ringbuf-size", "abc"}, 2, msg("invalid size 'abc' for --ringbuf-size"), true},
      // -d and its cache bounds.
      u({"-d", "--dns-cache-size", "0"},
        "invalid size '0' for --dns-cache-size: expected an integer in 1..10000000"),
      u({"-d", "--dns-cache-size", "10000001"},
        "invalid size '10000001' for --dns-cache-size: expected an integer in 1..10000000"),
      u({"-d", "--dns-max-age", "0"}, std::string("invalid duration '0' ") + kMaxAge),
      u({"-d", "--dns-max-age", "1d"}, std::string("invalid duration '1d' ") + kMaxAge),
      u({"--dns-cache-size", "5"}, "--dns-cache-size needs -d/--dns"),
      u({"--dns-max-age", "1h"}, "--dns-max-age needs -d/--dns"),
      u({"--dns-cache-size", "5", "--dns-max-age", "1h"},
        "--dns-cache-size and --dns-max-age need -d/--dns"),
      // --exec-cache-size, --metrics-top, --quiet
      u({"--cmdline", "--exec-cache-size", "0"},
        "invalid size '0' for --exec-cache-size: expected an integer in 1..10000000"),
      u({"--exec-cache-size", "abc"},
        "invalid size 'abc' for --exec-cache-size: expected an integer in 1..10000000"),
      u({"--metrics", "9464", "--metrics-top", "0"},
        "invalid count '0' for --metrics-top: expected an integer in 1..10000"),
      u({"--metrics", "9464", "--metrics-top", "10001"},
        "invalid count '10001' for --metrics-top: expected an integer in 1..10000"),
      u({"--metrics-top", "5"}, "--metrics-top needs --metrics"),
      u({"--quiet"}, "--quiet needs --metrics"),
      u({"--quiet", "--metrics-top", "5"}, "--quiet and --metrics-top need --metrics"),
      u({"--exec-cache-size", "5"}, "--exec-cache-size needs --cmdline or -j/--json"),
      u({"--metrics", "9464", "--quiet", "-j"},
        std::string("--quiet cannot be combined with -j/--json") + kQuiet),
      u({"--metrics", "9464", "--quiet", "--failed", "-t"},
        std::string("--quiet cannot be combined with -t/--timestamp or --failed") + kQuiet),
      // --netns
      u({"--netns", "0"}, std::string("invalid network namespace '0' ") + kNetns),
      u({"--netns", "abc"}, std::string("invalid network namespace 'abc' ") + kNetns),
      u({"--netns", "4294967296"}, std::string("invalid network namespace '4294967296' ") + kNetns),
      u({"--netns", "net:[]"}, std::string("invalid network namespace 'net:[]' ") + kNetns),
      u({"--netns", "net:[12"}, std::string("invalid network namespace 'net:[12' ") + kNetns),
      // --attach
      u({"--attach", "kprobe"}, std::string("invalid attach mode 'kprobe' ") + kAttach),
      u({"--attach", "TP_BTF"}, std::string("invalid attach mode 'TP_BTF' ") + kAttach),
      u({"--attach", ""}, std::string("invalid attach mode '' ") + kAttach),
      u({"--attach", "raw_tp", "--attach", "tp_btf"}, "option --attach given more than once"),
      // Conflicts.
      u({"-4", "-6"}, "options -4/--ipv4 and -6/--ipv6 are mutually exclusive"),
      u({"-46"}, "options -4/--ipv4 and -6/--ipv6 are mutually exclusive"),
      u({"-c", "-d"}, "-c/--count cannot be combined with -d/--dns"),
      u({"-cd"}, "-c/--count cannot be combined with -d/--dns"),
      u({"-c", "--container"}, "-c/--count cannot be combined with --container"),
      u({"-c", "--metrics", "9464"}, "-c/--count cannot be combined with --metrics"),
      u({"-c", "--lifetime"},
        std::string("-c/--count cannot be combined with --lifetime") + kLifecycle),
      u({"-c", "--outcome"},
        std::string("-c/--count cannot be combined with --outcome") + kLifecycle),
      u({"-c", "--failed"},
        std::string("-c/--count cannot be combined with --failed") + kLifecycle),
      u({"-c", "--shorter-than", "5s"},
        std::string("-c/--count cannot be combined with --shorter-than") + kLifecycle),
      u({"-c", "-t"},
        "-c/--count cannot be combined with -t/--timestamp: the table is printed once, at exit"),
      u({"-c", "-U"}, std::string("-c/--count cannot be combined with -U/--print-uid") + kCountKey),
      u({"-c", "--parent"}, std::string("-c/--count cannot be combined with --parent") + kCountKey),
      u({"-c", "--cmdline"},
        std::string("-c/--count cannot be combined with --cmdline") + kCountKey),
      u({"-c", "--accept"}, "-c/--count cannot be combined with --accept: -c counts connects only"),
      u({"--version=1"}, "option '--version' does not take a value"),
      u({"--by-process"}, "--by-process needs -c/--count, --top or --hist"),
      u({"-j", "--by-process"}, "--by-process needs -c/--count, --top or --hist"),
      // --metrics addresses (only IP literals and ports in range).
      u({"--metrics", "abc"}, std::string("invalid address 'abc' ") + kMetrics),
      u({"--metrics", ":0"}, std::string("invalid address ':0' ") + kMetrics),
      u({"--metrics", "0"}, std::string("invalid address '0' ") + kMetrics),
      u({"--metrics", "1.2.3.4:99999"}, std::string("invalid address '1.2.3.4:99999' ") + kMetrics),
      u({"--metrics", "[::1"}, std::string("invalid address '[::1' ") + kMetrics),
      u({"--metrics", "[::1]"}, std::string("invalid address '[::1]' ") + kMetrics),
      u({"--metrics", "::1:80"}, std::string("invalid address '::1:80' ") + kMetrics),
      u({"--metrics", "[1.2.3.4]:80"}, std::string("invalid address '[1.2.3.4]:80' ") + kMetrics),
      u({"--metrics", "localhost:9464"},
        std::string("invalid address 'localhost:9464' ") + kMetrics),
      u({"--metrics", "9464", "--metrics", "9465"}, "option --metrics given more than once"),
  };
}

// The other tools of the family, under their own names.
std::vector<Row> tool_rows() {
  auto u = [](const char* tool, std::vector<std::string> args, const std::string& line) {
    return Row{std::move(args), 2, std::string(tool) + ": " + line, false, tool};
  };
  const std::string ports = ": expected an integer in 1..65535";
  const std::string min_ms = ": expected a number of milliseconds >= 0 (e.g. 1, 0.1)";
  return {
      u("tcplife", {"-L", "0"}, "invalid port '0' in -L/--localport" + ports),
      u("tcplife", {"-D", "x"}, "invalid port 'x' in -D/--remoteport" + ports),
      u("tcplife", {"-s", "-j"}, "options -s/--csv and -j/--json are mutually exclusive"),
      u("tcplife", {"-4", "-6"}, "options -4/--ipv4 and -6/--ipv6 are mutually exclusive"),
      u("tcplife", {"--lifetime"}, "unknown option '--lifetime'"),
      u("tcplife", {"1"}, "unexpected argument '1': tcplife takes no positional arguments"),
      u("tcpconnlat", {"abc"}, "invalid min_ms 'abc'" + min_ms),
      u("tcpconnlat", {"-5"}, "invalid min_ms '-5'" + min_ms),
      u("tcpconnlat", {"1", "2"},
        "unexpected argument '2': tcpconnlat takes one positional "
        "argument, min_ms"),
      u("tcpconnlat", {"-P", "80"}, "unknown option '-P'"),
      u("tcpaccept", {"-4", "-6"}, "options -4/--ipv4 and -6/--ipv6 are mutually exclusive"),
      u("tcpaccept", {"-P", "0"}, "invalid port '0' in -P/--port" + ports),
      u("tcpaccept", {"-c"}, "unknown option '-c'"),
      u("tcpaccept", {"-p", "x"},
        "invalid PID 'x' for -p/--pid: expected an integer in "
        "1..4194304"),
  };
}

// Rows about paths: --cgroup, --cgroupmap, --mntnsmap.
std::vector<Row> path_rows(const Scratch& s) {
  const std::string missing = s.dir() + "/missing";
  const std::string file = s.dir() + "/file";
  std::vector<Row> rows = {
      {{"--cgroup", ""}, 2, msg("option --cgroup needs a path"), false},
      {{"--cgroup", missing},
       2,
       msg("cannot open --cgroup " + missing + ": No such file or directory"),
       false},
      {{"--cgroup", file}, 2, msg("cannot open --cgroup " + file + ": Not a directory"), false},
      {{"--cgroup", s.dir()},
       2,
       msg("--cgroup " + s.dir() + ": not a cgroup v2 directory (see: findmnt -t cgroup2)"),
       false},
      {{"--cgroup", s.dir() + "/a\nb"},
       2,
       msg("cannot open --cgroup " + s.dir() + "/a\\nb: No such file or directory"),
       false},
      {{"--cgroup", s.dir(), "--cgroup", s.dir()},
       2,
       msg("option --cgroup given more than once"),
       false},
  };
  for (const auto& cg2 : mounts_of("cgroup2")) {  // a file of the cgroup2 hierarchy
    rows.push_back({{"--cgroup", cg2 + "/cgroup.procs"},
                    2,
                    msg("cannot open --cgroup " + cg2 + "/cgroup.procs: Not a directory"),
                    false});
    break;
  }
  for (const auto& v1 : mounts_of("cgroup")) {  // a cgroup v1 hierarchy, where one is mounted
    rows.push_back({{"--cgroup", v1},
                    2,
                    msg("--cgroup " + v1 + ": not a cgroup v2 directory (see: findmnt -t cgroup2)"),
                    false});
    break;
  }

  const std::string array = s.map("tc_bad_array", "array", 4, 8);
  const std::string key4 = s.map("tc_bad_key4", "hash", 4, 8);
  const std::string key16 = s.map("tc_bad_key16", "hash", 16, 8);
  const std::string percpu = s.map("tc_bad_percpu", "percpu_hash", 8, 8);
  const std::string ringbuf = s.map("tc_bad_ringbuf", "ringbuf", 0, 0, 4096);
  for (const std::string opt : {"--cgroupmap", "--mntnsmap"}) {
    auto cannot = [&](const std::string& path, const std::string& why) {
      return Row{{opt, path}, 2, msg("cannot open " + opt + " " + path + ": " + why), false};
    };
    auto wrong = [&](const std::string& path) {
      return Row{{opt, path}, 2, msg(opt + " " + path + ": " + kNotHashMap), false};
    };
    rows.push_back({{opt, ""}, 2, msg("option " + opt + " needs a path"), false});
    rows.push_back(cannot(missing, "No such file or directory"));
    rows.push_back(cannot(s.bpf() + "/missing", "No such file or directory"));
    rows.push_back(cannot(file, "not a pinned BPF object"));
    rows.push_back(cannot(s.dir(), "not a pinned BPF object"));
    rows.push_back(cannot(s.bpf() + "/dir", "not a pinned BPF object"));
    rows.push_back(cannot("/proc/self/ns/net", "not a pinned BPF object"));
    // A line break in the path is shown escaped, so the message stays one line.
    rows.push_back({{opt, s.dir() + "/a\nb"},
                    2,
                    msg("cannot open " + opt + " " + s.dir() + "/a\\nb: No such file or directory"),
                    false});
    rows.push_back(wrong(array));
    rows.push_back(wrong(key4));
    rows.push_back(wrong(key16));
    rows.push_back(wrong(percpu));
    rows.push_back(wrong(ringbuf));
  }
  return rows;
}

// Environment errors (exit 1): metrics endpoints that cannot be bound.
std::vector<Row> environment_rows(const rt::Listener& busy4, const rt::Listener& busy6) {
  const std::string p4 = std::to_string(busy4.port()), p6 = std::to_string(busy6.port());
  std::vector<Row> rows = {
      {{"--metrics", "127.0.0.1:" + p4},
       1,
       msg("cannot listen on 127.0.0.1:" + p4 + ": Address already in use"),
       false},
      {{"--metrics", p4, "--quiet"},
       1,
       msg("cannot listen on 127.0.0.1:" + p4 + ": Address already in use"),
       false},
      {{"--metrics", "[::1]:" + p6},
       1,
       msg("cannot listen on [::1]:" + p6 + ": Address already in use"),
       false},
  };
  // An address of no interface (TEST-NET-1), unless the host allows binding to any address.
  std::ifstream nonlocal("/proc/sys/net/ipv4/ip_nonlocal_bind");
  int allowed = 1;
  if (nonlocal >> allowed && allowed == 0) {
    rows.push_back({{"--metrics", "192.0.2.1:9464"},
                    1,
                    msg("cannot listen on 192.0.2.1:9464: Cannot assign requested address"),
                    false});
  }
  return rows;
}

class BadInput : public rt::RuntimeTest {};

TEST_F(BadInput, EveryInvalidInvocationIsOneLineAndLeavesNothing) {
  if (find_bin("bpftool").empty()) {
    if (std::getenv("CI")) FAIL() << "bpftool is not installed";
    GTEST_SKIP() << "bpftool is not installed";
  }
  const std::set<std::string> names = our_prog_names();
  ASSERT_GT(names.size(), 5u) << "no program names found in the BPF object";

  SysBpfFs sys_bpffs;
  Scratch scratch;
  rt::Listener busy4("127.0.0.1"), busy6("::1");
  std::vector<Row> rows = usage_rows();
  for (std::vector<Row> more : {tool_rows(), path_rows(scratch), environment_rows(busy4, busy6)})
    rows.insert(rows.end(), more.begin(), more.end());

  // Every row is a distinct invocation.
  std::set<std::pair<std::string, std::vector<std::string>>> distinct;
  for (const Row& r : rows) EXPECT_TRUE(distinct.insert({r.tool, r.args}).second) << shown(r);

  const BpfState before = bpf_state(names);
  for (const Row& r : rows) {
    SCOPED_TRACE(shown(r));
    std::vector<std::string> argv = {rt::tool_path(r.tool)};
    argv.insert(argv.end(), r.args.begin(), r.args.end());
    const rt::CmdResult res = rt::run_cmd(argv, seconds(10));
    ASSERT_FALSE(res.timed_out) << "still running after 10 s; stderr: " << res.err;
    EXPECT_EQ(res.status, r.exit_code) << res.err;
    EXPECT_EQ(res.out, "");
    // Exactly one line: a single '\n', at the end.
    EXPECT_EQ(std::count(res.err.begin(), res.err.end(), '\n'), 1) << res.err;
    EXPECT_TRUE(!res.err.empty() && res.err.back() == '\n') << res.err;
    if (r.prefix) {
      EXPECT_EQ(res.err.rfind(r.line, 0), 0u) << res.err;
    } else {
      EXPECT_EQ(res.err, r.line + "\n");
    }
  }

  // A program is freed asynchronously after its last holder exits, so one seen unheld may just
  // be on its way out: only those unheld at every look for several seconds count as leaked.
  std::set<std::string> leaked = orphans(before, names);
  const auto deadline = steady_clock::now() + seconds(5);
  while (!leaked.empty() && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(100));
    std::set<std::string> still;
    for (const auto& o : orphans(before, names))
      if (leaked.contains(o)) still.insert(o);
    leaked.swap(still);
  }
  std::string list;
  for (const auto& o : leaked) list += " [" + o + "]";
  EXPECT_TRUE(leaked.empty()) << "left loaded with no process holding them:" << list;

  RecordProperty("invocations", static_cast<int>(rows.size()));
  EXPECT_GE(rows.size(), 60u);
}

}  // namespace
