// libFuzzer target for parse_dns_answer. Each input is tried both as a
// datagram and as bytes read from a TCP socket.
//
// libresolv is not built with ASan, so its over-reads would go unnoticed in
// the fuzzer's heap copy of the input. The input is therefore also placed
// right before an inaccessible page: reading one byte past the end faults.

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "enrich/dns_parse.h"

namespace {

constexpr size_t kCapacity = size_t{128} * 1024;  // beyond any DNS message, with a TCP prefix

// Start of kCapacity usable bytes followed by one PROT_NONE page.
std::uint8_t* guarded_buffer() {
  static std::uint8_t* buf = [] {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* p =
        // cppcheck-suppress invalidFunctionArg ; MAP_ANONYMOUS takes fd -1
        mmap(nullptr, kCapacity + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    auto* base = static_cast<std::uint8_t*>(p);
    if (mprotect(base + kCapacity, page, PROT_NONE) != 0) abort();
    return base;
  }();
  return buf;
}

void check(const std::optional<tcpconnect::DnsAnswer>& ans) {
  if (!ans) return;
  if (ans->addrs.empty()) __builtin_trap();
  for (const auto& a : ans->addrs) {
    if (a.ip != 4 && a.ip != 6) __builtin_trap();
    if (a.ip == 4) {
      for (size_t i = 4; i < a.addr.size(); ++i) {
        if (a.addr[i] != 0) __builtin_trap();
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  check(tcpconnect::parse_dns_answer(input, false));
  check(tcpconnect::parse_dns_answer(input, true));

  if (size > 0 && size <= kCapacity) {
    std::uint8_t* end = guarded_buffer() + kCapacity;
    std::memcpy(end - size, data, size);
    const std::span<const std::uint8_t> tail(end - size, size);
    check(tcpconnect::parse_dns_answer(tail, false));
    check(tcpconnect::parse_dns_answer(tail, true));
  }
  return 0;
}
