// Runtime tests of container names: real podman containers (Debian's podman and runc, an image
// imported from a busybox-static root made here), podman's Engine API served on a socket of the
// test's own, and the tracer's --container, JSON and --container-name output for them. Also a
// runtime socket that is absent, and one that accepts and never answers.
//
// Containers are named tcn-<pid>-<what>, run with --rm, and removed again (podman rm -f) at the
// end of each test; the API service is stopped with the suite.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fixture.h"
#include "http.h"
#include "netns.h"

using namespace std::chrono;
using nlohmann::json;
using rt::Tracer;

namespace {

constexpr const char* kPodman = "/usr/bin/podman";
constexpr const char* kImage = "localhost/tcpconnect-test-busybox:1";

std::string temp_dir() {
  static const std::string dir = [] {
    std::string d = fmt::format("/tmp/tcpconnect-names-{}", getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// podman as it runs here: runc (crun refuses hybrid cgroups), explicit limits (the defaults are
// refused), the host's network (the client reaches the test's loopback listener).
std::vector<std::string> podman_run(const std::string& name, std::vector<std::string> cmd) {
  std::vector<std::string> argv{kPodman,
                                "run",
                                "--rm",
                                "--runtime",
                                "runc",
                                "--ulimit",
                                "nofile=1024:1024",
                                "--ulimit",
                                "nproc=1024:1024",
                                "--network",
                                "host",
                                "--name",
                                name,
                                kImage};
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return argv;
}

// The busybox-static image, imported once from a root made of /usr/bin/busybox.
void import_image() {
  if (rt::run_cmd({kPodman, "image", "exists", kImage}).status == 0) return;
  const std::string root = temp_dir() + "/root";
  std::filesystem::create_directories(root + "/bin");
  std::filesystem::copy_file("/usr/bin/busybox", root + "/bin/busybox",
                             std::filesystem::copy_options::overwrite_existing);
  for (const char* app : {"sh", "nc", "sleep"}) {
    std::error_code ec;
    std::filesystem::create_symlink("busybox", root + "/bin/" + app, ec);
  }
  const std::string tar = temp_dir() + "/root.tar";
  rt::run_checked({"/usr/bin/tar", "-C", root, "-cf", tar, "."});
  rt::run_checked({kPodman, "import", tar, kImage}, seconds(60));
}

// A unix socket that accepts connections (the kernel queues them) and never answers.
class SilentSocket {
 public:
  explicit SilentSocket(std::string path) : path_(std::move(path)) {
    fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path_.c_str());
    unlink(path_.c_str());
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd_, 64) != 0)
      throw std::runtime_error("cannot listen on " + path_);
  }
  ~SilentSocket() {
    close(fd_);
    unlink(path_.c_str());
  }
  SilentSocket(const SilentSocket&) = delete;
  SilentSocket& operator=(const SilentSocket&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

class ContainerNames : public rt::RuntimeTest {
 protected:
  static void TearDownTestSuite() {
    service_.reset();
    std::error_code ec;
    std::filesystem::remove_all(temp_dir(), ec);
  }

  void SetUp() override {
    rt::RuntimeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (access(kPodman, X_OK) != 0 || access("/usr/sbin/runc", X_OK) != 0) {
      if (std::getenv("CI"))
        FAIL() << "podman and runc are not installed (scripts/dev installs them)";
      GTEST_SKIP() << "podman and runc are not installed";
    }
    import_image();
    if (!service_) {
      const std::string sock = temp_dir() + "/podman.sock";
      service_ = std::make_unique<Tracer>(
          kPodman, std::vector<std::string>{"system", "service", "--time=0", "unix://" + sock});
      for (int i = 0; i < 100 && !std::filesystem::exists(sock); i++)
        std::this_thread::sleep_for(milliseconds(50));
      ASSERT_TRUE(std::filesystem::exists(sock)) << service_->err();
    }
  }
  void TearDown() override {
    for (const std::string& name : names_) rt::run_cmd({kPodman, "rm", "-f", "-t", "0", name});
  }

  static std::string socket_path() { return temp_dir() + "/podman.sock"; }
  std::string name(const std::string& what) {
    names_.push_back(fmt::format("tcn-{}-{}", getpid(), what));
    return names_.back();
  }
  // A container that connects once to the port on loopback and exits: busybox nc, its input
  // closed; the listener closes at once.
  void connect_from(const std::string& container, int port) {
    const auto r = rt::run_cmd(
        podman_run(container, {"nc", "-w", "2", "127.0.0.1", std::to_string(port)}), seconds(30));
    ASSERT_FALSE(r.timed_out) << r.err;
  }

  static std::unique_ptr<Tracer> service_;
  std::vector<std::string> names_;
};

std::unique_ptr<Tracer> ContainerNames::service_;

// The lines of `out` whose COMM column is `comm`.
std::vector<std::vector<std::string>> rows_of(const std::vector<std::string>& lines,
                                              const std::string& comm) {
  std::vector<std::vector<std::string>> rows;
  for (const std::string& line : lines) {
    std::istringstream in(line);
    std::vector<std::string> cols;
    for (std::string c; in >> c;) cols.push_back(c);
    if (cols.size() >= 2 && cols[1] == comm) rows.push_back(cols);
  }
  return rows;
}

TEST_F(ContainerNames, TextShowsTheNameAndJsonTheNameAndImage) {
  rt::Listener listener("127.0.0.1", 0, false);
  const std::string port = std::to_string(listener.port());
  const std::string web = name("web");
  {
    auto t = start({"--container", "--runtime-socket", socket_path(), "-P", port}, "PID");
    connect_from(web, listener.port());
    ASSERT_TRUE(t->wait_stdout(web)) << t->out() << t->err();
    EXPECT_EQ(t->stop(), 0) << t->err();
    const auto rows = rows_of(t->out_lines(), "nc");
    ASSERT_EQ(rows.size(), 1u) << t->out();
    // PID COMM IP SADDR DADDR DPORT NETNS CONTAINER
    ASSERT_EQ(rows[0].size(), 8u) << t->out();
    EXPECT_EQ(rows[0][5], port);
    EXPECT_EQ(rows[0][7], web);
  }
  {
    auto t = start({"-j", "--runtime-socket", socket_path(), "-P", port}, rt::kJsonStart);
    const std::string api = name("api");
    connect_from(api, listener.port());
    ASSERT_TRUE(t->wait_stdout(api)) << t->out() << t->err();
    rt::run_helper({"--count", "1", "127.0.0.1", port});  // a host process: no names
    ASSERT_TRUE(t->wait_stdout("conn_helper")) << t->out();
    const auto recs = records(*t, "connect");
    ASSERT_EQ(recs.size(), 2u) << t->out();
    EXPECT_EQ(recs[0]["comm"], "nc");
    EXPECT_EQ(recs[0]["container_name"], api);
    EXPECT_EQ(recs[0]["image"], kImage);
    EXPECT_EQ(recs[0]["container"].get<std::string>().size(), 64u);
    EXPECT_TRUE(recs[0]["pod"].is_null());
    EXPECT_TRUE(recs[0]["pod_namespace"].is_null());
    EXPECT_TRUE(recs[0]["container_k8s"].is_null());
    EXPECT_EQ(recs[1]["comm"], "conn_helper");
    EXPECT_TRUE(recs[1]["container_name"].is_null());
    EXPECT_TRUE(recs[1]["image"].is_null());
  }
}

// --container-name keeps the named container and drops another container and a host process,
// the first of each in user space and the next ones in the kernel.
TEST_F(ContainerNames, FilterKeepsOnlyTheNamedContainer) {
  rt::Listener listener("127.0.0.1", 0, false);
  const std::string port = std::to_string(listener.port());
  const std::string keep = name("keep"), other = name("other"), keep2 = name("keep2");
  auto t = start(
      {"-j", "--runtime-socket", socket_path(), "--container-name", keep + "," + keep2, "-P", port},
      rt::kJsonStart);
  connect_from(other, listener.port());
  rt::run_helper({"--count", "3", "127.0.0.1", port});
  connect_from(keep, listener.port());
  connect_from(other + "x", listener.port());
  names_.push_back(other + "x");
  rt::run_helper({"--count", "2", "127.0.0.1", port});
  connect_from(keep2, listener.port());
  ASSERT_TRUE(t->wait_stdout(keep2)) << t->out() << t->err();
  const auto recs = records(*t, "connect");
  ASSERT_EQ(recs.size(), 2u) << t->out();
  EXPECT_EQ(recs[0]["container_name"], keep);
  EXPECT_EQ(recs[1]["container_name"], keep2);
}

// A container that connects and is gone right after (its process exits, podman removes it and
// its cgroup): the event still carries its name.
TEST_F(ContainerNames, ShortLivedContainerKeepsItsName) {
  rt::Listener listener("127.0.0.1", 0, false);
  const std::string port = std::to_string(listener.port());
  auto t = start({"-j", "--runtime-socket", socket_path(), "-P", port}, rt::kJsonStart);
  std::vector<std::string> flash;
  for (int i = 0; i < 3; i++) {
    flash.push_back(name(fmt::format("flash{}", i)));
    // The listener closes at once: nc, and with it the container, ends within milliseconds of
    // the connect.
    connect_from(flash.back(), listener.port());
  }
  ASSERT_TRUE(t->wait_stdout(flash.back())) << t->out() << t->err();
  const auto recs = records(*t, "connect");
  ASSERT_EQ(recs.size(), 3u) << t->out();
  for (std::size_t i = 0; i < 3; i++) EXPECT_EQ(recs[i]["container_name"], flash[i]) << i;
}

// No runtime at the socket: events carry the ID alone, and -v says why once.
TEST_F(ContainerNames, AbsentSocketLeavesTheIdAndSaysWhyOnce) {
  rt::Listener listener("127.0.0.1", 0, false);
  const std::string port = std::to_string(listener.port());
  const std::string absent = temp_dir() + "/absent.sock";
  auto t = start({"--container", "-v", "--runtime-socket", absent, "-P", port}, "PID");
  const std::string a = name("a"), b = name("b");
  connect_from(a, listener.port());
  connect_from(b, listener.port());
  EXPECT_TRUE(t->wait_stdout(" nc ", seconds(5)));
  EXPECT_EQ(t->stop(), 0) << t->err();
  const auto rows = rows_of(t->out_lines(), "nc");
  ASSERT_EQ(rows.size(), 2u) << t->out();
  for (const auto& r : rows) {
    ASSERT_EQ(r.size(), 8u);
    EXPECT_EQ(r[7].size(), 12u) << r[7];  // the short ID
    EXPECT_EQ(r[7].find_first_not_of("0123456789abcdef"), std::string::npos) << r[7];
  }
  EXPECT_NE(rows[0][7], rows[1][7]);
  const std::string why = "tcpconnect: container names: cannot ask " + absent +
                          ": no such socket; events carry the "
                          "container ID alone\n";
  const std::string err = t->err();
  const auto at = err.find(why);
  EXPECT_NE(at, std::string::npos) << err;
  EXPECT_EQ(err.find(why, at + 1), std::string::npos) << err;
}

// A runtime that accepts and never answers: the first event waits for it at most the timeout,
// the ones after do not wait, and -v says why once.
TEST_F(ContainerNames, SilentSocketDoesNotHoldEvents) {
  rt::Listener listener("127.0.0.1", 0, false);
  const std::string port = std::to_string(listener.port());
  SilentSocket silent(temp_dir() + "/silent.sock");
  auto t = start({"--container", "-v", "--runtime-socket", silent.path(), "-P", port}, "PID");
  const std::string a = name("a"), b = name("b");
  connect_from(a, listener.port());
  EXPECT_TRUE(t->wait_stdout(" nc ", seconds(2))) << t->out();
  connect_from(b, listener.port());
  // Host connects after them: each is printed within a second, while the runtime still has
  // not answered the first question.
  for (std::size_t i = 1; i <= 3; i++) {
    rt::run_helper({"--count", "1", "127.0.0.1", port});
    const auto until = steady_clock::now() + seconds(1);
    while (rows_of(t->out_lines(), "conn_helper").size() < i && steady_clock::now() < until)
      std::this_thread::sleep_for(milliseconds(10));
    EXPECT_EQ(rows_of(t->out_lines(), "conn_helper").size(), i) << t->out();
  }
  EXPECT_EQ(t->stop(), 0) << t->err();
  EXPECT_EQ(rows_of(t->out_lines(), "nc").size(), 2u) << t->out();
  EXPECT_EQ(rows_of(t->out_lines(), "conn_helper").size(), 3u) << t->out();
  for (const auto& r : rows_of(t->out_lines(), "nc")) EXPECT_EQ(r[7].size(), 12u) << r[7];
  const std::string why = "tcpconnect: container names: cannot ask " + silent.path() +
                          ": no answer within 250 ms; events carry the container ID alone\n";
  const std::string err = t->err();
  const auto at = err.find(why);
  EXPECT_NE(at, std::string::npos) << err;
  EXPECT_EQ(err.find(why, at + 1), std::string::npos) << err;
}

// --metrics-container: the connects of a named container are counted under its name, a host
// process's under "-".
TEST_F(ContainerNames, MetricsCountByContainerName) {
  rt::Listener listener("127.0.0.1", 0, false);
  const std::string port = std::to_string(listener.port());
  const int mport = rt::closed_port("127.0.0.1");
  auto t = std::make_unique<Tracer>(std::vector<std::string>{
      "--metrics", "127.0.0.1:" + std::to_string(mport), "--quiet", "--metrics-container",
      "--metrics-top", "1000", "--runtime-socket", socket_path(), "-P", port});
  ASSERT_TRUE(t->wait_stderr("Tracing connect")) << t->err();
  const std::string web = name("metered");
  connect_from(web, listener.port());
  connect_from(web + "2", listener.port());
  names_.push_back(web + "2");
  rt::run_helper({"--count", "3", "127.0.0.1", port});
  const std::string mine = R"(tcpconnect_connects_total{outcome="established",dport=")" + port +
                           R"(",comm="nc",container=")";
  const std::string host = R"(tcpconnect_connects_total{outcome="established",dport=")" + port +
                           R"(",comm="conn_helper",container="-"} 3)";
  std::string body;
  for (int i = 0; i < 50; i++) {
    body = rt::http_get("127.0.0.1", mport, "/metrics").body;
    if (body.find(mine + web + "2\"} 1") != std::string::npos &&
        body.find(host) != std::string::npos)
      break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_NE(body.find(mine + web + "\"} 1"), std::string::npos) << body;
  EXPECT_NE(body.find(mine + web + "2\"} 1"), std::string::npos) << body;
  EXPECT_NE(body.find(host), std::string::npos) << body;
  EXPECT_EQ(t->stop(), 0) << t->err();
}

// --- Kubernetes names through the CRI ---------------------------------------------------------
// A private containerd with its CRI plugin (tests/runtime/cri-runtime.sh, Debian's containerd and
// runc, an image made here and imported locally), driven as kubelet would by cri_helper:
// host-network pod sandboxes with one container each, labelled as kubelet labels them.

class CriNames : public rt::RuntimeTest {
 protected:
  static std::string dir() { return temp_dir() + "/cri"; }
  static std::string socket() { return dir() + "/containerd.sock"; }
  static std::vector<std::string> script(const char* what) {
    return {"/usr/bin/env", std::string("CRI_HELPER=") + CRI_HELPER_BIN, CRI_RUNTIME_SH, what,
            dir()};
  }
  static void TearDownTestSuite() {
    if (started_) rt::run_cmd(script("stop"), seconds(120));
    started_ = false;
    std::error_code ec;
    std::filesystem::remove_all(dir(), ec);
    std::filesystem::remove(temp_dir(), ec);  // when the podman tests are done with it too
  }

  void SetUp() override {
    rt::RuntimeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    for (const char* tool : {"/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc"}) {
      if (access(tool, X_OK) == 0) continue;
      if (std::getenv("CI")) FAIL() << tool << " is not installed (scripts/dev installs it)";
      GTEST_SKIP() << tool << " is not installed";
    }
    if (!started_) {
      started_ = true;
      const auto r = rt::run_cmd(script("start"), seconds(120));
      ASSERT_EQ(r.status, 0) << r.out << r.err;
    }
  }
  void TearDown() override {
    for (const std::string& id : sandboxes_)
      rt::run_cmd({CRI_HELPER_BIN, socket(), "rm", id}, seconds(60));
  }

  // A pod whose one container connects once to the port on loopback, then waits a second.
  void pod_connects(const std::string& pod, const std::string& ns, const std::string& container,
                    int port) {
    const auto r = rt::run_cmd(
        {"/usr/bin/env", "CRI_CGROUP_PARENT=" + cgroup_parent(), "CRI_LOG_DIR=" + dir() + "/logs",
         CRI_HELPER_BIN, socket(), "run", pod, ns, container, kCriImage, "/bin/sh", "-c",
         fmt::format("nc -w 2 127.0.0.1 {} </dev/null; sleep 1", port)},
        seconds(60));
    std::istringstream out(r.out);
    for (std::string what, id; out >> what >> id;)
      if (what == "sandbox") sandboxes_.push_back(id);
    ASSERT_EQ(r.status, 0) << r.out << r.err;
  }
  static std::string cgroup_parent() {
    std::ifstream in(dir() + "/cgroup-parent");
    std::string s;
    std::getline(in, s);
    return s;
  }

  static constexpr const char* kCriImage = "localhost/tcpconnect-cri-busybox:1";
  static bool started_;
  std::vector<std::string> sandboxes_;
};

bool CriNames::started_ = false;

// JSON carries the pod, its namespace and the container's names; text --container shows the
// container's name.
TEST_F(CriNames, JsonHasThePodAndNamespaceAndTextTheContainer) {
  rt::Listener listener("127.0.0.1", 0, false);
  const std::string port = std::to_string(listener.port());
  {
    auto t = start({"-j", "--runtime-socket", "cri:" + socket(), "-P", port}, rt::kJsonStart);
    pod_connects("checkout-7d9f", "shop", "web", listener.port());
    ASSERT_TRUE(t->wait_stdout("checkout-7d9f")) << t->out() << t->err();
    const auto recs = records(*t, "connect");
    ASSERT_EQ(recs.size(), 1u) << t->out();
    EXPECT_EQ(recs[0]["comm"], "nc");
    EXPECT_EQ(recs[0]["container"].get<std::string>().size(), 64u);
    EXPECT_EQ(recs[0]["container_name"], "web");
    EXPECT_EQ(recs[0]["image"], kCriImage);
    EXPECT_EQ(recs[0]["pod"], "checkout-7d9f");
    EXPECT_EQ(recs[0]["pod_namespace"], "shop");
    EXPECT_EQ(recs[0]["container_k8s"], "web");
  }
  {
    auto t = start({"--container", "--runtime-socket", "cri:" + socket(), "-P", port}, "PID");
    pod_connects("cart-5c2b", "shop", "cart-api", listener.port());
    ASSERT_TRUE(t->wait_stdout("cart-api")) << t->out() << t->err();
    EXPECT_EQ(t->stop(), 0) << t->err();
    const auto rows = rows_of(t->out_lines(), "nc");
    ASSERT_EQ(rows.size(), 1u) << t->out();
    ASSERT_EQ(rows[0].size(), 8u) << t->out();
    EXPECT_EQ(rows[0][7], "cart-api");
  }
}

// --pod and --pod-namespace keep the pod of that name in that namespace, and drop the same pod
// name in another namespace, another pod in the namespace and a host process.
TEST_F(CriNames, PodFiltersKeepOnlyThatPod) {
  rt::Listener listener("127.0.0.1", 0, false);
  const std::string port = std::to_string(listener.port());
  // containerd.sock: the CRI, from the socket's name.
  auto t = start({"--container", "--runtime-socket", socket(), "--pod", "checkout-7d9f",
                  "--pod-namespace", "shop", "-P", port},
                 "PID");
  pod_connects("checkout-7d9f", "dev", "web-dev", listener.port());
  pod_connects("cart-5c2b", "shop", "cart", listener.port());
  rt::run_helper({"--count", "2", "127.0.0.1", port});
  pod_connects("checkout-7d9f", "shop", "web-shop", listener.port());
  ASSERT_TRUE(t->wait_stdout("web-shop")) << t->out() << t->err();
  EXPECT_EQ(t->stop(), 0) << t->err();
  const auto rows = rows_of(t->out_lines(), "nc");
  ASSERT_EQ(rows.size(), 1u) << t->out();
  ASSERT_EQ(rows[0].size(), 8u) << t->out();
  EXPECT_EQ(rows[0][7], "web-shop");
  EXPECT_TRUE(rows_of(t->out_lines(), "conn_helper").empty()) << t->out();
}

}  // namespace
