// Which name a destination address was resolved from: the most recent DNS
// answer for that address in the same network namespace, preferring one
// received by the same process. Bounded in entries and in age.
//
// Trust model. The kernel side only sends data read from a socket the reader
// sent a query on, and only when it came from port 53 of the very server the
// query went to (the connected peer, or the source address the kernel
// reported for the datagram): a local process cannot pass off what it sent
// itself from another socket as an answer, unless it may bind port 53 or
// spoof packets (CAP_NET_BIND_SERVICE, CAP_NET_RAW), or reconnects its socket
// through io_uring (see bpf/dns.bpf.c). But any process chooses which server it asks
// and what it asks for, and a server it controls (any port 53 it can reach)
// answers what it likes. So an answer proves only that its reader was told
// so. The process's own answers are preferred; the namespace-wide fallback,
// needed for resolutions done by another process (nscd, a resolver daemon,
// a parent that passes an address on), trusts every process of the network
// namespace, whatever its user, as to which name an address came from: a
// user who can run processes in a namespace can label the other users'
// connects there. Restricting the fallback to readers of the connecting
// process's uid would close that within a namespace, at the cost of names
// resolved by daemons running as another user.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "enrich/dns_parse.h"
#include "model/event.h"

namespace tcpconnect {

struct DnsCacheLimits {
  std::size_t max_entries = 10000;  // per-namespace and per-process entries together
  std::uint64_t max_age_ns = 3600ull * 1000000000ull;  // entries older than this are gone
};

class DnsCache {
 public:
  explicit DnsCache(DnsCacheLimits limits = {});
  ~DnsCache();
  DnsCache(const DnsCache&) = delete;
  DnsCache& operator=(const DnsCache&) = delete;

  // Records the addresses of `answer`, received at `mono_ns` (CLOCK_MONOTONIC)
  // by process `pid` in network namespace `netns`. Evicts the least recently
  // used entries beyond max_entries.
  void add(std::uint32_t netns, std::uint32_t pid, const DnsAnswer& answer, std::uint64_t mono_ns);

  struct Hit {
    std::string name;
    std::uint64_t age_ns = 0;   // mono_ns of the lookup minus that of the answer
    bool same_process = false;  // the answer was received by `pid` itself
  };
  // The name for (netns, address): the same process's answer when there is
  // one, else the namespace's most recent. Entries older than max_age_ns are
  // not returned (and are dropped).
  std::optional<Hit> lookup(std::uint32_t netns, std::uint32_t pid, int ip, const AddrBytes& addr,
                            std::uint64_t mono_ns);

  std::size_t size() const;

 private:
  struct Impl;
  Impl* impl_;
};

// bcc's QUERY column: the name, with " (N.NNNms)" (the age in ms, to the
// microsecond) when the answer is more than 100 ms older than the connect;
// with no answer "localhost" for exactly 127.0.0.1 or ::1 (bcc compares the
// printed address), else "No DNS Query".
std::string dns_query_text(const std::optional<DnsCache::Hit>& hit, int ip, const AddrBytes& daddr);

// A loopback destination: 127/8, ::1, or ::ffff:127/104. JSON's "query" says
// "localhost" for these when no answer is known.
bool is_loopback(int ip, const AddrBytes& daddr);

}  // namespace tcpconnect
