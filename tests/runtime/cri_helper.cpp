// cri_helper: drives a CRI runtime (containerd here) the way kubelet would, for the runtime tests
// of container names: host-network pod sandboxes (no CNI needed) with one container each, and
// their removal.
//   cri_helper SOCK run POD NAMESPACE CONTAINER IMAGE CMD...   prints "sandbox ID", "container ID"
//   cri_helper SOCK rm SANDBOX_ID                              stops and removes its containers too
// Environment: CRI_CGROUP_PARENT (the pods' cgroup parent), CRI_LOG_DIR (their logs).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "runtime_v1.grpc.pb.h"

namespace cri = runtime::v1;

namespace {

using Stub = cri::RuntimeService::Stub;

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string uid() {
  std::random_device rd;
  char out[40];
  std::snprintf(out, sizeof(out), "%08x-%04x-4%03x-a%03x-%08x%04x", rd(), rd() & 0xffff,
                rd() & 0xfff, rd() & 0xfff, rd(), rd() & 0xffff);
  return out;
}

// One call with a deadline; says what failed on stderr.
template <typename Req, typename Resp>
bool call(const char* what, grpc::Status (Stub::*fn)(grpc::ClientContext*, const Req&, Resp*),
          Stub& stub, const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  const grpc::Status st = (stub.*fn)(&ctx, req, resp);
  if (!st.ok())
    std::cerr << what << " failed: " << static_cast<int>(st.error_code()) << " "
              << st.error_message() << "\n";
  return st.ok();
}

void host_namespaces(cri::NamespaceOption* ns) {
  ns->set_network(cri::NODE);
  ns->set_pid(cri::CONTAINER);
  ns->set_ipc(cri::POD);
}

int run(Stub& stub, const std::string& pod, const std::string& ns, const std::string& name,
        const std::string& image, const std::vector<std::string>& cmd) {
  const std::string id = uid();
  const std::string logs = env_or("CRI_LOG_DIR", "/tmp") + "/" + ns + "_" + pod + "_" + id;
  std::filesystem::create_directories(logs + "/" + name);
  cri::PodSandboxConfig sandbox;
  sandbox.mutable_metadata()->set_name(pod);
  sandbox.mutable_metadata()->set_uid(id);
  sandbox.mutable_metadata()->set_namespace_(ns);
  sandbox.set_log_directory(logs);
  // The labels kubelet sets on every sandbox and container.
  auto label = [&](google::protobuf::Map<std::string, std::string>* labels) {
    (*labels)["io.kubernetes.pod.name"] = pod;
    (*labels)["io.kubernetes.pod.namespace"] = ns;
    (*labels)["io.kubernetes.pod.uid"] = id;
  };
  label(sandbox.mutable_labels());
  sandbox.mutable_linux()->set_cgroup_parent(env_or("CRI_CGROUP_PARENT", "/tcpconnect-cri"));
  host_namespaces(sandbox.mutable_linux()->mutable_security_context()->mutable_namespace_options());

  cri::RunPodSandboxRequest run_req;
  *run_req.mutable_config() = sandbox;
  cri::RunPodSandboxResponse run_resp;
  if (!call("RunPodSandbox", &Stub::RunPodSandbox, stub, run_req, &run_resp)) return 1;
  std::cout << "sandbox " << run_resp.pod_sandbox_id() << std::endl;

  cri::CreateContainerRequest create;
  create.set_pod_sandbox_id(run_resp.pod_sandbox_id());
  *create.mutable_sandbox_config() = sandbox;
  cri::ContainerConfig* c = create.mutable_config();
  c->mutable_metadata()->set_name(name);
  c->mutable_image()->set_image(image);
  for (const std::string& a : cmd) c->add_command(a);
  label(c->mutable_labels());
  (*c->mutable_labels())["io.kubernetes.container.name"] = name;
  c->set_log_path(name + "/0.log");
  host_namespaces(c->mutable_linux()->mutable_security_context()->mutable_namespace_options());
  cri::CreateContainerResponse created;
  if (!call("CreateContainer", &Stub::CreateContainer, stub, create, &created)) return 1;

  cri::StartContainerRequest start;
  start.set_container_id(created.container_id());
  cri::StartContainerResponse started;
  if (!call("StartContainer", &Stub::StartContainer, stub, start, &started)) return 1;
  std::cout << "container " << created.container_id() << std::endl;
  return 0;
}

int rm(Stub& stub, const std::string& sandbox) {
  int rc = 0;
  cri::ListContainersRequest list;
  list.mutable_filter()->set_pod_sandbox_id(sandbox);
  cri::ListContainersResponse listed;
  if (!call("ListContainers", &Stub::ListContainers, stub, list, &listed)) return 1;
  for (const cri::Container& c : listed.containers()) {
    cri::StopContainerRequest stop;
    stop.set_container_id(c.id());  // timeout 0: killed at once (PID 1 ignores SIGTERM)
    cri::StopContainerResponse stopped;
    cri::RemoveContainerRequest remove;
    remove.set_container_id(c.id());
    cri::RemoveContainerResponse removed;
    if (!call("StopContainer", &Stub::StopContainer, stub, stop, &stopped) ||
        !call("RemoveContainer", &Stub::RemoveContainer, stub, remove, &removed))
      rc = 1;
  }
  cri::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(sandbox);
  cri::StopPodSandboxResponse stopped;
  cri::RemovePodSandboxRequest remove;
  remove.set_pod_sandbox_id(sandbox);
  cri::RemovePodSandboxResponse removed;
  if (!call("StopPodSandbox", &Stub::StopPodSandbox, stub, stop, &stopped) ||
      !call("RemovePodSandbox", &Stub::RemovePodSandbox, stub, remove, &removed))
    rc = 1;
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 2) {
    std::cerr << "usage: cri_helper SOCK run POD NAMESPACE CONTAINER IMAGE CMD... | SOCK rm ID\n";
    return 2;
  }
  auto stub = cri::RuntimeService::NewStub(
      grpc::CreateChannel("unix:" + args[0], grpc::InsecureChannelCredentials()));
  if (args[1] == "run" && args.size() >= 7)
    return run(*stub, args[2], args[3], args[4], args[5], {args.begin() + 6, args.end()});
  if (args[1] == "rm" && args.size() == 3) return rm(*stub, args[2]);
  std::cerr << "cri_helper: bad arguments\n";
  return 2;
}
