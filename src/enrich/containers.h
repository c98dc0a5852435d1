// Container names from the runtime that owns a container: docker or podman through the
// Docker-compatible Engine API on a unix socket (GET /containers/ID/json), containerd and CRI-O
// through the Kubernetes CRI (ContainerStatus, enrich/cri/client.h). Asked off the event path, by
// one worker thread, with a timeout; answers are cached, bounded in number and age, and kept
// after the container is gone.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "enrich/cri/client.h"
#include "model/event.h"

namespace tcpconnect {

// Who runs a container, as its cgroup path tells.
enum class ContainerRuntime { Unknown, Docker, Podman, Containerd, Crio };

// The runtime a container's cgroup path names ("docker-<id>.scope", "/libpod_parent/libpod-<id>",
// "cri-containerd-<id>.scope", ...); Unknown for bare IDs (kubepods, /docker/<id> counts as
// Docker) and paths that name no container.
ContainerRuntime runtime_from_cgroup(std::string_view path);

// What an Engine API inspect answer (the JSON of GET /containers/ID/json) says of the
// container: its name without docker's leading '/', the image as the user named it, and the
// Kubernetes labels kubelet sets (io.kubernetes.pod.name, .pod.namespace, .container.name).
// nullopt when the body is not such an answer.
std::optional<ContainerInfo> parse_inspect(std::string_view body);

// A runtime's socket and the API it speaks.
struct RuntimeSocket {
  enum class Api { Engine, Cri };
  std::string path;
  Api api = Api::Engine;
  bool operator==(const RuntimeSocket&) const = default;
};
// --runtime-socket's value: "cri:PATH" speaks the CRI, "engine:PATH" the Engine API; a bare PATH
// speaks the CRI when it is named containerd.sock or crio.sock, else the Engine API.
RuntimeSocket parse_runtime_socket(std::string_view spec);

struct ContainerNamesConfig {
  // Empty: the usual paths (/var/run/docker.sock, /run/podman/podman.sock,
  // /run/containerd/containerd.sock, /run/crio/crio.sock), each asked first for the containers
  // of its own runtime.
  std::string socket;  // --runtime-socket: only this one (parse_runtime_socket)
  std::uint32_t timeout_ms = 250;
  std::size_t max_entries = 4096;
  std::uint64_t max_age_ns = 3600ull * 1'000'000'000;   // an answer is kept this long
  std::uint64_t negative_ns = 30ull * 1'000'000'000;    // "no such container" is kept this long
  std::uint64_t retry_down_ns = 30ull * 1'000'000'000;  // a failing socket is left alone this long
};

class ContainerNames {
 public:
  using Log = std::function<void(const std::string&)>;
  ContainerNames(ContainerNamesConfig cfg, Log log);
  ~ContainerNames();
  ContainerNames(const ContainerNames&) = delete;
  ContainerNames& operator=(const ContainerNames&) = delete;

  struct Answer {
    bool pending = false;  // asked, no answer yet
    // The runtime's answer; null when no runtime knows the container or none could be asked.
    std::shared_ptr<const ContainerInfo> info;
    // No runtime could be asked (absent, refused, timed out): another event may find it.
    bool unreachable = false;
  };
  // The container with this 64-hex ID; asks for it the first time (never blocks). `now_ns`:
  // CLOCK_MONOTONIC.
  Answer lookup(const std::string& id, ContainerRuntime runtime, std::uint64_t now_ns);
  // Whether any socket could be asked at all: false when every one is absent or failing.
  bool any_reachable(std::uint64_t now_ns);
  std::size_t size();

 private:
  struct Socket {
    RuntimeSocket where;
    ContainerRuntime owner =
        ContainerRuntime::Unknown;   // asked first for this runtime's containers
    std::shared_ptr<CriClient> cri;  // Api::Cri: used by the worker only
    std::uint64_t down_until = 0;    // failing: not asked before this (monotonic ns)
    bool said = false;               // its failure was told (once)
  };
  struct Entry {
    std::shared_ptr<const ContainerInfo> info;
    bool done = false;
    bool unreachable = false;
    std::uint64_t expires_ns = 0;
  };
  struct Request {
    std::string id;
    ContainerRuntime runtime;
  };
  void work();
  // Asks one socket of one container (on the worker's thread).
  RuntimeAnswer ask(const Socket& socket, const std::string& id) const;
  // One GET on an Engine API socket: the HTTP status (0: no answer, `why` says why) and body.
  long get(const std::string& socket, const std::string& path, std::string& body,
           std::string& why) const;
  std::vector<std::size_t> order_for(ContainerRuntime runtime) const;

  ContainerNamesConfig cfg_;
  Log log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Socket> sockets_;
  std::unordered_map<std::string, Entry> cache_;
  std::deque<Request> queue_;
  std::vector<std::string> messages_;  // for the log, written by lookup() on the caller's thread
  bool stop_ = false;
  std::thread worker_;  // started at the first request: after the tracer dropped privileges
};

}  // namespace tcpconnect
