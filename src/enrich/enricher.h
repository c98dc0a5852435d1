// The enrichment stage of the pipeline (kernel -> decode -> enrich -> sinks):
// adds what the kernel record only identifies by number, the cgroup path and
// container of the owner (with its runtime's names), and with -d the DNS name of the
// destination.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "enrich/cgroup.h"
#include "enrich/config.h"
#include "enrich/containers.h"
#include "enrich/dns_cache.h"
#include "enrich/process_cache.h"
#include "model/event.h"
#include "model/kernel_metrics.h"

namespace tcpconnect {

class Enricher {
 public:
  // `emit` takes each enriched event; `exclude` hears of a cgroup whose events the container
  // filter drops, for good (the kernel can drop them from then on). `log`: -v messages.
  using Emit = std::function<void(const ConnectEvent&)>;
  using Exclude = std::function<void(std::uint64_t cgroup_id)>;
  using Log = std::function<void(const std::string&)>;
  Enricher(const EnrichConfig& cfg, Emit emit, Exclude exclude = {}, Log log = {});

  // A DNS answer read by a process: remembered for later connects.
  void on_dns(const DnsSample& dns);
  // A process exec'd: remember its command line.
  void on_exec(const ExecSample& exec);
  // --metrics-container: a cgroup counted for the first time; looked up now, while it exists.
  void on_cgroup(std::uint64_t cgroup_id, std::uint64_t now_ns);

  // Takes a decoded event: enriched and emitted now, or, while its container's runtime is being
  // asked for names, held until the answer comes or the wait (the runtime timeout) is over.
  // Events keep their order. `now_ns`: CLOCK_MONOTONIC.
  void push(ConnectEvent&& ev, std::uint64_t now_ns);
  // Emits the held events whose wait is over; all of them with `all`.
  void release(std::uint64_t now_ns, bool all = false);
  bool holding() const { return !held_.empty(); }

  // --metrics-container: sets the `container` label of each counter from its cgroup (the
  // runtime's name, else the 12-digit short ID, else "-" for no container). A cgroup's label is
  // decided once. Counters of a container whose runtime is still being asked are left out of
  // this read: the next one counts them in full, under their name.
  void label_metrics(KernelMetrics& metrics, std::uint64_t now_ns);

 private:
  struct CgroupInfo {
    std::string path;
    std::string container;  // 64-hex ID, "" none
    ContainerRuntime runtime = ContainerRuntime::Unknown;
    std::string metric_label;  // --metrics-container, once decided
  };
  struct Held {
    ConnectEvent ev;
    std::uint64_t until_ns = 0;  // 0: waits for nothing but the events before it
  };
  CgroupInfo* cgroup_info(std::uint64_t id);
  // What the runtime said of the container of this cgroup (asked the first time); empty
  // without names, a cgroup or a container.
  ContainerNames::Answer names_of(const CgroupInfo* c, std::uint64_t now_ns);
  void deliver(ConnectEvent& ev, std::uint64_t now_ns);
  // Fills the enrichment fields of `ev` that the options ask for.
  void enrich(ConnectEvent& ev, const CgroupInfo* c, const ContainerNames::Answer& names);

  bool containers_;         // JSON output or --container
  bool metric_containers_;  // --metrics-container
  bool dns_;                // -d
  ContainerFilter filter_;
  std::uint64_t wait_ns_;
  Emit emit_;
  Exclude exclude_;
  CgroupPaths cgroups_;
  std::unordered_map<std::uint64_t, CgroupInfo> cgroup_of_;  // by cgroup id, once resolved
  std::unique_ptr<ContainerNames> names_;                    // asking the runtimes
  std::shared_ptr<const ContainerInfo> info_;                // of the event being emitted
  std::deque<Held> held_;
  DnsCache dns_cache_;
  bool cmdlines_;  // JSON output or --cmdline
  ProcessCache processes_;
};

}  // namespace tcpconnect
