#include "enrich/dns_parse.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <gtest/gtest.h>
#include <resolv.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace tcpconnect {
namespace {

// Builds DNS responses: res_mkquery lays out the header and question, the
// answer records are appended here with dn_comp so owner names and CNAME
// targets get compressed the way servers do it.
class Response {
 public:
  explicit Response(const char* qname, int qtype = ns_t_a) {
    const int n = res_mkquery(ns_o_query, qname, ns_c_in, qtype, nullptr, 0, nullptr, buf_.data(),
                              static_cast<int>(buf_.size()));
    if (n < 0) throw std::runtime_error(std::string("res_mkquery failed for ") + qname);
    len_ = static_cast<size_t>(n);
    buf_[2] |= 0x80;  // QR: this is a response
    dnptrs_[0] = buf_.data();
    dnptrs_[1] = buf_.data() + NS_HFIXEDSZ;  // the question's name, a compression target
  }

  // The compression list points into the buffer, so copies must rebase it.
  Response(const Response& other) : buf_(other.buf_), len_(other.len_) {
    for (size_t i = 0; i < dnptrs_.size() && other.dnptrs_[i]; ++i) {
      dnptrs_[i] = buf_.data() + (other.dnptrs_[i] - other.buf_.data());
    }
  }
  Response& operator=(const Response&) = delete;

  Response& query() {
    buf_[2] &= 0x7f;
    return *this;
  }
  Response& rcode(int code) {
    buf_[3] = static_cast<uint8_t>((buf_[3] & 0xf0) | code);
    return *this;
  }

  Response& a(const char* owner, const char* ip, uint32_t ttl = 300) {
    uint8_t rdata[NS_INADDRSZ];
    if (inet_pton(AF_INET, ip, rdata) != 1) throw std::runtime_error(ip);
    return record(owner, ns_t_a, rdata, ttl);
  }
  Response& aaaa(const char* owner, const char* ip, uint32_t ttl = 300) {
    uint8_t rdata[NS_IN6ADDRSZ];
    if (inet_pton(AF_INET6, ip, rdata) != 1) throw std::runtime_error(ip);
    return record(owner, ns_t_aaaa, rdata, ttl);
  }
  Response& cname(const char* owner, const char* target, uint32_t ttl = 300) {
    uint8_t* rr = header(owner, ns_t_cname, ns_c_in, ttl);
    const int n = dn_comp(target, buf_.data() + len_, static_cast<int>(buf_.size() - len_),
                          dnptrs_.data(), dnptrs_.data() + dnptrs_.size());
    if (n < 0) throw std::runtime_error(target);
    len_ += n;
    ns_put16(static_cast<unsigned>(n), rr + 8);  // rdlength
    return *this;
  }
  // Any record, rdata given verbatim.
  Response& record(const char* owner, int type, std::span<const uint8_t> rdata, uint32_t ttl = 300,
                   int cls = ns_c_in) {
    uint8_t* rr = header(owner, type, cls, ttl);
    std::memcpy(buf_.data() + len_, rdata.data(), rdata.size());
    len_ += rdata.size();
    ns_put16(static_cast<unsigned>(rdata.size()), rr + 8);
    return *this;
  }

  std::vector<uint8_t> bytes() const { return {buf_.begin(), buf_.begin() + len_}; }

 private:
  // Appends owner, type, class, ttl and a zero rdlength; returns where the
  // fixed part starts. Bumps ANCOUNT.
  uint8_t* header(const char* owner, int type, int cls, uint32_t ttl) {
    const int n = dn_comp(owner, buf_.data() + len_, static_cast<int>(buf_.size() - len_),
                          dnptrs_.data(), dnptrs_.data() + dnptrs_.size());
    if (n < 0) throw std::runtime_error(owner);
    len_ += n;
    uint8_t* rr = buf_.data() + len_;
    ns_put16(type, rr);
    ns_put16(cls, rr + 2);
    ns_put32(ttl, rr + 4);
    ns_put16(0, rr + 8);
    len_ += NS_RRFIXEDSZ;
    ns_put16(ns_get16(buf_.data() + 6) + 1, buf_.data() + 6);
    return rr;
  }

  std::array<uint8_t, NS_MAXMSG> buf_{};
  size_t len_ = 0;
  std::array<unsigned char*, 128> dnptrs_{};
};

AddrBytes v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return {a, b, c, d}; }

AddrBytes v6(const char* text) {
  AddrBytes out{};
  EXPECT_EQ(inet_pton(AF_INET6, text, out.data()), 1);
  return out;
}

std::vector<uint8_t> with_length(const std::vector<uint8_t>& msg) {
  std::vector<uint8_t> out(msg.size() + 2);
  ns_put16(static_cast<unsigned>(msg.size()), out.data());
  std::copy(msg.begin(), msg.end(), out.begin() + 2);
  return out;
}

// Whatever comes back from hostile input must still be a sane answer.
void expect_sane(const std::optional<DnsAnswer>& ans) {
  if (!ans) return;
  EXPECT_FALSE(ans->addrs.empty());
  EXPECT_LT(ans->name.size(), static_cast<size_t>(NS_MAXDNAME));
  for (const auto& a : ans->addrs) {
    ASSERT_TRUE(a.ip == 4 || a.ip == 6);
    if (a.ip == 4) {
      for (size_t i = 4; i < a.addr.size(); ++i) EXPECT_EQ(a.addr[i], 0);
    }
  }
}

TEST(DnsParse, ARecord) {
  const auto msg = Response("www.example.com").a("www.example.com", "192.0.2.1", 3600).bytes();
  const auto ans = parse_dns_answer(msg, false);
  ASSERT_TRUE(ans);
  EXPECT_EQ(ans->name, "www.example.com");
  ASSERT_EQ(ans->addrs.size(), 1u);
  EXPECT_EQ(ans->addrs[0].ip, 4);
  EXPECT_EQ(ans->addrs[0].addr, v4(192, 0, 2, 1));
  EXPECT_EQ(ans->addrs[0].ttl, 3600u);
}

TEST(DnsParse, AaaaRecord) {
  const auto msg = Response("v6.example.org", ns_t_aaaa)
                       .aaaa("v6.example.org", "2001:db8::1", 60)
                       .aaaa("v6.example.org", "::ffff:10.0.0.1", 60)
                       .bytes();
  const auto ans = parse_dns_answer(msg, false);
  ASSERT_TRUE(ans);
  EXPECT_EQ(ans->name, "v6.example.org");
  ASSERT_EQ(ans->addrs.size(), 2u);
  EXPECT_EQ(ans->addrs[0].ip, 6);
  EXPECT_EQ(ans->addrs[0].addr, v6("2001:db8::1"));
  EXPECT_EQ(ans->addrs[1].addr, v6("::ffff:10.0.0.1"));
  EXPECT_EQ(ans->addrs[1].ttl, 60u);
}

TEST(DnsParse, CnameChainReportsAskedName) {
  const auto msg = Response("a.example.net")
                       .cname("a.example.net", "b.example.net")
                       .cname("b.example.net", "c.example.net")
                       .a("c.example.net", "198.51.100.7")
                       .a("c.example.net", "198.51.100.8")
                       .bytes();
  const auto ans = parse_dns_answer(msg, false);
  ASSERT_TRUE(ans);
  EXPECT_EQ(ans->name, "a.example.net");
  ASSERT_EQ(ans->addrs.size(), 2u);
  EXPECT_EQ(ans->addrs[0].addr, v4(198, 51, 100, 7));
  EXPECT_EQ(ans->addrs[1].addr, v4(198, 51, 100, 8));
}

TEST(DnsParse, CnameChainOutOfOrder) {
  // Servers need not list the chain in order.
  const auto msg = Response("a.example.net")
                       .a("c.example.net", "198.51.100.7")
                       .cname("b.example.net", "c.example.net")
                       .cname("a.example.net", "b.example.net")
                       .bytes();
  const auto ans = parse_dns_answer(msg, false);
  ASSERT_TRUE(ans);
  ASSERT_EQ(ans->addrs.size(), 1u);
  EXPECT_EQ(ans->addrs[0].addr, v4(198, 51, 100, 7));
}

TEST(DnsParse, NamesCompareCaseInsensitively) {
  const auto msg = Response("WWW.Example.COM")
                       .cname("www.example.com", "Edge.CDN.example")
                       .a("EDGE.cdn.EXAMPLE", "203.0.113.5")
                       .bytes();
  const auto ans = parse_dns_answer(msg, false);
  ASSERT_TRUE(ans);
  EXPECT_EQ(ans->name, "WWW.Example.COM");  // as asked
  ASSERT_EQ(ans->addrs.size(), 1u);
  EXPECT_EQ(ans->addrs[0].addr, v4(203, 0, 113, 5));
}

TEST(DnsParse, CnameLoopTerminates) {
  const auto looping = Response("a.loop.test")
                           .cname("a.loop.test", "b.loop.test")
                           .cname("b.loop.test", "a.loop.test");
  EXPECT_FALSE(parse_dns_answer(looping.bytes(), false));

  // Addresses on the loop are still the question's.
  auto with_addr = looping;
  with_addr.a("b.loop.test", "192.0.2.9");
  const auto ans = parse_dns_answer(with_addr.bytes(), false);
  ASSERT_TRUE(ans);
  ASSERT_EQ(ans->addrs.size(), 1u);
  EXPECT_EQ(ans->addrs[0].addr, v4(192, 0, 2, 9));

  const auto self = Response("s.loop.test").cname("s.loop.test", "s.loop.test").bytes();
  EXPECT_FALSE(parse_dns_answer(self, false));
}

TEST(DnsParse, CnameChainIsBounded) {
  // n0 -> n1 -> ... -> n<hops>, with the address on the last name.
  auto chain = [](int hops) {
    Response r("n0.chain.test");
    for (int i = 0; i < hops; ++i) {
      r.cname(("n" + std::to_string(i) + ".chain.test").c_str(),
              ("n" + std::to_string(i + 1) + ".chain.test").c_str());
    }
    r.a(("n" + std::to_string(hops) + ".chain.test").c_str(), "192.0.2.1");
    return r.bytes();
  };
  EXPECT_TRUE(parse_dns_answer(chain(16), false));
  EXPECT_FALSE(parse_dns_answer(chain(17), false));
}

TEST(DnsParse, UnrelatedRecordsIgnored) {
  const auto msg = Response("a.example.net")
                       .a("other.example.net", "10.9.9.9")
                       .cname("a.example.net", "b.example.net")
                       .cname("x.example.net", "a.example.net")  // points at us, not from us
                       .a("x.example.net", "10.8.8.8")
                       .a("b.example.net", "10.1.1.1")
                       .aaaa("c.example.net", "2001:db8::c")
                       .bytes();
  const auto ans = parse_dns_answer(msg, false);
  ASSERT_TRUE(ans);
  ASSERT_EQ(ans->addrs.size(), 1u);
  EXPECT_EQ(ans->addrs[0].addr, v4(10, 1, 1, 1));

  EXPECT_FALSE(
      parse_dns_answer(Response("a.example.net").a("b.example.net", "10.0.0.1").bytes(), false));
}

TEST(DnsParse, WrongRdataLengthSkipped) {
  const uint8_t five[] = {10, 0, 0, 1, 0};
  const uint8_t four[] = {10, 0, 0, 2};
  const auto msg = Response("len.test")
                       .record("len.test", ns_t_a, five)
                       .record("len.test", ns_t_aaaa, four)
                       .a("len.test", "10.0.0.3")
                       .bytes();
  const auto ans = parse_dns_answer(msg, false);
  ASSERT_TRUE(ans);
  ASSERT_EQ(ans->addrs.size(), 1u);
  EXPECT_EQ(ans->addrs[0].addr, v4(10, 0, 0, 3));

  EXPECT_FALSE(
      parse_dns_answer(Response("len.test").record("len.test", ns_t_a, five).bytes(), false));
}

TEST(DnsParse, NonInternetClassSkipped) {
  const uint8_t addr[] = {10, 0, 0, 1};
  const auto msg = Response("chaos.test").record("chaos.test", ns_t_a, addr, 300, ns_c_chaos);
  EXPECT_FALSE(parse_dns_answer(msg.bytes(), false));
}

TEST(DnsParse, LargeAnswerParsedFully) {
  Response r("many.example.com");
  for (int i = 0; i < 40; ++i) r.a("many.example.com", ("10.0.0." + std::to_string(i)).c_str());
  const auto msg = r.bytes();
  ASSERT_GT(msg.size(), 512u);
  for (bool stream : {false, true}) {
    const auto ans = parse_dns_answer(stream ? with_length(msg) : msg, stream);
    ASSERT_TRUE(ans);
    ASSERT_EQ(ans->addrs.size(), 40u);
    for (int i = 0; i < 40; ++i) EXPECT_EQ(ans->addrs[i].addr, v4(10, 0, 0, i));
  }
}

TEST(DnsParse, TcpWithLengthPrefix) {
  const auto msg = Response("tcp.example").a("tcp.example", "192.0.2.53").bytes();
  const auto ans = parse_dns_answer(with_length(msg), true);
  ASSERT_TRUE(ans);
  EXPECT_EQ(ans->name, "tcp.example");
  EXPECT_EQ(ans->addrs[0].addr, v4(192, 0, 2, 53));
  // A datagram never carries the prefix: the header is then misread.
  EXPECT_FALSE(parse_dns_answer(with_length(msg), false));
}

TEST(DnsParse, TcpWithoutLengthPrefix) {
  const auto msg = Response("tcp.example").a("tcp.example", "192.0.2.53").bytes();
  const auto ans = parse_dns_answer(msg, true);
  ASSERT_TRUE(ans);
  EXPECT_EQ(ans->addrs[0].addr, v4(192, 0, 2, 53));
}

TEST(DnsParse, TcpLengthOnly) {
  const std::vector<uint8_t> zero{0, 0}, other{0x01, 0x20};
  EXPECT_FALSE(parse_dns_answer(zero, true));
  EXPECT_FALSE(parse_dns_answer(other, true));
  EXPECT_FALSE(parse_dns_answer({}, true));
  EXPECT_FALSE(parse_dns_answer({}, false));
}

TEST(DnsParse, QueryRejected) {
  const auto msg = Response("q.example").a("q.example", "192.0.2.1").query().bytes();
  EXPECT_FALSE(parse_dns_answer(msg, false));
  EXPECT_FALSE(parse_dns_answer(with_length(msg), true));
}

TEST(DnsParse, ErrorsRejected) {
  for (int code : {ns_r_nxdomain, ns_r_servfail, ns_r_refused}) {
    const auto msg = Response("gone.example").a("gone.example", "192.0.2.1").rcode(code).bytes();
    EXPECT_FALSE(parse_dns_answer(msg, false)) << "rcode " << code;
  }
}

TEST(DnsParse, OddBytesInName) {
  // A NUL and a literal dot inside labels; ns_name_ntop escapes both.
  const char* name = "a\\000b\\.c.example";
  const auto msg = Response(name).a(name, "192.0.2.2").bytes();
  const auto ans = parse_dns_answer(msg, false);
  ASSERT_TRUE(ans);
  EXPECT_EQ(ans->name, name);

  // A name ending in an escaped dot keeps it.
  const char* dotted = "x.trail\\.";
  const auto ans2 = parse_dns_answer(Response(dotted).a(dotted, "192.0.2.3").bytes(), false);
  ASSERT_TRUE(ans2);
  EXPECT_EQ(ans2->name, dotted);
}

TEST(DnsParse, HandWrittenMessages) {
  // clang-format off
  // Response, NOERROR, 1 question, 1 answer: example.test A -> 192.0.2.10
  const std::vector<uint8_t> good = {
      0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,                   // header
      7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0,   // qname
      0, 1, 0, 1,                                                       // A IN
      0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 10,    // answer, ttl 3600
  };
  const auto ans = parse_dns_answer(good, false);
  ASSERT_TRUE(ans);
  EXPECT_EQ(ans->name, "example.test");
  EXPECT_EQ(ans->addrs[0].addr, v4(192, 0, 2, 10));
  EXPECT_EQ(ans->addrs[0].ttl, 3600u);

  // Question name is a compression pointer to itself.
  const std::vector<uint8_t> ptr_loop = {
      0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,                   // header
      0xc0, 0x0c, 0, 1, 0, 1,                                           // qname -> offset 12
      0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 10,         // answer
  };
  EXPECT_FALSE(parse_dns_answer(ptr_loop, false));

  // Answer owner points past the end of the message.
  auto ptr_out = good;
  ptr_out[30] = 0xc0;
  ptr_out[31] = 0xff;
  EXPECT_FALSE(parse_dns_answer(ptr_out, false));

  // No question.
  const std::vector<uint8_t> no_question = {
      0x12, 0x34, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0,                   // header, QDCOUNT 0
      7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0,   // answer owner
      0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 10,                     // A IN ttl 60
  };
  // clang-format on
  EXPECT_FALSE(parse_dns_answer(no_question, false));

  // Trailing bytes after the last record.
  auto trailing = good;
  trailing.push_back(0);
  EXPECT_FALSE(parse_dns_answer(trailing, false));
}

TEST(DnsParse, TruncatedAtEveryLength) {
  const auto msg = Response("trunc.example.com")
                       .cname("trunc.example.com", "edge.example.net")
                       .a("edge.example.net", "192.0.2.1")
                       .aaaa("edge.example.net", "2001:db8::1")
                       .bytes();
  ASSERT_TRUE(parse_dns_answer(msg, false));
  const auto framed = with_length(msg);
  for (size_t n = 0; n < msg.size(); ++n) {
    // Copies, so ASan sees reads past the prefix.
    const std::vector<uint8_t> cut(msg.begin(), msg.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(parse_dns_answer(cut, false)) << "length " << n;
    expect_sane(parse_dns_answer(cut, true));
  }
  for (size_t n = 0; n <= framed.size(); ++n) {
    const std::vector<uint8_t> cut(framed.begin(), framed.begin() + static_cast<std::ptrdiff_t>(n));
    const auto ans = parse_dns_answer(cut, true);
    expect_sane(ans);
    if (n == framed.size()) {
      EXPECT_TRUE(ans);
    }
  }
}

TEST(DnsParse, Garbage) {
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> buf(rng() % 600);
    for (auto& b : buf) b = static_cast<uint8_t>(byte(rng));
    if (i % 2 && buf.size() > 4) buf[2] = 0x81, buf[3] = 0x80;  // get past the flag checks
    expect_sane(parse_dns_answer(buf, false));
    expect_sane(parse_dns_answer(buf, true));
  }

  // Valid messages with bytes flipped: structure mostly intact, so the
  // record walk is exercised far more than by random bytes.
  const auto base = Response("mut.example")
                        .cname("mut.example", "x.mut.example")
                        .a("x.mut.example", "192.0.2.1")
                        .aaaa("mut.example", "2001:db8::2")
                        .bytes();
  for (int i = 0; i < 20000; ++i) {
    auto buf = base;
    for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k) {
      buf[rng() % buf.size()] = static_cast<uint8_t>(byte(rng));
    }
    expect_sane(parse_dns_answer(buf, false));
  }

  EXPECT_FALSE(parse_dns_answer(std::vector<uint8_t>(12, 0), false));
  EXPECT_FALSE(parse_dns_answer(std::vector<uint8_t>(512, 0xff), false));
  EXPECT_FALSE(parse_dns_answer(std::vector<uint8_t>(70000, 0), true));
}

}  // namespace
}  // namespace tcpconnect
