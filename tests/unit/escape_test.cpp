#include "sink/escape.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace tcpconnect {
namespace {

using Cases = std::vector<std::pair<std::string, std::string>>;

void expect_escaped(const Cases& cases) {
  for (const auto& [raw, want] : cases) EXPECT_EQ(escape_text(raw), want) << want;
}

TEST(Escape, PrintableTextIsUnchanged) {
  expect_escaped({
      {"", ""},
      {"curl", "curl"},
      {"sh -c 'x y' \"z\" ~!@#$%^&*()_+{}|:<>?", "sh -c 'x y' \"z\" ~!@#$%^&*()_+{}|:<>?"},
      {"caf\xc3\xa9", "caf\xc3\xa9"},  // 2-byte UTF-8
      {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},  // CJK
      {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},                                  // 4-byte (U+1F600)
      {"\xc2\xa0\xc2\xbf", "\xc2\xa0\xc2\xbf"},                                  // just past C1
      {"\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a", "\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a"},  // Arabic letters
      {"\xe2\x80\x8d\xe2\x80\xa9", "\xe2\x80\x8d\xe2\x80\xa9"},  // neighbours of the bidi set
      {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"},                  // U+10FFFF, the last code point
      {"\xed\x9f\xbf\xee\x80\x80", "\xed\x9f\xbf\xee\x80\x80"},  // around the surrogates
  });
}

TEST(Escape, C0AndDel) {
  expect_escaped({
      {std::string("a\0b", 3), "a\\x00b"},
      {"\x01\x1f", "\\x01\\x1f"},
      {"tab\there\nnl\rcr", "tab\\x09here\\x0anl\\x0dcr"},
      {"\x1b[2J\x1b]0;x\x07", "\\x1b[2J\\x1b]0;x\\x07"},
      {"del\x7f", "del\\x7f"},
      {" ~", " ~"},  // 0x20 and 0x7e are printable
  });
}

TEST(Escape, C1RawAndUtf8Encoded) {
  expect_escaped({
      {"\x9b", "\\x9b"},  // raw CSI: a stray continuation byte
      {"\x80\x9f", "\\x80\\x9f"},
      {"\xc2\x9b"
       "2J",
       "\\xc2\\x9b2J"},            // U+009B CSI
      {"\xc2\x80", "\\xc2\\x80"},  // U+0080, the first
      {"\xc2\x9f", "\\xc2\\x9f"},  // U+009F, the last
      {"\xc2\x9d"
       "0;x\xc2\x9c",
       "\\xc2\\x9d0;x\\xc2\\x9c"},  // OSC ... ST
  });
}

TEST(Escape, BidiControls) {
  expect_escaped({
      {"\xd8\x9c", "\\xd8\\x9c"},           // U+061C ALM
      {"\xe2\x80\x8e", "\\xe2\\x80\\x8e"},  // U+200E LRM
      {"\xe2\x80\x8f", "\\xe2\\x80\\x8f"},  // U+200F RLM
      {"\xe2\x80\xaa", "\\xe2\\x80\\xaa"},  // U+202A LRE
      {"a\xe2\x80\xae"
       "b",
       "a\\xe2\\x80\\xaeb"},                // U+202E RLO
      {"\xe2\x81\xa6", "\\xe2\\x81\\xa6"},  // U+2066 LRI
      {"\xe2\x81\xa9", "\\xe2\\x81\\xa9"},  // U+2069 PDI
      {"\xe2\x81\xaa", "\xe2\x81\xaa"},     // U+206A is not one of them
  });
}

TEST(Escape, InvalidUtf8ByteByByte) {
  expect_escaped({
      {"\xff\xfeok", "\\xff\\xfeok"},                         // never valid bytes
      {"\xf8\x88\x80\x80\x80", "\\xf8\\x88\\x80\\x80\\x80"},  // old 5-byte form
      {"\xc0\xaf", "\\xc0\\xaf"},                             // overlong '/'
      {"\xe0\x80\xaf", "\\xe0\\x80\\xaf"},                    // overlong, 3 bytes
      {"\xf0\x82\x82\xac", "\\xf0\\x82\\x82\\xac"},           // overlong, 4 bytes
      {"\xed\xa0\x80x", "\\xed\\xa0\\x80x"},                  // a surrogate (U+D800)
      {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"},           // U+110000
      {"ab\xe2\x82", "ab\\xe2\\x82"},                         // truncated at the end
      {"\xf0\x9f\x98", "\\xf0\\x9f\\x98"},                    // truncated 4-byte
      {"a\xe2(b", "a\\xe2(b"},                                // bad continuation
      {"\xc3\xa9\xa9", "\xc3\xa9\\xa9"},                      // one continuation too many
      {"\xe2\x80\xc3\xa9", "\\xe2\\x80\xc3\xa9"},             // cut short by a valid one
  });
}

TEST(Escape, BackslashIsDoubledSoTheOutputIsUnambiguous) {
  expect_escaped({{"a\\b", "a\\\\b"}, {"\\x9b", "\\\\x9b"}, {"\\", "\\\\"}});
  // The escape of a byte and the literal text of that escape stay apart.
  EXPECT_NE(escape_text("\x9b"), escape_text("\\x9b"));
}

TEST(Escape, WidthCutsBeforeAnEscapeThatDoesNotFit) {
  EXPECT_EQ(escape_text("0123456789abcdef", 12), "0123456789ab");
  EXPECT_EQ(escape_text("abcdefghij\x01", 12), "abcdefghij");   // \x01 needs 4 bytes, 2 left
  EXPECT_EQ(escape_text("abcdefgh\x01", 12), "abcdefgh\\x01");  // exactly fits
  EXPECT_EQ(escape_text("abcdefghijk\\", 12), "abcdefghijk");   // "\\" is not split either
  // An escaped character is kept or left out whole, never some of its bytes.
  EXPECT_EQ(escape_text("\xe2\x80\xae"
                        "x",
                        12),
            "\\xe2\\x80\\xae");
  EXPECT_EQ(escape_text("a\xe2\x80\xae", 12), "a");
  EXPECT_EQ(escape_text("\xc2\x9b"
                        "2J\x9b",
                        12),
            "\\xc2\\x9b2J");
  EXPECT_EQ(escape_text("\x01", 0), "");
  EXPECT_EQ(escape_text("\x01", 3), "");
}

TEST(Escape, WidthCutsBeforeAUtf8CharacterThatDoesNotFit) {
  EXPECT_EQ(escape_text("0123456789a\xc3\xa9", 12), "0123456789a");
  EXPECT_EQ(escape_text("0123456789\xc3\xa9", 12), "0123456789\xc3\xa9");
  EXPECT_EQ(escape_text("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83\x86\xe3\x82\xb9", 12),
            "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83\x86");
  EXPECT_EQ(escape_text("0123456789\xf0\x9f\x98\x80", 12), "0123456789");
}

TEST(Escape, AppendReportsBytesWritten) {
  std::string out = "x=";
  EXPECT_EQ(append_escaped(out,
                           "\x9b"
                           "a",
                           5),
            5u);
  EXPECT_EQ(out, "x=\\x9ba");
  EXPECT_EQ(append_escaped(out, "\x9b", 3), 0u);
  EXPECT_EQ(out, "x=\\x9ba");
}

// Whatever the input, the output is valid UTF-8 with no byte a terminal
// acts on: no C0, DEL, raw C1, and no UTF-8 C1 or bidi control.
TEST(Escape, EveryTwoByteInputComesOutClean) {
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string raw{static_cast<char>(a), static_cast<char>(b)};
      const std::string out = escape_text(raw);
      for (std::size_t i = 0; i < out.size(); ++i) {
        const auto c = static_cast<unsigned char>(out[i]);
        ASSERT_FALSE(c < 0x20 || c == 0x7f) << a << " " << b;
        if (c == 0xc2 && i + 1 < out.size()) {
          const auto n = static_cast<unsigned char>(out[i + 1]);
          ASSERT_FALSE(n >= 0x80 && n <= 0x9f) << a << " " << b;
        }
        if (c >= 0x80 && c <= 0xbf) {
          ASSERT_TRUE(i > 0 && static_cast<unsigned char>(out[i - 1]) >= 0xc2) << a << " " << b;
        }
      }
    }
  }
}

}  // namespace
}  // namespace tcpconnect
