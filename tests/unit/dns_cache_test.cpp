#include "enrich/dns_cache.h"

#include <gtest/gtest.h>

#include <initializer_list>

namespace tcpconnect {
namespace {

constexpr std::uint64_t kMs = 1000000;
constexpr std::uint64_t kSec = 1000 * kMs;

AddrBytes v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return AddrBytes{a, b, c, d};
}

AddrBytes v6(std::initializer_list<std::uint8_t> bytes) {
  AddrBytes out{};
  std::size_t i = 0;
  for (std::uint8_t b : bytes) out[i++] = b;
  return out;
}

AddrBytes mapped(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d});
}

DnsAnswer answer(std::string name, std::initializer_list<AddrBytes> addrs4,
                 std::initializer_list<AddrBytes> addrs6 = {}) {
  DnsAnswer a{std::move(name), {}};
  for (const AddrBytes& addr : addrs4) a.addrs.push_back({4, addr, 60});
  for (const AddrBytes& addr : addrs6) a.addrs.push_back({6, addr, 60});
  return a;
}

std::string name_of(DnsCache& c, std::uint32_t netns, std::uint32_t pid, int ip,
                    const AddrBytes& addr, std::uint64_t now) {
  auto hit = c.lookup(netns, pid, ip, addr, now);
  return hit ? hit->name : "<miss>";
}

TEST(DnsCacheTest, RecordsEveryAddressOfAnAnswer) {
  DnsCache c;
  const AddrBytes six = v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  c.add(1, 100, answer("example.com", {v4(93, 184, 216, 34), v4(93, 184, 216, 35)}, {six}), kSec);
  EXPECT_EQ(c.size(), 6u);  // a namespace and a process entry per address
  EXPECT_EQ(name_of(c, 1, 200, 4, v4(93, 184, 216, 34), kSec), "example.com");
  EXPECT_EQ(name_of(c, 1, 200, 4, v4(93, 184, 216, 35), kSec), "example.com");
  EXPECT_EQ(name_of(c, 1, 200, 6, six, kSec), "example.com");
  EXPECT_EQ(name_of(c, 1, 200, 4, v4(93, 184, 216, 36), kSec), "<miss>");
  // An IPv4 address is not the IPv6 address with the same leading bytes.
  EXPECT_EQ(name_of(c, 1, 200, 6, v4(93, 184, 216, 34), kSec), "<miss>");
}

TEST(DnsCacheTest, MissOnEmptyCache) {
  DnsCache c;
  EXPECT_FALSE(c.lookup(1, 1, 4, v4(10, 0, 0, 1), 0).has_value());
  EXPECT_EQ(c.size(), 0u);
}

TEST(DnsCacheTest, NamespacesAreIsolatedSameNameDifferentAddresses) {
  DnsCache c;
  c.add(1, 100, answer("svc.local", {v4(10, 0, 0, 1)}), kSec);
  c.add(2, 100, answer("svc.local", {v4(10, 0, 0, 2)}), kSec);
  EXPECT_EQ(name_of(c, 1, 100, 4, v4(10, 0, 0, 1), kSec), "svc.local");
  EXPECT_EQ(name_of(c, 2, 100, 4, v4(10, 0, 0, 2), kSec), "svc.local");
  // Neither namespace sees the other's address, not even for the same pid.
  EXPECT_EQ(name_of(c, 1, 100, 4, v4(10, 0, 0, 2), kSec), "<miss>");
  EXPECT_EQ(name_of(c, 2, 100, 4, v4(10, 0, 0, 1), kSec), "<miss>");
}

TEST(DnsCacheTest, NamespacesAreIsolatedDifferentNamesSameAddress) {
  DnsCache c;
  c.add(1, 100, answer("db.team-a", {v4(10, 0, 0, 5)}), kSec);
  c.add(2, 200, answer("cache.team-b", {v4(10, 0, 0, 5)}), 2 * kSec);
  EXPECT_EQ(name_of(c, 1, 300, 4, v4(10, 0, 0, 5), 3 * kSec), "db.team-a");
  EXPECT_EQ(name_of(c, 2, 300, 4, v4(10, 0, 0, 5), 3 * kSec), "cache.team-b");
  EXPECT_EQ(name_of(c, 3, 300, 4, v4(10, 0, 0, 5), 3 * kSec), "<miss>");
}

TEST(DnsCacheTest, PrefersTheSameProcessAnswer) {
  DnsCache c;
  const AddrBytes addr = v4(151, 101, 1, 1);
  c.add(1, 100, answer("a.example", {addr}), 1 * kSec);
  c.add(1, 200, answer("b.example", {addr}), 2 * kSec);

  auto own = c.lookup(1, 100, 4, addr, 3 * kSec);
  ASSERT_TRUE(own);
  EXPECT_EQ(own->name, "a.example");
  EXPECT_TRUE(own->same_process);
  EXPECT_EQ(own->age_ns, 2 * kSec);

  auto other = c.lookup(1, 200, 4, addr, 3 * kSec);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->name, "b.example");
  EXPECT_TRUE(other->same_process);

  // A process that resolved nothing gets the namespace's most recent answer.
  auto shared = c.lookup(1, 300, 4, addr, 3 * kSec);
  ASSERT_TRUE(shared);
  EXPECT_EQ(shared->name, "b.example");
  EXPECT_FALSE(shared->same_process);
  EXPECT_EQ(shared->age_ns, 1 * kSec);
}

TEST(DnsCacheTest, NewerAnswerReplacesOlder) {
  DnsCache c;
  const AddrBytes addr = v4(10, 1, 1, 1);
  c.add(1, 100, answer("old.example", {addr}), 1 * kSec);
  c.add(1, 100, answer("new.example", {addr}), 2 * kSec);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(name_of(c, 1, 100, 4, addr, 3 * kSec), "new.example");
  // An answer stamped earlier than the one kept does not replace it.
  c.add(1, 100, answer("stale.example", {addr}), 1 * kSec + 1);
  EXPECT_EQ(name_of(c, 1, 100, 4, addr, 3 * kSec), "new.example");
  EXPECT_EQ(name_of(c, 1, 999, 4, addr, 3 * kSec), "new.example");
}

TEST(DnsCacheTest, FallsBackToNamespaceWhenProcessEntryExpired) {
  DnsCache c(DnsCacheLimits{100, 10 * kSec});
  const AddrBytes addr = v4(10, 2, 2, 2);
  c.add(1, 100, answer("first.example", {addr}), 0);
  c.add(1, 200, answer("second.example", {addr}), 5 * kSec);
  // pid 100's own answer (age 12 s) is gone; the namespace's (7 s) is not.
  auto hit = c.lookup(1, 100, 4, addr, 12 * kSec);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->name, "second.example");
  EXPECT_FALSE(hit->same_process);
}

TEST(DnsCacheTest, FallsBackToNamespaceWhenProcessEntryEvicted) {
  DnsCache c(DnsCacheLimits{4, 3600 * kSec});
  const AddrBytes addr = v4(10, 3, 3, 3);
  c.add(1, 100, answer("x.example", {addr}), 1 * kSec);  // ns(addr), 100(addr)
  c.add(1, 200, answer("y.example", {addr}), 2 * kSec);  // ns(addr) updated, 200(addr)
  EXPECT_EQ(c.size(), 3u);
  // Two more entries push out the least recently used one: pid 100's.
  c.add(1, 300, answer("z.example", {v4(10, 4, 4, 4)}), 3 * kSec);
  EXPECT_EQ(c.size(), 4u);
  auto hit = c.lookup(1, 100, 4, addr, 4 * kSec);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->name, "y.example");
  EXPECT_FALSE(hit->same_process);
}

TEST(DnsCacheTest, EvictsLeastRecentlyUsedAtTheBound) {
  DnsCache c(DnsCacheLimits{4, 3600 * kSec});
  c.add(1, 100, answer("a.example", {v4(10, 0, 0, 1)}), 1 * kSec);
  c.add(1, 100, answer("b.example", {v4(10, 0, 0, 2)}), 2 * kSec);
  EXPECT_EQ(c.size(), 4u);
  // Using a's address makes b's entries the least recently used.
  EXPECT_EQ(name_of(c, 1, 100, 4, v4(10, 0, 0, 1), 3 * kSec), "a.example");
  c.add(1, 100, answer("c.example", {v4(10, 0, 0, 3)}), 4 * kSec);
  EXPECT_EQ(c.size(), 4u);
  EXPECT_EQ(name_of(c, 1, 100, 4, v4(10, 0, 0, 2), 5 * kSec), "<miss>");
  EXPECT_EQ(name_of(c, 1, 555, 4, v4(10, 0, 0, 2), 5 * kSec), "<miss>");
  EXPECT_EQ(name_of(c, 1, 100, 4, v4(10, 0, 0, 1), 5 * kSec), "a.example");
  EXPECT_EQ(name_of(c, 1, 555, 4, v4(10, 0, 0, 3), 5 * kSec), "c.example");
}

TEST(DnsCacheTest, BoundHoldsUnderManyAnswers) {
  DnsCache c(DnsCacheLimits{100, 3600 * kSec});
  for (std::uint32_t i = 0; i < 1000; ++i) {
    c.add(i % 7, i, answer("n" + std::to_string(i), {v4(10, 0, i >> 8, i & 0xff)}), i * kMs);
    ASSERT_LE(c.size(), 100u);
  }
  // The last answers are all still there.
  EXPECT_EQ(name_of(c, 999 % 7, 999, 4, v4(10, 0, 999 >> 8, 999 & 0xff), kSec), "n999");
  EXPECT_EQ(name_of(c, 998 % 7, 1, 4, v4(10, 0, 998 >> 8, 998 & 0xff), kSec), "n998");
}

TEST(DnsCacheTest, ZeroEntriesKeepsNothing) {
  DnsCache c(DnsCacheLimits{0, 3600 * kSec});
  c.add(1, 1, answer("a.example", {v4(10, 0, 0, 1)}), 0);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_FALSE(c.lookup(1, 1, 4, v4(10, 0, 0, 1), 0));
}

TEST(DnsCacheTest, ExpiresByAge) {
  DnsCache c(DnsCacheLimits{100, 10 * kSec});
  const AddrBytes addr = v4(10, 5, 5, 5);
  c.add(1, 100, answer("aged.example", {addr}), 1 * kSec);
  // Exactly max_age old is still good.
  auto hit = c.lookup(1, 100, 4, addr, 11 * kSec);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->age_ns, 10 * kSec);
  // One nanosecond more and both entries are dropped as they are met.
  EXPECT_FALSE(c.lookup(1, 100, 4, addr, 11 * kSec + 1));
  EXPECT_EQ(c.size(), 0u);
}

TEST(DnsCacheTest, PrunesExpiredEntriesAsTheyAreMet) {
  DnsCache c(DnsCacheLimits{100, 10 * kSec});
  c.add(1, 100, answer("idle.example", {v4(10, 6, 6, 6)}), 0);
  EXPECT_EQ(c.size(), 2u);
  // Adding (or looking up) something else long after drops idle entries at
  // the cold end of the list without their being looked up.
  c.add(1, 100, answer("fresh.example", {v4(10, 7, 7, 7)}), 60 * kSec);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(name_of(c, 1, 100, 4, v4(10, 7, 7, 7), 60 * kSec), "fresh.example");
}

TEST(DnsCacheTest, AnswerNewerThanLookupHasAgeZero) {
  DnsCache c;
  c.add(1, 100, answer("late.example", {v4(10, 8, 8, 8)}), 5 * kSec);
  auto hit = c.lookup(1, 100, 4, v4(10, 8, 8, 8), 4 * kSec);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->age_ns, 0u);
}

TEST(DnsCacheTest, MappedAddressFindsTheARecord) {
  DnsCache c;
  c.add(1, 100, answer("dual.example", {v4(192, 0, 2, 7)}), kSec);
  EXPECT_EQ(name_of(c, 1, 100, 6, mapped(192, 0, 2, 7), kSec), "dual.example");
}

TEST(DnsCacheTest, Ipv4IgnoresTrailingBytes) {
  DnsCache c;
  AddrBytes dirty = v4(192, 0, 2, 8);
  dirty[10] = 0xaa;
  c.add(1, 100, answer("v4.example", {dirty}), kSec);
  EXPECT_EQ(name_of(c, 1, 100, 4, v4(192, 0, 2, 8), kSec), "v4.example");
}

// bcc: " (%.3fms)" of the age in microseconds, when it is more than 100 ms.
TEST(DnsCacheTextTest, NameWithAgeAbove100Ms) {
  const AddrBytes addr = v4(93, 184, 216, 34);
  auto text = [&](std::uint64_t age) {
    return dns_query_text(DnsCache::Hit{"example.com", age, true}, 4, addr);
  };
  EXPECT_EQ(text(0), "example.com");
  EXPECT_EQ(text(99 * kMs), "example.com");
  EXPECT_EQ(text(100 * kMs), "example.com");
  EXPECT_EQ(text(100 * kMs + 999), "example.com");  // 100.000 ms to the microsecond
  EXPECT_EQ(text(100 * kMs + 1000), "example.com (100.001ms)");
  EXPECT_EQ(text(141 * kMs + 554'999), "example.com (141.554ms)");
  EXPECT_EQ(text(2500 * kMs + 999'999), "example.com (2500.999ms)");
  EXPECT_EQ(text(3'600'000 * kMs + 20'000), "example.com (3600000.020ms)");
}

TEST(DnsCacheTextTest, HitWinsOverLoopback) {
  EXPECT_EQ(dns_query_text(DnsCache::Hit{"my.local", 0, false}, 4, v4(127, 0, 0, 1)), "my.local");
}

// bcc says "localhost" only when the printed address is "127.0.0.1" or "::1".
TEST(DnsCacheTextTest, NoAnswer) {
  const std::optional<DnsCache::Hit> none;
  EXPECT_EQ(dns_query_text(none, 4, v4(127, 0, 0, 1)), "localhost");
  EXPECT_EQ(dns_query_text(none, 4, v4(127, 12, 34, 56)), "No DNS Query");
  EXPECT_EQ(dns_query_text(none, 4, v4(127, 0, 0, 2)), "No DNS Query");
  EXPECT_EQ(dns_query_text(none, 4, v4(128, 0, 0, 1)), "No DNS Query");
  EXPECT_EQ(dns_query_text(none, 4, v4(10, 0, 0, 127)), "No DNS Query");

  AddrBytes v6_loopback{};
  v6_loopback[15] = 1;
  EXPECT_EQ(dns_query_text(none, 6, v6_loopback), "localhost");
  AddrBytes v6_any{};
  EXPECT_EQ(dns_query_text(none, 6, v6_any), "No DNS Query");
  AddrBytes v6_two{};
  v6_two[15] = 2;
  EXPECT_EQ(dns_query_text(none, 6, v6_two), "No DNS Query");
  AddrBytes v6_global = v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  EXPECT_EQ(dns_query_text(none, 6, v6_global), "No DNS Query");
  // Printed "::ffff:127.0.0.1": not what bcc calls localhost.
  EXPECT_EQ(dns_query_text(none, 6, mapped(127, 0, 0, 1)), "No DNS Query");
  EXPECT_EQ(dns_query_text(none, 6, mapped(10, 0, 0, 1)), "No DNS Query");
}

// JSON's "localhost": the whole loopback range.
TEST(DnsCacheTextTest, Loopback) {
  EXPECT_TRUE(is_loopback(4, v4(127, 0, 0, 1)));
  EXPECT_TRUE(is_loopback(4, v4(127, 12, 34, 56)));
  EXPECT_FALSE(is_loopback(4, v4(126, 255, 255, 255)));
  EXPECT_FALSE(is_loopback(4, v4(128, 0, 0, 1)));
  EXPECT_FALSE(is_loopback(4, v4(10, 0, 0, 127)));

  AddrBytes v6_loopback{};
  v6_loopback[15] = 1;
  EXPECT_TRUE(is_loopback(6, v6_loopback));
  AddrBytes v6_any{};
  EXPECT_FALSE(is_loopback(6, v6_any));
  AddrBytes v6_two{};
  v6_two[15] = 2;
  EXPECT_FALSE(is_loopback(6, v6_two));
  EXPECT_TRUE(is_loopback(6, mapped(127, 0, 0, 1)));
  EXPECT_TRUE(is_loopback(6, mapped(127, 9, 8, 7)));
  EXPECT_FALSE(is_loopback(6, mapped(10, 0, 0, 1)));
  // IPv4-compatible (not mapped) ::127.0.0.1 is not loopback.
  EXPECT_FALSE(is_loopback(6, v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 127, 0, 0, 1})));
}

}  // namespace
}  // namespace tcpconnect
