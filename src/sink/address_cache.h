// Small cache in front of format_address(): inet_ntop() costs ~100-250 ns,
// and a busy host connects to the same few addresses over and over.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/event.h"

namespace tcpconnect {

class AddressCache {
 public:
  // Text of the address, as format_address(ip, bytes). The reference stays
  // valid only until the next call to get().
  const std::string& get(int ip, const AddrBytes& bytes) {
    Entry& e = entries_[slot(ip, bytes)];
    if (e.ip != ip || e.bytes != bytes) {
      e.ip = ip;
      e.bytes = bytes;
      e.text = format_address(ip, bytes);
    }
    return e.text;
  }

 private:
  static constexpr std::size_t kSlots = 64;  // direct-mapped, power of two

  struct Entry {
    int ip = 0;  // 0: empty (valid entries hold 4 or 6)
    AddrBytes bytes{};
    std::string text;
  };

  static std::size_t slot(int ip, const AddrBytes& bytes) {
    std::uint32_t h = 2166136261u ^ static_cast<std::uint32_t>(ip);  // FNV-1a
    for (std::uint8_t b : bytes) h = (h ^ b) * 16777619u;
    return (h ^ (h >> 16)) & (kSlots - 1);
  }

  std::array<Entry, kSlots> entries_{};
};

}  // namespace tcpconnect
