// Container names through the CRI without a runtime: the --runtime-socket forms, and the asking of
// a CRI server (here one served by the test, gRPC on a unix socket of its own) for the names of
// a container.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "enrich/containers.h"
#include "runtime_v1.grpc.pb.h"

namespace tcpconnect {
namespace {

using namespace std::chrono;
namespace cri = runtime::v1;

TEST(Cri, RuntimeSocketForms) {
  using Api = RuntimeSocket::Api;
  EXPECT_EQ(parse_runtime_socket("cri:/x/y.sock"), (RuntimeSocket{"/x/y.sock", Api::Cri}));
  EXPECT_EQ(parse_runtime_socket("engine:/run/containerd/containerd.sock"),
            (RuntimeSocket{"/run/containerd/containerd.sock", Api::Engine}));
  EXPECT_EQ(parse_runtime_socket("/run/containerd/containerd.sock"),
            (RuntimeSocket{"/run/containerd/containerd.sock", Api::Cri}));
  EXPECT_EQ(parse_runtime_socket("/var/run/crio/crio.sock"),
            (RuntimeSocket{"/var/run/crio/crio.sock", Api::Cri}));
  EXPECT_EQ(parse_runtime_socket("crio.sock"), (RuntimeSocket{"crio.sock", Api::Cri}));
  EXPECT_EQ(parse_runtime_socket("/var/run/docker.sock"),
            (RuntimeSocket{"/var/run/docker.sock", Api::Engine}));
  EXPECT_EQ(parse_runtime_socket("/tmp/my-crio.sock"),
            (RuntimeSocket{"/tmp/my-crio.sock", Api::Engine}));
}

// ContainerStatus as containerd answers it for the containers it knows (NOT_FOUND for the
// others), or an error for every question when `failing`.
class FakeCri final : public cri::RuntimeService::Service {
 public:
  explicit FakeCri(bool failing) : failing_(failing) {}
  grpc::Status ContainerStatus(grpc::ServerContext*, const cri::ContainerStatusRequest* req,
                               cri::ContainerStatusResponse* resp) override {
    asked++;
    if (failing_) return {grpc::StatusCode::INTERNAL, "shim gone"};
    if (req->container_id() != std::string(64, 'a'))
      return {grpc::StatusCode::NOT_FOUND, "no such container"};
    cri::ContainerStatus* s = resp->mutable_status();
    s->set_id(req->container_id());
    s->mutable_metadata()->set_name("web");
    s->mutable_image()->set_image("registry.example/shop/web:1.4");
    s->set_image_ref("sha256:0123");
    auto& labels = *s->mutable_labels();
    labels["io.kubernetes.pod.name"] = std::string(1000, 'p');
    labels["io.kubernetes.pod.namespace"] = "shop";
    labels["io.kubernetes.container.name"] = "web";
    return grpc::Status::OK;
  }
  std::atomic<int> asked{0};

 private:
  bool failing_;
};

class CriServer : public ::testing::Test {
 protected:
  void serve(bool failing) {
    sock_ = "/tmp/tcpconnect-unit-cri-" + std::to_string(getpid()) + ".sock";
    unlink(sock_.c_str());
    service_ = std::make_unique<FakeCri>(failing);
    grpc::ServerBuilder b;
    b.AddListeningPort("unix:" + sock_, grpc::InsecureServerCredentials());
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_TRUE(server_);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    unlink(sock_.c_str());
  }
  static std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(
        duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count());
  }
  // Asks until the answer is no longer pending.
  static ContainerNames::Answer settle(ContainerNames& names, const std::string& id) {
    auto a = names.lookup(id, ContainerRuntime::Containerd, now_ns());
    for (int i = 0; i < 400 && a.pending; i++) {
      std::this_thread::sleep_for(milliseconds(5));
      a = names.lookup(id, ContainerRuntime::Containerd, now_ns());
    }
    return a;
  }
  std::string sock_;
  std::unique_ptr<FakeCri> service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(CriServer, NamesComeFromContainerStatusAndTheKubeletLabels) {
  serve(false);
  ContainerNamesConfig cfg;
  cfg.socket = "cri:" + sock_;
  std::vector<std::string> log;
  ContainerNames names(cfg, [&log](const std::string& s) { log.push_back(s); });
  const auto a = settle(names, std::string(64, 'a'));
  ASSERT_FALSE(a.pending);
  ASSERT_TRUE(a.info);
  EXPECT_EQ(a.info->name, "web");
  EXPECT_EQ(a.info->image, "registry.example/shop/web:1.4");
  EXPECT_EQ(a.info->pod, std::string(256, 'p'));  // cut like every name a runtime gives
  EXPECT_EQ(a.info->pod_namespace, "shop");
  EXPECT_EQ(a.info->k8s_container, "web");
  const auto b = settle(names, std::string(64, 'b'));
  EXPECT_FALSE(b.pending);
  EXPECT_FALSE(b.info);
  EXPECT_FALSE(b.unreachable);  // NOT_FOUND: the runtime answered
  names.lookup(std::string(64, 'a'), ContainerRuntime::Containerd, now_ns());
  EXPECT_EQ(service_->asked, 2);  // each asked once, then kept
  EXPECT_TRUE(log.empty());
}

TEST_F(CriServer, FailingRuntimeIsSaidOnce) {
  serve(true);
  ContainerNamesConfig cfg;
  cfg.socket = "cri:" + sock_;
  std::vector<std::string> log;
  ContainerNames names(cfg, [&log](const std::string& s) { log.push_back(s); });
  const auto a = settle(names, std::string(64, 'a'));
  EXPECT_FALSE(a.info);
  EXPECT_TRUE(a.unreachable);
  const auto b = names.lookup(std::string(64, 'c'), ContainerRuntime::Containerd, now_ns());
  EXPECT_FALSE(b.pending);  // left alone for a while: not asked, not waited for
  names.lookup(std::string(64, 'd'), ContainerRuntime::Containerd, now_ns());
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0], "container names: cannot ask " + sock_ +
                        ": CRI error 13: shim gone; events carry the container ID alone");
  EXPECT_EQ(service_->asked, 1);
}

}  // namespace
}  // namespace tcpconnect
