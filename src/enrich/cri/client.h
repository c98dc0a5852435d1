// Container names through the Kubernetes CRI (containerd, CRI-O): one ContainerStatus call on the
// runtime's gRPC unix socket. The gRPC and protobuf types stay inside client.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "model/event.h"

namespace tcpconnect {

// What a runtime said of one container, whichever API asked it.
struct RuntimeAnswer {
  enum class Kind { Found, NotFound, Failed } kind = Kind::Failed;
  ContainerInfo info;  // Found
  std::string why;     // Failed: why no answer came
};

// What a CRI ContainerStatus says of a container, from its fields: the container's name in the
// pod, the image as the pod spec named it (else the image's ID), and the pod, namespace and
// container names from the labels kubelet sets. `label` returns "" for a label not set.
template <typename Label>
ContainerInfo info_from_cri(std::string_view name, std::string_view image,
                            std::string_view image_ref, Label&& label);

class CriClient {
 public:
  explicit CriClient(std::string socket);
  ~CriClient();
  CriClient(const CriClient&) = delete;
  CriClient& operator=(const CriClient&) = delete;

  // ContainerStatus for a container ID, with a deadline. NotFound: the runtime does not know it.
  RuntimeAnswer status(const std::string& id, std::uint32_t timeout_ms);

 private:
  struct Impl;
  std::string socket_;
  std::unique_ptr<Impl> impl_;  // the channel, made at the first call and again after a failure
};

// Names, images and labels are cut to this many bytes, whichever runtime gave them.
inline constexpr std::size_t kMaxRuntimeField = 256;

inline std::string cut_runtime_field(std::string_view s) {
  return std::string(s.substr(0, kMaxRuntimeField));
}

template <typename Label>
ContainerInfo info_from_cri(std::string_view name, std::string_view image,
                            std::string_view image_ref, Label&& label) {
  ContainerInfo info;
  info.name = cut_runtime_field(name);
  info.image = cut_runtime_field(image.empty() ? image_ref : image);
  info.pod = cut_runtime_field(label("io.kubernetes.pod.name"));
  info.pod_namespace = cut_runtime_field(label("io.kubernetes.pod.namespace"));
  info.k8s_container = cut_runtime_field(label("io.kubernetes.container.name"));
  return info;
}

}  // namespace tcpconnect
