// What the enricher looks up: made by the plan (src/plan).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tcpconnect {

// --container-name, --pod, --pod-namespace: only events of containers the runtime names so.
// Each list, when not empty, must hold the container's value.
struct ContainerFilter {
  std::vector<std::string> names;
  std::vector<std::string> pods;
  std::vector<std::string> pod_namespaces;

  bool on() const { return !names.empty() || !pods.empty() || !pod_namespaces.empty(); }
  bool operator==(const ContainerFilter&) const = default;
};

struct EnrichConfig {
  bool containers = false;                 // cgroup path and container ID of the owner
  bool metric_containers = false;          // --metrics-container: label the metrics' counters
  bool container_names = false;            // ask the runtime for names (with either of the above)
  std::string runtime_socket;              // --runtime-socket; "" the usual paths
  std::uint32_t runtime_timeout_ms = 250;  // per question; also the longest an event waits
  ContainerFilter filter;
  bool dns = false;       // the DNS name of the destination (-d)
  bool cmdlines = false;  // the owner's command line
  std::uint32_t dns_cache_size = 10000;
  std::uint64_t dns_max_age_ns = 3600ull * 1'000'000'000;
  std::uint32_t exec_cache_size = 16384;

  bool operator==(const EnrichConfig&) const = default;
};

}  // namespace tcpconnect
