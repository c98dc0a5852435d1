// The enrichment stage of the pipeline (kernel -> decode -> enrich -> sinks):
// adds what the kernel record only identifies by number, the cgroup path and
// container of the owner, and with -d the DNS name of the destination.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "enrich/cgroup.h"
#include "enrich/config.h"
#include "enrich/dns_cache.h"
#include "enrich/process_cache.h"
#include "model/event.h"

namespace tcpconnect {

class Enricher {
 public:
  explicit Enricher(const EnrichConfig& cfg);

  // A DNS answer read by a process: remembered for later connects.
  void on_dns(const DnsSample& dns);
  // A process exec'd: remember its command line.
  void on_exec(const ExecSample& exec);
  // Fills the enrichment fields of `ev` that the options ask for.
  void enrich(ConnectEvent& ev);

 private:
  bool containers_;  // JSON output or --container
  bool dns_;         // -d
  CgroupPaths cgroups_;
  std::unordered_map<std::uint64_t, std::string> container_of_;  // by cgroup id, once resolved
  DnsCache dns_cache_;
  bool cmdlines_;  // JSON output or --cmdline
  ProcessCache processes_;
};

}  // namespace tcpconnect
