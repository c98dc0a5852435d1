// Container names without a kernel: what an Engine API answer says, which runtime a cgroup
// names, the options and the plan, the CONTAINER column, and the asking of a runtime (here a
// thread serving HTTP on a unix socket of the test's own).
#include "enrich/containers.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "plan/plan.h"
#include "sink/metrics.h"
#include "sink/text_sink.h"

namespace tcpconnect {
namespace {

using namespace std::chrono;

ParseResult parse(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"tcpconnect"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

TEST(Containers, InspectAnswerGivesNameImageAndKubernetesLabels) {
  const auto info = parse_inspect(R"({"Id":"ab","Name":"/web-1","Config":{"Image":"nginx:1.25",
      "Labels":{"io.kubernetes.pod.name":"checkout-7d9f","io.kubernetes.pod.namespace":"shop",
      "io.kubernetes.container.name":"web","other":"x"}}})");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->name, "web-1");
  EXPECT_EQ(info->image, "nginx:1.25");
  EXPECT_EQ(info->pod, "checkout-7d9f");
  EXPECT_EQ(info->pod_namespace, "shop");
  EXPECT_EQ(info->k8s_container, "web");
  // podman's answer has no labels object when there are none; a label that is not a string
  // is no name.
  const auto plain = parse_inspect(R"({"Id":"ab","Name":"db","Config":{"Image":"pg",
      "Labels":{"io.kubernetes.pod.name":7}}})");
  ASSERT_TRUE(plain);
  EXPECT_EQ(*plain, (ContainerInfo{"db", "pg", "", "", ""}));
  // Not an answer: errors, garbage, a name kept to 256 bytes.
  EXPECT_FALSE(parse_inspect(R"({"message":"no such container"})"));
  EXPECT_FALSE(parse_inspect("<html>"));
  EXPECT_FALSE(parse_inspect(""));
  const auto longer = parse_inspect(R"({"Id":"a","Name":")" + std::string(1000, 'x') + "\"}");
  ASSERT_TRUE(longer);
  EXPECT_EQ(longer->name.size(), 256u);
}

TEST(Containers, RuntimeFromCgroupPath) {
  const std::string id(64, 'a');
  EXPECT_EQ(runtime_from_cgroup("/libpod_parent/libpod-" + id), ContainerRuntime::Podman);
  EXPECT_EQ(runtime_from_cgroup("/machine.slice/libpod-" + id + ".scope"),
            ContainerRuntime::Podman);
  EXPECT_EQ(runtime_from_cgroup("/system.slice/docker-" + id + ".scope"), ContainerRuntime::Docker);
  EXPECT_EQ(runtime_from_cgroup("/docker/" + id), ContainerRuntime::Docker);
  EXPECT_EQ(
      runtime_from_cgroup("/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + id + ".scope"),
      ContainerRuntime::Containerd);
  EXPECT_EQ(runtime_from_cgroup("/kubepods.slice/crio-" + id + ".scope"), ContainerRuntime::Crio);
  EXPECT_EQ(runtime_from_cgroup("/kubepods/besteffort/pod1/" + id), ContainerRuntime::Unknown);
  EXPECT_EQ(runtime_from_cgroup("/user.slice/dockerd-notes.scope"), ContainerRuntime::Docker);
  EXPECT_EQ(runtime_from_cgroup("/"), ContainerRuntime::Unknown);
}

TEST(Containers, OptionsAndPlan) {
  ParseResult r = parse({"--container-name", "web-1,api.2,web-1", "--pod", "p", "--pod-namespace",
                         "shop", "--runtime-socket", "/run/x.sock"});
  ASSERT_EQ(r.kind, ParseResult::Kind::Run) << r.text;
  EXPECT_EQ(r.options.container_names, (std::vector<std::string>{"web-1", "api.2"}));
  Plan p = make_plan(r.options);
  EXPECT_TRUE(p.enrich.containers);
  EXPECT_TRUE(p.enrich.container_names);
  EXPECT_EQ(p.enrich.runtime_socket, "/run/x.sock");
  EXPECT_EQ(p.enrich.filter.pods, std::vector<std::string>{"p"});
  EXPECT_TRUE(p.probe.exclude_cgroups);
  EXPECT_FALSE(p.lines.columns.container);  // filtering by name prints no column

  // JSON asks the runtime; plain text does not look containers up at all.
  EXPECT_TRUE(make_plan(parse({"-j"}).options).enrich.container_names);
  EXPECT_FALSE(make_plan(parse({}).options).enrich.containers);
  EXPECT_FALSE(make_plan(parse({"-j"}).options).probe.exclude_cgroups);

  struct Bad {
    std::vector<std::string> args;
    std::string message;
  };
  const Bad bad[] = {
      {{"--container-name", ""},
       "tcpconnect: invalid name '' in --container-name: expected letters, digits, '_', '.' or "
       "'-' (at most 253)"},
      {{"--pod", "a,\x1b[2J"},
       "tcpconnect: invalid name '\\x1b[2J' in --pod: expected letters, digits, '_', '.' or "
       "'-' (at most 253)"},
      {{"--runtime-socket", "/x"},
       "tcpconnect: --runtime-socket needs --container, -j/--json, --container-name, --pod, "
       "--pod-namespace or --metrics-container"},
      {{"--metrics-container"}, "tcpconnect: --metrics-container needs --metrics"},
      {{"--runtime-socket", "", "--container"}, "tcpconnect: option --runtime-socket needs a path"},
      {{"--runtime-socket", "cri:", "--container"},
       "tcpconnect: option --runtime-socket needs a path"},
      {{"-c", "--container-name", "a"},
       "tcpconnect: -c/--count cannot be combined with --container-name: containers are told "
       "apart by name in user space, per event"},
      {{"--metrics", "9999", "--quiet", "--pod", "a"},
       "tcpconnect: --quiet cannot be combined with --container-name, --pod or --pod-namespace: "
       "--quiet prints no per-event output, and --metrics counts every connection"},
  };
  for (const Bad& b : bad) {
    const ParseResult e = parse(b.args);
    EXPECT_EQ(e.kind, ParseResult::Kind::Error) << b.message;
    EXPECT_EQ(e.exit_code, 2);
    EXPECT_EQ(e.text, b.message);
  }
}

// An Engine API on a unix socket: answers GET /containers/<id>/json after `delay` with the
// inspect JSON of the containers it knows (404 for the others), or never when `silent`.
class FakeEngine {
 public:
  FakeEngine(std::string path, milliseconds delay, bool silent = false)
      : path_(std::move(path)), delay_(delay), silent_(silent) {
    fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path_.c_str());
    unlink(path_.c_str());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeEngine() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
    unlink(path_.c_str());
  }
  FakeEngine(const FakeEngine&) = delete;
  FakeEngine& operator=(const FakeEngine&) = delete;
  int asked() const { return asked_; }

 private:
  void serve() {
    while (!stop_) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      const ssize_t n = read(c, buf, sizeof(buf));
      asked_++;
      if (silent_) {
        held_.push_back(c);
        continue;
      }
      std::this_thread::sleep_for(delay_);
      const std::string req(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
      std::string body, status = "404 Not Found";
      if (req.find("/containers/" + std::string(64, 'a') + "/json") != std::string::npos) {
        status = "200 OK";
        body = R"({"Id":"aaaa","Name":"/web-1","Config":{"Image":"img:1"}})";
      }
      const std::string resp =
          "HTTP/1.1 " + status +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nConnection: close\r\n\r\n" + body;
      (void)!write(c, resp.data(), resp.size());
      close(c);
    }
  }
  std::string path_;
  milliseconds delay_;
  bool silent_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> asked_{0};
  std::vector<int> held_;
  std::thread thread_;
};

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count());
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { sock_ = "/tmp/tcpconnect-unit-" + std::to_string(getpid()) + ".sock"; }
  void TearDown() override { unlink(sock_.c_str()); }
  std::string sock_;
};

TEST_F(EngineTest, NamesFromTheRuntimeAreAskedOnceAndKept) {
  FakeEngine engine(sock_, milliseconds(30));
  ContainerNamesConfig cfg;
  cfg.socket = sock_;
  std::vector<std::string> log;
  ContainerNames names(cfg, [&log](const std::string& s) { log.push_back(s); });
  const std::string known(64, 'a'), unknown(64, 'b');
  auto a = names.lookup(known, ContainerRuntime::Podman, now_ns());
  EXPECT_TRUE(a.pending);
  auto b = names.lookup(unknown, ContainerRuntime::Podman, now_ns());
  EXPECT_TRUE(b.pending);
  for (int i = 0; i < 200 && (a.pending || b.pending); i++) {
    std::this_thread::sleep_for(milliseconds(5));
    a = names.lookup(known, ContainerRuntime::Podman, now_ns());
    b = names.lookup(unknown, ContainerRuntime::Podman, now_ns());
  }
  ASSERT_FALSE(a.pending);
  ASSERT_TRUE(a.info);
  EXPECT_EQ(a.info->name, "web-1");
  EXPECT_EQ(a.info->image, "img:1");
  EXPECT_FALSE(b.pending);
  EXPECT_FALSE(b.info);
  EXPECT_FALSE(b.unreachable);  // the runtime answered: no such container
  // Cached: asked once each.
  names.lookup(known, ContainerRuntime::Podman, now_ns());
  EXPECT_EQ(engine.asked(), 2);
  EXPECT_TRUE(log.empty());
}

TEST_F(EngineTest, SilentRuntimeIsGivenUpOnceAndSaidOnce) {
  FakeEngine engine(sock_, milliseconds(0), true);
  ContainerNamesConfig cfg;
  cfg.socket = sock_;
  cfg.timeout_ms = 100;
  std::vector<std::string> log;
  ContainerNames names(cfg, [&log](const std::string& s) { log.push_back(s); });
  const std::string first(64, 'a'), second(64, 'c');
  auto a = names.lookup(first, ContainerRuntime::Unknown, now_ns());
  EXPECT_TRUE(a.pending);
  for (int i = 0; i < 300 && a.pending; i++) {
    std::this_thread::sleep_for(milliseconds(5));
    a = names.lookup(first, ContainerRuntime::Unknown, now_ns());
  }
  EXPECT_FALSE(a.pending);
  EXPECT_TRUE(a.unreachable);
  // The socket is left alone now: the next container is not waited for.
  const auto b = names.lookup(second, ContainerRuntime::Unknown, now_ns());
  EXPECT_FALSE(b.pending);
  EXPECT_TRUE(b.unreachable);
  names.lookup(second, ContainerRuntime::Unknown, now_ns());
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0], "container names: cannot ask " + sock_ +
                        ": no answer within 100 ms; events carry the container ID alone");
}

TEST(Containers, TextColumnShowsTheNameEscaped) {
  Options o;
  o.container = true;
  OutputConfig cfg = make_plan(o).lines;
  std::ostringstream out, err;
  TextSink sink(cfg, out, err);
  sink.start(StartInfo{"0.1.0", "tp_btf", 1});
  ConnectEvent ev;
  ev.pid = 7;
  ev.comm = "nc";
  ev.saddr[0] = 127;
  ev.daddr[0] = 127;
  ev.dport = 80;
  const std::string id(64, 'a');
  ev.container = id;
  sink.connect(ev);  // no answer: the short ID
  const ContainerInfo named{"web-1", "img", "", "", ""};
  ev.container_info = &named;
  sink.connect(ev);
  const ContainerInfo hostile{"x\x1b]0;owned\x07", "img", "", "", ""};
  ev.container_info = &hostile;
  sink.connect(ev);
  EXPECT_EQ(
      out.str(),
      "PID     COMM         IP SADDR            DADDR            DPORT  NETNS      CONTAINER\n"
      "7       nc           4  127.0.0.0        127.0.0.0        80     0          aaaaaaaaaaaa\n"
      "7       nc           4  127.0.0.0        127.0.0.0        80     0          web-1\n"
      "PID     COMM         IP SADDR            DADDR            DPORT  NETNS      CONTAINER\n"
      "7       nc           4  127.0.0.0        127.0.0.0        80     0          "
      "x\\x1b]0;owned\\x07\n");
}

// --metrics-container: a container label on connects and accepts, escaped, bounded like the
// others (the top_n busiest are admitted, at most 2 * top_n in all; the rest is "other").
TEST(Containers, MetricsCountByContainerLabel) {
  Metrics m(MetricsConfig{2, true});
  KernelMetrics k;
  auto counter = [](MetricKind kind, std::uint16_t port, std::uint64_t cgroup, std::string label,
                    std::uint64_t n) {
    return MetricCounter{kind,   Outcome::Established, 0, port, "curl", false, n,
                         cgroup, std::move(label)};
  };
  k.counters = {counter(MetricKind::Connect, 80, 11, "web-1", 5),
                counter(MetricKind::Connect, 80, 12, "a\"b\x1b", 4),
                counter(MetricKind::Accept, 8080, 13, "-", 1)};
  m.update(k);
  const std::string text = m.render();
  for (
      const char* want :
      {R"(tcpconnect_connects_total{outcome="established",dport="80",comm="curl",container="web-1"} 5)",
       R"(tcpconnect_connects_total{outcome="established",dport="80",comm="curl",container="a\"b\\x1b"} 4)",
       R"(tcpconnect_accepts_total{lport="8080",comm="curl",container="other"} 1)"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  }
  // Without the option, no label.
  Metrics plain(MetricsConfig{20, false});
  plain.update(k);
  EXPECT_EQ(plain.render().find("container="), std::string::npos);
}

}  // namespace
}  // namespace tcpconnect
