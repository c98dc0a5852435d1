// DNS answers as they arrive at a resolver client: the name it asked for and
// the addresses the answer gave, parsed with libresolv's ns_* functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model/event.h"

namespace tcpconnect {

struct DnsAddress {
  int ip = 4;        // 4 or 6
  AddrBytes addr{};  // IPv4 uses the first 4 bytes
  std::uint32_t ttl = 0;
};

struct DnsAnswer {
  std::string name;  // the question's name, as ns_name_ntop spells it, without the final dot
  std::vector<DnsAddress> addrs;  // A/AAAA records reached from `name` through CNAMEs
};

// Parses a DNS response. `stream` says the bytes were read from a TCP socket,
// where a message may be preceded by its 2-byte length. Returns nullopt for
// anything that is not a well-formed response with a question and at least
// one A/AAAA address for it (queries, errors, truncated or garbage data).
std::optional<DnsAnswer> parse_dns_answer(std::span<const std::uint8_t> msg, bool stream);

}  // namespace tcpconnect
