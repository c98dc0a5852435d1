#include "model/event.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "tcpconnect/abi.h"

namespace tcpconnect {
namespace {

AddrBytes v4(const char* text) {
  AddrBytes a{};
  EXPECT_EQ(inet_pton(AF_INET, text, a.data()), 1) << text;
  return a;
}

AddrBytes v6(const char* text) {
  AddrBytes a{};
  EXPECT_EQ(inet_pton(AF_INET6, text, a.data()), 1) << text;
  return a;
}

tc_connect_record ipv4_record() {
  tc_connect_record r;
  std::memset(&r, 0, sizeof(r));
  r.ts_ns = 5'000'000'000ULL;
  r.pid = 1234;
  r.tid = 1235;
  r.uid = 1000;
  r.type = TC_REC_CONNECT;
  r.af = TC_AF_INET;
  r.sport = 40000;
  r.dport = 80;
  r.emit_point = TC_EMIT_CONNECT_RETURN;
  const AddrBytes s = v4("10.0.0.1");
  const AddrBytes d = v4("93.184.216.34");
  std::memcpy(r.saddr, s.data(), 4);
  std::memcpy(r.daddr, d.data(), 4);
  std::memcpy(r.comm, "curl", 4);
  return r;
}

std::vector<std::uint8_t> bytes_of(const tc_connect_record& r) {
  std::vector<std::uint8_t> b(sizeof(r));
  std::memcpy(b.data(), &r, sizeof(r));
  return b;
}

TEST(EventDecode, IPv4) {
  const auto bytes = bytes_of(ipv4_record());
  const auto ev = decode_connect(bytes, 1'700'000'000'000'000'000LL);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->mono_ns, 5'000'000'000ULL);
  EXPECT_EQ(ev->ts_ns, 1'700'000'005'000'000'000ULL);
  EXPECT_EQ(ev->pid, 1234u);
  EXPECT_EQ(ev->tid, 1235u);
  EXPECT_EQ(ev->uid, 1000u);
  EXPECT_EQ(ev->ip, 4);
  EXPECT_EQ(ev->saddr, v4("10.0.0.1"));
  EXPECT_EQ(ev->daddr, v4("93.184.216.34"));
  EXPECT_EQ(ev->sport, 40000);
  EXPECT_EQ(ev->dport, 80);
  EXPECT_EQ(ev->comm, "curl");
}

TEST(EventDecode, OwnerStartTime) {
  auto r = ipv4_record();
  r.start_ns = 123'456'789'000ULL;
  const auto bytes = bytes_of(r);
  const auto ev = decode_connect(bytes, 0);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->start_ns, 123'456'789'000ULL);
}

TEST(EventDecode, ExecRecordUnalignedWithStartTime) {
  tc_exec_record r;
  std::memset(&r, 0, sizeof(r));
  r.ts_ns = 7;
  r.pid = 42;
  r.ppid = 41;
  r.type = TC_REC_EXEC;
  r.start_ns = 987'654'321ULL;
  const char args[] = "sh\0-c\0true";
  r.len = sizeof(args) - 1;
  std::memcpy(r.args, args, r.len);
  const std::size_t n = offsetof(tc_exec_record, args) + r.len;
  std::vector<std::uint8_t> buf(n + 1);
  std::memcpy(buf.data() + 1, &r, n);  // odd address: decoding must not rely on alignment
  const auto e = decode_exec(std::span(buf).subspan(1));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->pid, 42u);
  EXPECT_EQ(e->ppid, 41u);
  EXPECT_EQ(e->start_ns, 987'654'321ULL);
  EXPECT_EQ(std::string(e->args.begin(), e->args.end()), std::string(args, sizeof(args) - 1));
  EXPECT_FALSE(decode_exec(std::span(buf).subspan(1, offsetof(tc_exec_record, args) - 1)));
}

TEST(EventDecode, IPv4IgnoresUnusedAddressBytes) {
  auto r = ipv4_record();
  std::memset(r.saddr + 4, 0xaa, 12);
  std::memset(r.daddr + 4, 0x55, 12);
  const auto bytes = bytes_of(r);
  const auto ev = decode_connect(bytes, 0);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->saddr, v4("10.0.0.1"));
  EXPECT_EQ(ev->daddr, v4("93.184.216.34"));
}

TEST(EventDecode, IPv6) {
  auto r = ipv4_record();
  r.af = TC_AF_INET6;
  r.sport = 51234;
  r.dport = 443;
  const AddrBytes s = v6("fe80::1234:5678:9abc:def0");
  const AddrBytes d = v6("2001:db8::1");
  std::memcpy(r.saddr, s.data(), 16);
  std::memcpy(r.daddr, d.data(), 16);
  const auto bytes = bytes_of(r);
  const auto ev = decode_connect(bytes, 0);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->ip, 6);
  EXPECT_EQ(ev->saddr, s);
  EXPECT_EQ(ev->daddr, d);
  EXPECT_EQ(ev->sport, 51234);
  EXPECT_EQ(ev->dport, 443);
  EXPECT_EQ(ev->ts_ns, 5'000'000'000ULL);
}

TEST(EventDecode, NegativeOffset) {
  const auto bytes = bytes_of(ipv4_record());
  const auto ev = decode_connect(bytes, -1'000'000'000LL);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->ts_ns, 4'000'000'000ULL);
  EXPECT_EQ(ev->mono_ns, 5'000'000'000ULL);
}

TEST(EventDecode, ShortBuffer) {
  const auto bytes = bytes_of(ipv4_record());
  EXPECT_FALSE(decode_connect(std::span(bytes).first(sizeof(tc_connect_record) - 1), 0));
  EXPECT_FALSE(decode_connect({}, 0));
}

TEST(EventDecode, LongerBufferAccepted) {
  auto bytes = bytes_of(ipv4_record());
  bytes.resize(bytes.size() + 8, 0xee);
  const auto ev = decode_connect(bytes, 0);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->pid, 1234u);
}

TEST(EventDecode, BadType) {
  auto r = ipv4_record();
  r.type = 0;
  EXPECT_FALSE(decode_connect(bytes_of(r), 0));
  r.type = 5;
  EXPECT_FALSE(decode_connect(bytes_of(r), 0));
  r.type = TC_REC_CLOSE;
  r.outcome = 7;  // past TC_OUT_ABORTED
  EXPECT_FALSE(decode_connect(bytes_of(r), 0));
}

TEST(EventDecode, CloseRecordCarriesLifetime) {
  auto r = ipv4_record();
  r.type = TC_REC_CLOSE;
  r.dir = TC_DIR_IN;
  r.outcome = TC_OUT_ESTABLISHED;
  r.latency_ns = 1500;
  r.duration_ns = 300'000'000;
  r.tx_bytes = 11;
  r.rx_bytes = 22;
  auto ev = decode_connect(bytes_of(r), 0);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->kind, EventKind::Close);
  EXPECT_TRUE(ev->inbound);
  EXPECT_EQ(ev->outcome, Outcome::Established);
  EXPECT_EQ(ev->latency_ns, 1500u);
  EXPECT_EQ(ev->duration_ns, 300'000'000u);
  EXPECT_EQ(ev->tx_bytes, 11u);
  EXPECT_EQ(ev->rx_bytes, 22u);
}

TEST(EventOutcome, Names) {
  EXPECT_EQ(outcome_name(Outcome::None, 0), "");
  EXPECT_EQ(outcome_name(Outcome::Established, 0), "established");
  EXPECT_EQ(outcome_name(Outcome::Refused, 111), "refused");
  EXPECT_EQ(outcome_name(Outcome::TimedOut, 110), "timed out");
  EXPECT_EQ(outcome_name(Outcome::Reset, 104), "reset");
  EXPECT_EQ(outcome_name(Outcome::Aborted, 0), "aborted");
  EXPECT_EQ(outcome_name(Outcome::Error, 101), "ENETUNREACH");
  EXPECT_EQ(outcome_name(Outcome::Error, 0), "error");
  EXPECT_EQ(errno_name(99999), "E99999");
}

// The Prometheus spelling: no spaces, lower case, "unknown" for no outcome.
TEST(EventOutcome, Labels) {
  EXPECT_EQ(outcome_label(Outcome::None, 0), "unknown");
  EXPECT_EQ(outcome_label(Outcome::Established, 0), "established");
  EXPECT_EQ(outcome_label(Outcome::Refused, 111), "refused");
  EXPECT_EQ(outcome_label(Outcome::TimedOut, 110), "timed_out");
  EXPECT_EQ(outcome_label(Outcome::Reset, 104), "reset");
  EXPECT_EQ(outcome_label(Outcome::Aborted, 0), "aborted");
  EXPECT_EQ(outcome_label(Outcome::Error, 101), "enetunreach");
  EXPECT_EQ(outcome_label(Outcome::Error, 4242), "e4242");
  EXPECT_EQ(outcome_label(Outcome::Error, 0), "error");
}

// Every row of the table: the label is the name in lower case with '_' for ' ' (but None's).
TEST(EventOutcome, TableSpellingsAgree) {
  for (const OutcomeSpelling& s : kOutcomeSpellings) {
    EXPECT_EQ(outcome_name(s.outcome, 0), s.name);
    EXPECT_EQ(outcome_label(s.outcome, 0), s.label);
    if (s.outcome == Outcome::None) continue;
    std::string want(s.name);
    for (char& c : want)
      if (c == ' ') c = '_';
    EXPECT_EQ(s.label, want);
  }
}

TEST(EventDecode, BadAddressFamily) {
  auto r = ipv4_record();
  r.af = 1;  // AF_UNIX
  EXPECT_FALSE(decode_connect(bytes_of(r), 0));
}

TEST(EventDecode, Unaligned) {
  const auto rec = bytes_of(ipv4_record());
  for (std::size_t shift = 1; shift < 8; ++shift) {
    std::vector<std::uint8_t> buf(rec.size() + shift, 0);
    std::memcpy(buf.data() + shift, rec.data(), rec.size());
    const auto ev = decode_connect(std::span(buf).subspan(shift), 0);
    ASSERT_TRUE(ev.has_value()) << shift;
    EXPECT_EQ(ev->pid, 1234u);
    EXPECT_EQ(ev->mono_ns, 5'000'000'000ULL);
    EXPECT_EQ(ev->daddr, v4("93.184.216.34"));
    EXPECT_EQ(ev->comm, "curl");
  }
}

TEST(EventDecode, CommStopsAtFirstNul) {
  auto r = ipv4_record();
  std::memcpy(r.comm, "ab\0cdefgh", 9);
  const auto ev = decode_connect(bytes_of(r), 0);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->comm, "ab");
}

TEST(EventDecode, CommWithoutNulUsesAll16Bytes) {
  auto r = ipv4_record();
  std::memcpy(r.comm, "0123456789abcdef", 16);
  const auto ev = decode_connect(bytes_of(r), 0);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->comm, "0123456789abcdef");
}

TEST(EventDecode, CommKeepsRawBytes) {
  auto r = ipv4_record();
  std::memcpy(r.comm, "\x01\xff\xc3", 4);
  const auto ev = decode_connect(bytes_of(r), 0);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->comm, std::string("\x01\xff\xc3"));
}

std::vector<std::uint8_t> count_key(std::uint16_t af, const AddrBytes& s, const AddrBytes& d,
                                    std::uint16_t dport) {
  tc_count_key k;
  std::memset(&k, 0, sizeof(k));
  k.af = af;
  k.dport = dport;
  std::memcpy(k.saddr, s.data(), 16);
  std::memcpy(k.daddr, d.data(), 16);
  std::vector<std::uint8_t> b(sizeof(k));
  std::memcpy(b.data(), &k, sizeof(k));
  return b;
}

TEST(EventDecodeCount, IPv4) {
  const auto key = count_key(TC_AF_INET, v4("10.0.0.1"), v4("10.0.0.2"), 8080);
  const auto row = decode_count(key, 42);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->ip, 4);
  EXPECT_EQ(row->saddr, v4("10.0.0.1"));
  EXPECT_EQ(row->daddr, v4("10.0.0.2"));
  EXPECT_EQ(row->dport, 8080);
  EXPECT_EQ(row->count, 42u);
}

TEST(EventDecodeCount, IPv6Unaligned) {
  const auto key = count_key(TC_AF_INET6, v6("::1"), v6("2001:db8::1"), 22);
  std::vector<std::uint8_t> buf(key.size() + 3);
  std::memcpy(buf.data() + 3, key.data(), key.size());
  const auto row = decode_count(std::span(buf).subspan(3), 7);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->ip, 6);
  EXPECT_EQ(row->saddr, v6("::1"));
  EXPECT_EQ(row->daddr, v6("2001:db8::1"));
  EXPECT_EQ(row->dport, 22);
  EXPECT_EQ(row->count, 7u);
}

TEST(EventDecodeCount, SourcePort) {
  auto key = count_key(TC_AF_INET, v4("10.0.0.1"), v4("10.0.0.2"), 443);
  tc_count_key k;
  std::memcpy(&k, key.data(), sizeof(k));
  k.sport = 40001;
  std::memcpy(key.data(), &k, sizeof(k));
  const auto row = decode_count(key, 1);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->dport, 443);
  EXPECT_EQ(row->sport, 40001);
}

TEST(EventDecodeCount, WrongSizeOrFamily) {
  auto key = count_key(TC_AF_INET, v4("10.0.0.1"), v4("10.0.0.2"), 80);
  EXPECT_FALSE(decode_count(std::span(key).first(key.size() - 1), 1));
  key.push_back(0);
  EXPECT_FALSE(decode_count(key, 1));
  EXPECT_FALSE(decode_count(count_key(0, v4("10.0.0.1"), v4("10.0.0.2"), 80), 1));
}

TEST(FormatAddress, IPv4) {
  EXPECT_EQ(format_address(4, v4("127.0.0.1")), "127.0.0.1");
  EXPECT_EQ(format_address(4, v4("255.255.255.255")), "255.255.255.255");
  EXPECT_EQ(format_address(4, v4("0.0.0.0")), "0.0.0.0");
}

TEST(FormatAddress, IPv6Rfc5952) {
  const struct {
    const char* in;
    const char* want;
  } cases[] = {
      {"::1", "::1"},
      {"2001:db8::1", "2001:db8::1"},
      {"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
      {"2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"},
      {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},
      {"::ffff:10.1.2.3", "::ffff:10.1.2.3"},
      {"fe80::1234:5678:9abc:def0", "fe80::1234:5678:9abc:def0"},
      {"::", "::"},
      {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},
      {"2001:0db8:85a3:1234:5678:8a2e:0370:7334", "2001:db8:85a3:1234:5678:8a2e:370:7334"},
  };
  for (const auto& c : cases) EXPECT_EQ(format_address(6, v6(c.in)), c.want) << c.in;
}

TEST(FormatAddress, IPv4UsesFirstFourBytes) {
  AddrBytes a = v4("192.168.1.2");
  a[4] = 0xff;
  a[15] = 0x01;
  EXPECT_EQ(format_address(4, a), "192.168.1.2");
}

CountRow row(int ip, const AddrBytes& s, const AddrBytes& d, std::uint16_t port,
             std::uint64_t count) {
  CountRow r;
  r.ip = ip;
  r.saddr = s;
  r.daddr = d;
  r.dport = port;
  r.count = count;
  return r;
}

TEST(EventSortCountRows, MostFrequentFirstDeterministicTies) {
  std::vector<CountRow> rows = {
      row(6, v6("::1"), v6("::2"), 80, 5),           row(4, v4("10.0.0.1"), v4("10.0.0.3"), 443, 5),
      row(4, v4("10.0.0.1"), v4("10.0.0.2"), 80, 5), row(6, v6("::1"), v6("::1"), 22, 10),
      row(4, v4("10.0.0.1"), v4("10.0.0.2"), 22, 5), row(4, v4("9.0.0.1"), v4("10.0.0.9"), 1, 5),
      row(4, v4("10.0.0.1"), v4("10.0.0.2"), 1, 1),
  };
  // Every permutation start gives the same order.
  for (std::size_t rot = 0; rot < rows.size(); ++rot) {
    std::vector<CountRow> r = rows;
    std::rotate(r.begin(), r.begin() + static_cast<std::ptrdiff_t>(rot), r.end());
    sort_count_rows(r);
    std::vector<std::string> got;
    for (const auto& x : r) {
      got.push_back(format_address(x.ip, x.saddr) + ">" + format_address(x.ip, x.daddr) + ":" +
                    std::to_string(x.dport) + "=" + std::to_string(x.count));
    }
    const std::vector<std::string> want = {
        "::1>::1:22=10",          "9.0.0.1>10.0.0.9:1=5",    "10.0.0.1>10.0.0.2:22=5",
        "10.0.0.1>10.0.0.2:80=5", "10.0.0.1>10.0.0.3:443=5", "::1>::2:80=5",
        "10.0.0.1>10.0.0.2:1=1",
    };
    EXPECT_EQ(got, want) << "rotation " << rot;
  }
}

}  // namespace
}  // namespace tcpconnect
