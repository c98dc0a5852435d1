// What the enricher looks up: made by the plan (src/plan).
#pragma once

#include <cstdint>

namespace tcpconnect {

struct EnrichConfig {
  bool containers = false;  // cgroup path and container ID of the owner
  bool dns = false;         // the DNS name of the destination (-d)
  bool cmdlines = false;    // the owner's command line
  std::uint32_t dns_cache_size = 10000;
  std::uint64_t dns_max_age_ns = 3600ull * 1'000'000'000;
  std::uint32_t exec_cache_size = 16384;

  bool operator==(const EnrichConfig&) const = default;
};

}  // namespace tcpconnect
