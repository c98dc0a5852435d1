// One rule for every text field that carries bytes from outside the tool
// (task names, command lines, cgroup names, DNS names) before it reaches a
// terminal, a log or a Prometheus label.
//
// Printable, well-formed UTF-8 passes through unchanged. Everything a
// terminal could act on, or that is not UTF-8 at all, is written as `\xHH`
// per byte:
//   - C0 controls (0x00-0x1f) and DEL (0x7f);
//   - C1 controls, UTF-8 encoded (U+0080-U+009F: 0xc2 0x80-0x9f), which
//     terminals honour like their 8-bit forms (U+009B is CSI);
//   - bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E,
//     U+2066-U+2069), which reorder what a reader sees;
//   - every byte of an ill-formed sequence: a stray continuation byte (raw
//     C1 bytes 0x80-0x9f among them), a bad lead byte (0xc0, 0xc1,
//     0xf5-0xff), an overlong form, a surrogate, a value past U+10FFFF, or a
//     sequence cut short.
// A literal backslash is written `\\`, so the output decodes back to the
// original bytes without ambiguity.
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

namespace tcpconnect {

inline constexpr std::size_t kNoLimit = std::numeric_limits<std::size_t>::max();

// Appends the escaped form of `s` to `out`, at most `max_bytes` bytes of it.
// A character is never split: an escaped character (`\xc2\x9b` for U+009B,
// `\\`) or a multi-byte UTF-8 character that would cross the limit is left
// out whole, as is everything after it. Returns the number of bytes appended.
std::size_t append_escaped(std::string& out, std::string_view s, std::size_t max_bytes = kNoLimit);

// The escaped form of `s`, cut as append_escaped() does.
std::string escape_text(std::string_view s, std::size_t max_bytes = kNoLimit);

}  // namespace tcpconnect
