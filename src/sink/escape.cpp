#include "sink/escape.h"

#include <cstdint>

namespace tcpconnect {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i], with its code
// point, or 0 when s[i] cannot start one (RFC 3629, section 4).
std::size_t utf8_sequence(std::string_view s, std::size_t i, std::uint32_t& cp) {
  const auto b = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  std::uint32_t min = 0;
  if (b < 0x80) {
    cp = b;
    return 1;
  } else if ((b & 0xe0) == 0xc0) {
    len = 2, cp = b & 0x1f, min = 0x80;
  } else if ((b & 0xf0) == 0xe0) {
    len = 3, cp = b & 0x0f, min = 0x800;
  } else if ((b & 0xf8) == 0xf0) {
    len = 4, cp = b & 0x07, min = 0x10000;
  } else {
    return 0;  // a continuation byte, or 0xf8-0xff
  }
  if (s.size() - i < len) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (c & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

bool is_control(std::uint32_t cp) { return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f); }

bool is_bidi_control(std::uint32_t cp) {
  return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::size_t append_escaped(std::string& out, std::string_view s, std::size_t max_bytes) {
  const std::size_t start = out.size();
  std::size_t room = max_bytes;
  std::size_t i = 0;
  while (i < s.size()) {
    std::uint32_t cp = 0;
    std::size_t len = utf8_sequence(s, i, cp);
    const bool escape = len == 0 || is_control(cp) || is_bidi_control(cp);
    if (len == 0) len = 1;  // only the offending byte; the next one gets its own verdict
    if (escape) {
      if (room < 4 * len) break;
      for (std::size_t k = 0; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        out += '\\';
        out += 'x';
        out += kHex[b >> 4];
        out += kHex[b & 0xf];
      }
      room -= 4 * len;
    } else if (s[i] == '\\') {
      if (room < 2) break;
      out += "\\\\";
      room -= 2;
    } else {
      if (room < len) break;
      out.append(s.substr(i, len));
      room -= len;
    }
    i += len;
  }
  return out.size() - start;
}

std::string escape_text(std::string_view s, std::size_t max_bytes) {
  std::string out;
  out.reserve(s.size() < max_bytes ? s.size() : max_bytes);
  append_escaped(out, s, max_bytes);
  return out;
}

}  // namespace tcpconnect
