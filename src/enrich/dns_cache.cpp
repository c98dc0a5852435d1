#include "enrich/dns_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <list>
#include <unordered_map>

namespace tcpconnect {
namespace {

// One key type for both kinds of entries so that a single map and a single
// LRU list bound them together. Namespace entries have per_process == false
// and pid == 0.
struct Key {
  std::uint32_t netns = 0;
  std::uint32_t pid = 0;
  bool per_process = false;
  int ip = 4;
  AddrBytes addr{};

  bool operator==(const Key&) const = default;
};

struct KeyHash {
  std::size_t operator()(const Key& k) const noexcept {
    // FNV-1a over the fields; keys are small and this is cheap enough.
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&h](std::uint64_t v, int bytes) {
      for (int i = 0; i < bytes; ++i) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 1099511628211ull;
      }
    };
    mix(k.netns, 4);
    mix(k.pid, 4);
    mix(static_cast<std::uint64_t>(k.ip) << 1 | (k.per_process ? 1 : 0), 1);
    for (std::uint8_t b : k.addr) mix(b, 1);
    return static_cast<std::size_t>(h);
  }
};

// Canonical form of an address: IPv4 keeps its first 4 bytes only, and an
// IPv4-mapped IPv6 address (a dual-stack socket connecting to an IPv4 peer)
// is the IPv4 address, so that it finds the A record it was resolved from.
void canonical(int& ip, AddrBytes& addr) {
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (ip == 6 && std::memcmp(addr.data(), kMapped, sizeof kMapped) == 0) {
    std::memmove(addr.data(), addr.data() + 12, 4);
    ip = 4;
  }
  if (ip != 6) {
    ip = 4;
    std::fill(addr.begin() + 4, addr.end(), 0);
  }
}

struct Entry {
  Key key;
  std::string name;
  std::uint64_t mono_ns = 0;
};

// How many least recently used entries add() and lookup() look at for
// expiry: keeps pruning O(1) per call while still clearing idle entries.
constexpr int kPrunePerCall = 2;

}  // namespace

struct DnsCache::Impl {
  DnsCacheLimits limits;
  std::list<Entry> lru;  // most recently used first
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> index;

  bool expired(const Entry& e, std::uint64_t now) const {
    return now > e.mono_ns && now - e.mono_ns > limits.max_age_ns;
  }

  void erase(std::list<Entry>::iterator it) {
    index.erase(it->key);
    lru.erase(it);
  }

  void prune(std::uint64_t now) {
    for (int i = 0; i < kPrunePerCall && !lru.empty() && expired(lru.back(), now); ++i) {
      erase(std::prev(lru.end()));
    }
  }

  void put(const Key& key, const std::string& name, std::uint64_t mono_ns) {
    auto found = index.find(key);
    if (found != index.end()) {
      Entry& e = *found->second;
      // Answers can be recorded out of order; keep the most recent one.
      if (mono_ns >= e.mono_ns) {
        e.name = name;
        e.mono_ns = mono_ns;
      }
      lru.splice(lru.begin(), lru, found->second);
      return;
    }
    lru.push_front(Entry{key, name, mono_ns});
    index.emplace(key, lru.begin());
    while (index.size() > limits.max_entries) erase(std::prev(lru.end()));
  }

  // The live entry for `key`, marked as used; expired ones are dropped.
  Entry* get(const Key& key, std::uint64_t now) {
    auto found = index.find(key);
    if (found == index.end()) return nullptr;
    if (expired(*found->second, now)) {
      erase(found->second);
      return nullptr;
    }
    lru.splice(lru.begin(), lru, found->second);
    return &*found->second;
  }
};

DnsCache::DnsCache(DnsCacheLimits limits) : impl_(new Impl{limits, {}, {}}) {}

DnsCache::~DnsCache() { delete impl_; }

void DnsCache::add(std::uint32_t netns, std::uint32_t pid, const DnsAnswer& answer,
                   std::uint64_t mono_ns) {
  impl_->prune(mono_ns);
  for (const DnsAddress& a : answer.addrs) {
    Key key{netns, 0, false, a.ip, a.addr};
    canonical(key.ip, key.addr);
    impl_->put(key, answer.name, mono_ns);
    key.pid = pid;
    key.per_process = true;
    impl_->put(key, answer.name, mono_ns);
  }
}

std::optional<DnsCache::Hit> DnsCache::lookup(std::uint32_t netns, std::uint32_t pid, int ip,
                                              const AddrBytes& addr, std::uint64_t mono_ns) {
  impl_->prune(mono_ns);
  Key key{netns, pid, true, ip, addr};
  canonical(key.ip, key.addr);
  const Entry* own = impl_->get(key, mono_ns);
  key.pid = 0;
  key.per_process = false;
  // Looked up even after a same-process hit: a use of the address keeps its
  // namespace entry alive too.
  const Entry* shared = impl_->get(key, mono_ns);
  const Entry* e = own ? own : shared;
  if (!e) return std::nullopt;
  // A connect stamped before the answer (records from different buffers
  // arrive out of order) counts as age 0 rather than wrapping around.
  std::uint64_t age = mono_ns > e->mono_ns ? mono_ns - e->mono_ns : 0;
  return Hit{e->name, age, own != nullptr};
}

std::size_t DnsCache::size() const { return impl_->index.size(); }

std::string dns_query_text(const std::optional<DnsCache::Hit>& hit, int ip,
                           const AddrBytes& daddr) {
  if (hit) {
    // bcc measures the age with datetime (microseconds) and prints it with "%.3fms" when it is
    // more than 100 ms.
    const std::uint64_t age_us = hit->age_ns / 1000;
    if (age_us > 100'000)
      return fmt::format("{} ({}.{:03}ms)", hit->name, age_us / 1000, age_us % 1000);
    return hit->name;
  }
  static constexpr AddrBytes kLoopback6 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const bool localhost = ip == 4
                             ? daddr[0] == 127 && daddr[1] == 0 && daddr[2] == 0 && daddr[3] == 1
                             : daddr == kLoopback6;
  return localhost ? "localhost" : "No DNS Query";
}

bool is_loopback(int ip, const AddrBytes& daddr) {
  if (ip == 4) return daddr[0] == 127;
  static constexpr std::uint8_t kZero[15] = {};
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return (std::memcmp(daddr.data(), kZero, 15) == 0 && daddr[15] == 1) ||
         (std::memcmp(daddr.data(), kMapped, 12) == 0 && daddr[12] == 127);
}

}  // namespace tcpconnect
