#include "enrich/dns_parse.h"

#include <arpa/nameser.h>
#include <resolv.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace tcpconnect {
namespace {

// A CNAME chain longer than this is treated as broken; resolvers give up far
// earlier, and it bounds the walk on hostile input.
constexpr int kMaxCnameHops = 16;

// Strips the final dot of a presentation-format name, unless it is escaped
// ("a\." ends in a literal dot inside the label, not in the root).
std::string_view strip_root_dot(std::string_view name) {
  if (name.empty() || name.back() != '.') return name;
  size_t backslashes = 0;
  for (size_t i = name.size() - 1; i > 0 && name[i - 1] == '\\'; --i) ++backslashes;
  if (backslashes % 2 == 1) return name;
  name.remove_suffix(1);
  return name;
}

// Key under which names compare: DNS names match ASCII case-insensitively.
// ns_name_ntop escapes every non-printable byte as \DDD, so folding ASCII
// letters here is exact and independent of the locale.
std::string name_key(std::string_view name) {
  std::string key(strip_root_dot(name));
  for (char& c : key) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return key;
}

struct AddrRecord {
  std::string owner;  // name_key form
  DnsAddress addr;
};

std::optional<DnsAnswer> parse(std::span<const std::uint8_t> msg) {
  // ns_initparse takes an int length and must not see a null/short buffer;
  // nothing larger than 64 KiB can be a DNS message anyway.
  if (msg.size() < NS_HFIXEDSZ || msg.size() > NS_MAXMSG) return std::nullopt;

  ns_msg handle;
  // ns_initparse walks every section and fails unless the records end
  // exactly at the end of the buffer, so truncated data stops here.
  if (ns_initparse(msg.data(), static_cast<int>(msg.size()), &handle) < 0) return std::nullopt;
  if (ns_msg_getflag(handle, ns_f_qr) != 1) return std::nullopt;
  if (ns_msg_getflag(handle, ns_f_rcode) != ns_r_noerror) return std::nullopt;
  if (ns_msg_count(handle, ns_s_qd) < 1 || ns_msg_count(handle, ns_s_an) < 1) return std::nullopt;

  ns_rr rr;
  if (ns_parserr(&handle, ns_s_qd, 0, &rr) < 0 || ns_rr_class(rr) != ns_c_in) return std::nullopt;
  DnsAnswer answer;
  answer.name = std::string(strip_root_dot(ns_rr_name(rr)));

  // One sequential pass over the answer section: ns_parserr continues from
  // the previous record, whereas jumping around would re-skip from the start.
  std::unordered_map<std::string, std::string> cname_of;  // owner -> target, first wins
  std::vector<AddrRecord> records;
  const int count = ns_msg_count(handle, ns_s_an);
  for (int i = 0; i < count; ++i) {
    if (ns_parserr(&handle, ns_s_an, i, &rr) < 0) return std::nullopt;
    if (ns_rr_class(rr) != ns_c_in) continue;
    const ns_type type = ns_rr_type(rr);
    const size_t rdlen = ns_rr_rdlen(rr);
    if (type == ns_t_cname) {
      if (rdlen == 0) continue;  // else the name would be read from the next record
      char target[NS_MAXDNAME];
      const int used = ns_name_uncompress(ns_msg_base(handle), ns_msg_end(handle), ns_rr_rdata(rr),
                                          target, sizeof target);
      // The target must fill the rdata exactly; anything else is malformed.
      if (used < 0 || static_cast<size_t>(used) != rdlen) continue;
      cname_of.try_emplace(name_key(ns_rr_name(rr)), name_key(target));
    } else if ((type == ns_t_a && rdlen == NS_INADDRSZ) ||
               (type == ns_t_aaaa && rdlen == NS_IN6ADDRSZ)) {
      AddrRecord rec{name_key(ns_rr_name(rr)), {}};
      rec.addr.ip = type == ns_t_a ? 4 : 6;
      rec.addr.ttl = ns_rr_ttl(rr);
      std::memcpy(rec.addr.addr.data(), ns_rr_rdata(rr), rdlen);
      records.push_back(std::move(rec));
    }
  }

  // Names that stand for the question: itself and its CNAME chain.
  std::unordered_set<std::string> aliases{name_key(answer.name)};
  std::string current = name_key(answer.name);
  for (int hop = 0; hop < kMaxCnameHops; ++hop) {
    auto it = cname_of.find(current);
    if (it == cname_of.end() || !aliases.insert(it->second).second) break;  // end or loop
    current = it->second;
  }

  for (auto& rec : records) {
    if (aliases.contains(rec.owner)) answer.addrs.push_back(rec.addr);
  }
  if (answer.addrs.empty()) return std::nullopt;
  return answer;
}

}  // namespace

std::optional<DnsAnswer> parse_dns_answer(std::span<const std::uint8_t> msg, bool stream) {
  // Over TCP each message follows its 2-byte length, but a client may have
  // read that length with a separate recv(); strip it only when it matches.
  if (stream && msg.size() >= 2 && static_cast<size_t>((msg[0] << 8) | msg[1]) == msg.size() - 2) {
    msg = msg.subspan(2);
  }
  try {
    return parse(msg);
  } catch (const std::bad_alloc&) {  // the only thing that can throw; input is untrusted
    return std::nullopt;
  }
}

}  // namespace tcpconnect
