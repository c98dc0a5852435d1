#include "cli/options.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tcpconnect {
namespace {

using Kind = ParseResult::Kind;

ParseResult parse(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"tcpconnect"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

Options run(const std::vector<std::string>& args) {
  ParseResult r = parse(args);
  EXPECT_EQ(r.kind, Kind::Run) << r.text;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.text, "");
  return r.options;
}

// Asserts an error result with exactly `message` (one line, exit code 2).
void expect_error(const std::vector<std::string>& args, const std::string& message) {
  std::string joined;
  for (const auto& a : args) joined += "[" + a + "]";
  SCOPED_TRACE("args: " + joined);
  ParseResult r = parse(args);
  EXPECT_EQ(r.kind, Kind::Error);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.text, message);
  EXPECT_EQ(r.text.find('\n'), std::string::npos);
  EXPECT_EQ(r.text.find('\r'), std::string::npos);
  EXPECT_EQ(r.text.rfind("tcpconnect: ", 0), 0u);
}

// ---------------------------------------------------------------------------------------------
// Defaults and flags

TEST(OptionsDefaults, NoArguments) {
  const Options o = run({});
  EXPECT_FALSE(o.timestamp);
  EXPECT_FALSE(o.pid.has_value());
  EXPECT_TRUE(o.ports.empty());
  EXPECT_FALSE(o.ipv4);
  EXPECT_FALSE(o.ipv6);
  EXPECT_FALSE(o.lport);
  EXPECT_FALSE(o.print_uid);
  EXPECT_FALSE(o.uid.has_value());
  EXPECT_FALSE(o.count);
  EXPECT_FALSE(o.json);
  EXPECT_FALSE(o.duration_s.has_value());
  EXPECT_FALSE(o.verbose);
  EXPECT_EQ(o.attach, AttachMode::Auto);
}

TEST(OptionsDefaults, ArgcZeroAndNullArgv) {
  const ParseResult r = parse_options(0, nullptr);
  EXPECT_EQ(r.kind, Kind::Run);
  EXPECT_EQ(r.exit_code, 0);
}

TEST(OptionsFlags, Timestamp) {
  EXPECT_TRUE(run({"-t"}).timestamp);
  EXPECT_TRUE(run({"--timestamp"}).timestamp);
}

TEST(OptionsFlags, Ipv4) {
  EXPECT_TRUE(run({"-4"}).ipv4);
  EXPECT_TRUE(run({"--ipv4"}).ipv4);
  EXPECT_FALSE(run({"-4"}).ipv6);
}

TEST(OptionsFlags, Ipv6) {
  EXPECT_TRUE(run({"-6"}).ipv6);
  EXPECT_TRUE(run({"--ipv6"}).ipv6);
  EXPECT_FALSE(run({"-6"}).ipv4);
}

TEST(OptionsFlags, Lport) {
  EXPECT_TRUE(run({"-L"}).lport);
  EXPECT_TRUE(run({"--lport"}).lport);
}

TEST(OptionsFlags, SourcePortIsAliasOfLport) {
  EXPECT_TRUE(run({"-s"}).lport);
  EXPECT_TRUE(run({"--source-port"}).lport);
  for (const char* alias : {"-s", "--source-port", "--lport"}) {
    const Options a = run({alias});
    const Options b = run({"-L"});
    EXPECT_EQ(a.lport, b.lport);
    EXPECT_EQ(a.timestamp, b.timestamp);
    EXPECT_EQ(a.ports, b.ports);
  }
  // Same flag, so giving both is fine.
  EXPECT_TRUE(run({"-L", "-s"}).lport);
}

TEST(OptionsFlags, PrintUid) {
  EXPECT_TRUE(run({"-U"}).print_uid);
  EXPECT_TRUE(run({"--print-uid"}).print_uid);
}

TEST(OptionsFlags, Count) {
  EXPECT_TRUE(run({"-c"}).count);
  EXPECT_TRUE(run({"--count"}).count);
}

TEST(OptionsFlags, Json) {
  EXPECT_TRUE(run({"-j"}).json);
  EXPECT_TRUE(run({"--json"}).json);
}

TEST(OptionsFlags, Verbose) {
  EXPECT_TRUE(run({"-v"}).verbose);
  EXPECT_TRUE(run({"--verbose"}).verbose);
}

TEST(OptionsFlags, RepeatedFlagsAreHarmless) {
  EXPECT_TRUE(run({"-t", "-t"}).timestamp);
  EXPECT_TRUE(run({"-v", "--verbose"}).verbose);
}

TEST(OptionsFlags, ClusteredShortFlags) {
  const Options o = run({"-tULcjv4"});
  EXPECT_TRUE(o.timestamp);
  EXPECT_TRUE(o.print_uid);
  EXPECT_TRUE(o.lport);
  EXPECT_TRUE(o.count);
  EXPECT_TRUE(o.json);
  EXPECT_TRUE(o.verbose);
  EXPECT_TRUE(o.ipv4);
}

TEST(OptionsFlags, FlagOnlySetsItsOwnField) {
  const Options o = run({"-j"});
  EXPECT_TRUE(o.json);
  EXPECT_FALSE(o.timestamp);
  EXPECT_FALSE(o.count);
  EXPECT_FALSE(o.verbose);
  EXPECT_FALSE(o.lport);
  EXPECT_FALSE(o.print_uid);
}

TEST(OptionsFlags, AllTogether) {
  const Options o = run({"-t", "-p", "181", "-P", "80,81", "-4", "-L", "-U", "-u", "1000", "-c",
                         "-j", "--duration", "10", "-v", "--attach", "tracepoint"});
  EXPECT_TRUE(o.timestamp);
  EXPECT_EQ(o.pid, 181u);
  EXPECT_EQ(o.ports, (std::vector<std::uint16_t>{80, 81}));
  EXPECT_TRUE(o.ipv4);
  EXPECT_FALSE(o.ipv6);
  EXPECT_TRUE(o.lport);
  EXPECT_TRUE(o.print_uid);
  EXPECT_EQ(o.uid, 1000u);
  EXPECT_TRUE(o.count);
  EXPECT_TRUE(o.json);
  EXPECT_EQ(o.duration_s, 10.0);
  EXPECT_TRUE(o.verbose);
  EXPECT_EQ(o.attach, AttachMode::Tracepoint);
}

// ---------------------------------------------------------------------------------------------
// Value options: accepted forms

TEST(OptionsPid, AllSpellings) {
  EXPECT_EQ(run({"-p", "181"}).pid, 181u);
  EXPECT_EQ(run({"--pid", "181"}).pid, 181u);
  EXPECT_EQ(run({"--pid=181"}).pid, 181u);
  EXPECT_EQ(run({"-p181"}).pid, 181u);
}

TEST(OptionsPid, Bounds) {
  EXPECT_EQ(run({"-p", "1"}).pid, 1u);
  EXPECT_EQ(run({"-p", "4194304"}).pid, 4194304u);
  EXPECT_EQ(run({"-p", "0042"}).pid, 42u);  // leading zeros are still decimal
}

TEST(OptionsUid, AllSpellings) {
  EXPECT_EQ(run({"-u", "1000"}).uid, 1000u);
  EXPECT_EQ(run({"--uid", "1000"}).uid, 1000u);
  EXPECT_EQ(run({"--uid=1000"}).uid, 1000u);
  EXPECT_EQ(run({"-u1000"}).uid, 1000u);
}

TEST(OptionsUid, Bounds) {
  EXPECT_EQ(run({"-u", "0"}).uid, 0u);
  EXPECT_EQ(run({"-u", "4294967294"}).uid, 4294967294u);
}

TEST(OptionsPorts, SingleAndList) {
  EXPECT_EQ(run({"-P", "80"}).ports, (std::vector<std::uint16_t>{80}));
  EXPECT_EQ(run({"--port", "80,81"}).ports, (std::vector<std::uint16_t>{80, 81}));
  EXPECT_EQ(run({"--port=443"}).ports, (std::vector<std::uint16_t>{443}));
  EXPECT_EQ(run({"-P22"}).ports, (std::vector<std::uint16_t>{22}));
  EXPECT_EQ(run({"-P", "1,65535"}).ports, (std::vector<std::uint16_t>{1, 65535}));
}

TEST(OptionsPorts, DuplicatesRemovedKeepingFirstSeenOrder) {
  EXPECT_EQ(run({"-P", "81,80,81,443,80"}).ports, (std::vector<std::uint16_t>{81, 80, 443}));
  EXPECT_EQ(run({"-P", "80,80"}).ports, (std::vector<std::uint16_t>{80}));
}

TEST(OptionsPorts, SixtyFourEntriesAllowed) {
  std::string list;
  std::vector<std::uint16_t> expected;
  for (int i = 1; i <= 64; ++i) {
    list += (i > 1 ? "," : "") + std::to_string(1000 + i);
    expected.push_back(static_cast<std::uint16_t>(1000 + i));
  }
  EXPECT_EQ(run({"-P", list}).ports, expected);
}

TEST(OptionsDuration, IntegerAndDecimal) {
  EXPECT_EQ(run({"--duration", "10"}).duration_s, 10.0);
  EXPECT_EQ(run({"--duration=10"}).duration_s, 10.0);
  EXPECT_EQ(run({"--duration", "0.5"}).duration_s, 0.5);
  EXPECT_EQ(run({"--duration", ".25"}).duration_s, 0.25);
  EXPECT_EQ(run({"--duration", "1000000000"}).duration_s, 1e9);
}

TEST(OptionsAttach, EveryMode) {
  EXPECT_EQ(run({"--attach", "auto"}).attach, AttachMode::Auto);
  EXPECT_EQ(run({"--attach", "tp_btf"}).attach, AttachMode::TpBtf);
  EXPECT_EQ(run({"--attach", "raw_tp"}).attach, AttachMode::RawTp);
  EXPECT_EQ(run({"--attach=tracepoint"}).attach, AttachMode::Tracepoint);
}

TEST(OptionsAttach, ModeNamesRoundTrip) {
  for (AttachMode m :
       {AttachMode::Auto, AttachMode::TpBtf, AttachMode::RawTp, AttachMode::Tracepoint}) {
    EXPECT_EQ(run({"--attach", attach_mode_name(m)}).attach, m);
  }
  EXPECT_STREQ(attach_mode_name(AttachMode::Auto), "auto");
  EXPECT_STREQ(attach_mode_name(AttachMode::TpBtf), "tp_btf");
  EXPECT_STREQ(attach_mode_name(AttachMode::RawTp), "raw_tp");
  EXPECT_STREQ(attach_mode_name(AttachMode::Tracepoint), "tracepoint");
}

TEST(OptionsSeparator, DoubleDashAloneIsAccepted) { EXPECT_TRUE(run({"-t", "--"}).timestamp); }

// ---------------------------------------------------------------------------------------------
// Help

TEST(OptionsHelp, ShortAndLong) {
  for (const char* flag : {"-h", "--help"}) {
    const ParseResult r = parse({flag});
    EXPECT_EQ(r.kind, Kind::Help);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_FALSE(r.text.empty());
  }
}

TEST(OptionsHelp, ContainsUsageDescriptionAndEveryFlag) {
  const ParseResult r = parse({"--help"});
  const std::string& h = r.text;
  EXPECT_EQ(h.rfind("Usage: tcpconnect [OPTIONS]\n", 0), 0u) << h;
  EXPECT_NE(h.find("Trace TCP active connections"), std::string::npos);
  for (const char* name :
       {"-h",         "--help",  "-t",        "--timestamp",   "-p",        "--pid",
        "-P",         "--port",  "-4",        "--ipv4",        "-6",        "--ipv6",
        "-L",         "-s",      "--lport",   "--source-port", "-U",        "--print-uid",
        "-u",         "--uid",   "-c",        "--count",       "-j",        "--json",
        "--duration", "-v",      "--verbose", "--attach",      "PID",       "PORTS",
        "UID",        "SECONDS", "tp_btf",    "raw_tp",        "tracepoint"}) {
    EXPECT_NE(h.find(name), std::string::npos) << "missing " << name;
  }
  EXPECT_EQ(h.find("args"), std::string::npos) << "hidden positional leaked into help";
}

TEST(OptionsHelp, HasExamplesSection) {
  const std::string h = parse({"-h"}).text;
  const auto ex = h.find("\nexamples:\n");
  ASSERT_NE(ex, std::string::npos) << h;
  EXPECT_GT(ex, h.find("--attach"));  // examples come after the option list
  for (const char* example :
       {"    tcpconnect ", "tcpconnect -t ", "tcpconnect -p 181 ", "tcpconnect -P 80 ",
        "tcpconnect -P 80,81 ", "tcpconnect -4 ", "tcpconnect -6 ", "tcpconnect -U ",
        "tcpconnect -u 1000 ", "tcpconnect -c ", "tcpconnect -L ", "tcpconnect -j ",
        "tcpconnect --duration 10 "}) {
    EXPECT_NE(h.find(example, ex), std::string::npos) << "missing example " << example;
  }
  EXPECT_EQ(h.back(), '\n');
  EXPECT_EQ(h.find("\n\n\n"), std::string::npos);
}

TEST(OptionsHelp, WinsOverLaterBadValues) {
  EXPECT_EQ(parse({"-p", "abc", "-h"}).kind, Kind::Help);
  EXPECT_EQ(parse({"-h", "--bogus"}).kind, Kind::Help);
}

// ---------------------------------------------------------------------------------------------
// Errors: command-line structure

TEST(OptionsErrors, UnknownOption) {
  expect_error({"--bogus"}, "tcpconnect: unknown option '--bogus'");
  expect_error({"-x"}, "tcpconnect: unknown option '-x'");
  expect_error({"--bogus=5"}, "tcpconnect: unknown option '--bogus=5'");
  expect_error({"-tX"}, "tcpconnect: unknown option '-X'");
  expect_error({"--bogus", "5"}, "tcpconnect: unknown option '--bogus'");
  expect_error({"foo", "--bogus"}, "tcpconnect: unknown option '--bogus'");
}

TEST(OptionsErrors, UnexpectedPositional) {
  expect_error({"foo"},
               "tcpconnect: unexpected argument 'foo': tcpconnect takes no positional arguments");
  expect_error({"-t", "80"},
               "tcpconnect: unexpected argument '80': tcpconnect takes no positional arguments");
  expect_error({"-P", "80", "81"},
               "tcpconnect: unexpected argument '81': tcpconnect takes no positional arguments");
  expect_error({"--", "-t"},
               "tcpconnect: unexpected argument '-t': tcpconnect takes no positional arguments");
}

TEST(OptionsErrors, MissingValue) {
  expect_error({"-p"}, "tcpconnect: option -p/--pid requires a value (PID)");
  expect_error({"--pid"}, "tcpconnect: option -p/--pid requires a value (PID)");
  expect_error({"-t", "-p"}, "tcpconnect: option -p/--pid requires a value (PID)");
  expect_error({"-P"}, "tcpconnect: option -P/--port requires a value (PORTS)");
  expect_error({"-u"}, "tcpconnect: option -u/--uid requires a value (UID)");
  expect_error({"--duration"}, "tcpconnect: option --duration requires a value (SECONDS)");
  expect_error({"--attach"}, "tcpconnect: option --attach requires a value (MODE)");
  expect_error({"--pid="}, "tcpconnect: option -p/--pid requires a value (PID)");
}

TEST(OptionsErrors, RepeatedValueOptionIsAnError) {
  expect_error({"-p", "1", "-p", "2"}, "tcpconnect: option -p/--pid given more than once");
  expect_error({"-p", "1", "--pid=1"}, "tcpconnect: option -p/--pid given more than once");
  expect_error({"-P", "80", "-P", "81"}, "tcpconnect: option -P/--port given more than once");
  expect_error({"-u", "1", "-u", "2"}, "tcpconnect: option -u/--uid given more than once");
  expect_error({"--duration", "1", "--duration", "2"},
               "tcpconnect: option --duration given more than once");
  expect_error({"--attach", "auto", "--attach", "raw_tp"},
               "tcpconnect: option --attach given more than once");
}

TEST(OptionsErrors, FlagGivenAValue) {
  expect_error({"--json=false"}, "tcpconnect: option '--json' does not take a value");
  expect_error({"--timestamp=1"}, "tcpconnect: option '--timestamp' does not take a value");
}

TEST(OptionsErrors, Ipv4AndIpv6TogetherRejected) {
  const std::string msg = "tcpconnect: options -4/--ipv4 and -6/--ipv6 are mutually exclusive";
  expect_error({"-4", "-6"}, msg);
  expect_error({"--ipv6", "--ipv4"}, msg);
  expect_error({"-46"}, msg);
}

// ---------------------------------------------------------------------------------------------
// Errors: values

TEST(OptionsErrors, BadPid) {
  const auto msg = [](const std::string& v) {
    return "tcpconnect: invalid PID '" + v + "' for -p/--pid: expected an integer in 1..4194304";
  };
  for (const char* v : {"abc", "12x", "-5", "", "0x10", "0", "4194305", "99999999999", " 5", "+5",
                        "5 ", "1.0", "18446744073709551616"}) {
    expect_error({"-p", v}, msg(v));
  }
  expect_error({"--pid=-5"}, msg("-5"));
  expect_error({"-p-5"}, msg("-5"));
}

TEST(OptionsErrors, BadUid) {
  const auto msg = [](const std::string& v) {
    return "tcpconnect: invalid UID '" + v + "' for -u/--uid: expected an integer in 0..4294967294";
  };
  for (const char* v : {"abc", "-1", "", "4294967295", "4294967296", "1e3", "0x0", "root"}) {
    expect_error({"-u", v}, msg(v));
  }
}

TEST(OptionsErrors, BadPortsList) {
  const std::string allowed = "expected comma-separated port numbers in 1..65535";
  expect_error({"-P", ""}, "tcpconnect: invalid -P/--port value '': " + allowed);
  for (const char* v : {"80,", ",80", "80,,81", ","}) {
    expect_error({"-P", v}, std::string("tcpconnect: invalid -P/--port value '") + v +
                                "': empty entry; " + allowed);
  }
}

TEST(OptionsErrors, BadPortEntry) {
  const auto msg = [](const std::string& v) {
    return "tcpconnect: invalid port '" + v + "' in -P/--port: expected an integer in 1..65535";
  };
  expect_error({"-P", "0"}, msg("0"));
  expect_error({"-P", "65536"}, msg("65536"));
  expect_error({"-P", "http"}, msg("http"));
  expect_error({"-P", "80,x"}, msg("x"));
  expect_error({"-P", "80, 81"}, msg(" 81"));
  expect_error({"-P", " 80"}, msg(" 80"));
  expect_error({"-P", "-1"}, msg("-1"));
  expect_error({"-P", "80;81"}, msg("80;81"));
  expect_error({"-P", "0x50"}, msg("0x50"));
}

TEST(OptionsErrors, TooManyPorts) {
  std::string list;
  for (int i = 1; i <= 65; ++i) list += (i > 1 ? "," : "") + std::to_string(i);
  expect_error({"-P", list},
               "tcpconnect: too many ports in -P/--port: 65 given, at most 64 allowed");
  // The limit applies to the entries given, before duplicates are removed.
  std::string dups;
  for (int i = 1; i <= 65; ++i) dups += (i > 1 ? "," : "") + std::string("80");
  expect_error({"-P", dups},
               "tcpconnect: too many ports in -P/--port: 65 given, at most 64 allowed");
}

TEST(OptionsErrors, BadDuration) {
  const auto msg = [](const std::string& v) {
    return "tcpconnect: invalid duration '" + v +
           "' for --duration: expected a number of seconds > 0 and <= 1000000000 (e.g. 10 or 0.5)";
  };
  for (const char* v : {"0", "0.0", "-1", "-0.5", "abc", "", "inf", "nan", "infinity", "1e3", "10s",
                        " 1", ".", "1.2.3", "1000000001", "+1"}) {
    expect_error({"--duration", v}, msg(v));
  }
  expect_error({"--duration=-1"}, msg("-1"));
}

TEST(OptionsErrors, BadAttachMode) {
  const auto msg = [](const std::string& v) {
    return "tcpconnect: invalid attach mode '" + v +
           "' for --attach: expected one of auto, tp_btf, raw_tp, tracepoint";
  };
  for (const char* v : {"kprobe", "", "AUTO", "raw-tp", "fentry"}) {
    expect_error({"--attach", v}, msg(v));
  }
}

TEST(OptionsErrors, ValuesAreEscapedToKeepOneLine) {
  expect_error({"-p", "1\n2"},
               "tcpconnect: invalid PID '1\\n2' for -p/--pid: expected an integer in 1..4194304");
  expect_error({"--bo\ngus"}, "tcpconnect: unknown option '--bo\\ngus'");
  expect_error({"x\ty\x01'"},
               "tcpconnect: unexpected argument 'x\\ty\\x01\\'': tcpconnect takes no "
               "positional arguments");
}

TEST(OptionsErrors, LongValuesAreShortened) {
  const std::string v(200, '7');
  expect_error({"-p", v}, "tcpconnect: invalid PID '" + std::string(80, '7') +
                              "...' for -p/--pid: expected an integer in 1..4194304");
}

}  // namespace
}  // namespace tcpconnect

namespace tcpconnect {
namespace {

std::uint64_t page_size() { return static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)); }

std::string ringbuf_error(const std::string& value) {
  return "tcpconnect: invalid size '" + value +
         "' for --ringbuf-size: expected a power of two from " +
         std::to_string(page_size() / 1024) +
         "K (one page) to 1G, in KiB or with a unit (e.g. 64K, 4M, 1G, 16p)";
}

TEST(OptionsRingbuf, DefaultAndPowersOfTwo) {
  const char* none[] = {"tcpconnect"};
  EXPECT_EQ(parse_options(1, none).options.ringbuf_bytes, 4u << 20);
  const char* four[] = {"tcpconnect", "--ringbuf-size", "4"};
  EXPECT_EQ(parse_options(3, four).options.ringbuf_bytes, 4u << 10);
  const char* max[] = {"tcpconnect", "--ringbuf-size=1048576"};
  EXPECT_EQ(parse_options(2, max).options.ringbuf_bytes, 1u << 30);
}

// A bare number stays KiB; units give bytes, KiB or pages.
TEST(OptionsRingbuf, Units) {
  const std::uint64_t page = page_size();
  const std::vector<std::pair<std::string, std::uint64_t>> cases = {
      {"64", 64u << 10},      {"64K", 64u << 10},     {"64k", 64u << 10},
      {"64KiB", 64u << 10},   {"64kib", 64u << 10},   {"4M", 4u << 20},
      {"4MiB", 4u << 20},     {"4m", 4u << 20},       {"1G", 1u << 30},
      {"1GiB", 1u << 30},     {"1024M", 1u << 30},    {"16p", 16 * page},
      {"16pages", 16 * page}, {"1page", page},        {"1p", page},
      {"0064K", 64u << 10},   {"1048576K", 1u << 30}, {std::to_string(page / 1024) + "K", page},
  };
  for (const auto& [value, bytes] : cases) {
    EXPECT_EQ(run({"--ringbuf-size", value}).ringbuf_bytes, bytes) << value;
  }
  EXPECT_EQ(run({"--ringbuf-size=8M"}).ringbuf_bytes, 8u << 20);
}

TEST(OptionsErrors, BadRingbufSize) {
  for (const char* v : {"0", "2", "3", "100", "2097152", "x", ""}) {
    const char* argv[] = {"tcpconnect", "--ringbuf-size", v};
    auto r = parse_options(3, argv);
    EXPECT_EQ(r.kind, ParseResult::Kind::Error) << v;
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.text, ringbuf_error(v));
  }
}

TEST(OptionsErrors, BadRingbufSizeWithUnit) {
  const std::string below_page = std::to_string(page_size() / 2048) + "K";
  expect_error({"--ringbuf-size", below_page}, ringbuf_error(below_page));
  for (const char* v : {"3p",  "0p",  "p",   "K",   "48K", "2G",   "2048M", "3M",   "1T",  "4KB",
                        "4 K", " 4K", "4K ", "-4K", "+4K", "4.0M", "0x10K", "16pg", "1Gi", "4MK"}) {
    expect_error({"--ringbuf-size", v}, ringbuf_error(v));
  }
  // Numbers too large for 64 bits, or whose product with the unit would overflow.
  for (const char* v :
       {"99999999999999999999999K", "18446744073709551616p", "1099511627776K", "17179869184G"}) {
    expect_error({"--ringbuf-size", v}, ringbuf_error(v));
  }
  expect_error({"--ringbuf-size", "4K", "--ringbuf-size", "8K"},
               "tcpconnect: option --ringbuf-size given more than once");
  expect_error({"--ringbuf-size"}, "tcpconnect: option --ringbuf-size requires a value (SIZE)");
}

TEST(OptionsHelp, RingbufSizeUnits) {
  const std::string h = parse({"--help"}).text;
  EXPECT_NE(h.find("--ringbuf-size SIZE"), std::string::npos) << h;
  EXPECT_NE(h.find("64K, 4M, 1G, 16p (pages)"), std::string::npos) << h;
}

}  // namespace
}  // namespace tcpconnect

namespace tcpconnect {
namespace {

TEST(OptionsLifecycle, ModesAndShorterThan) {
  EXPECT_TRUE(parse({"--outcome"}).options.outcome);
  EXPECT_TRUE(parse({"--failed"}).options.failed);
  EXPECT_TRUE(parse({"--lifetime"}).options.lifetime);
  EXPECT_TRUE(parse({"--accept"}).options.accept);
  EXPECT_TRUE(parse({"-c", "--by-process"}).options.by_process);
  const std::pair<const char*, std::uint64_t> spans[] = {
      {"250ms", 250'000'000}, {"5s", 5'000'000'000},   {"1.5s", 1'500'000'000},
      {"100us", 100'000},     {"2m", 120'000'000'000}, {"1h", 3'600'000'000'000}};
  for (const auto& [text, ns] : spans) {
    auto r = parse({"--shorter-than", text});
    ASSERT_EQ(r.kind, ParseResult::Kind::Run) << text;
    EXPECT_EQ(r.options.shorter_than_ns, ns) << text;
    EXPECT_TRUE(r.options.lifetime) << "--shorter-than implies --lifetime";
  }
}

TEST(OptionsErrors, LifecycleCombinations) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{"-c", "--lifetime"},
       "tcpconnect: -c/--count cannot be combined with --outcome, --failed, --lifetime or "
       "--shorter-than"},
      {{"-c", "--failed"},
       "tcpconnect: -c/--count cannot be combined with --outcome, --failed, --lifetime or "
       "--shorter-than"},
      {{"--by-process"}, "tcpconnect: --by-process needs -c/--count"},
      {{"--shorter-than", "5"},
       "tcpconnect: invalid duration '5' for --shorter-than: expected a number with a unit: us, "
       "ms, s, m or h (e.g. 250ms, 5s)"},
      {{"--shorter-than", "0ms"},
       "tcpconnect: invalid duration '0ms' for --shorter-than: expected a number with a unit: "
       "us, ms, s, m or h (e.g. 250ms, 5s)"},
      {{"--shorter-than", "ms"},
       "tcpconnect: invalid duration 'ms' for --shorter-than: expected a number with a unit: "
       "us, ms, s, m or h (e.g. 250ms, 5s)"},
  };
  for (const auto& c : cases) {
    auto r = parse(c.args);
    EXPECT_EQ(r.kind, ParseResult::Kind::Error) << c.message;
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.text, c.message);
  }
}

}  // namespace
}  // namespace tcpconnect

namespace tcpconnect {
namespace {

TEST(OptionsContainers, FiltersAndColumns) {
  Options o =
      run({"--netns", "4026531840", "--cgroup", "/sys/fs/cgroup/system.slice", "--cgroupmap",
           "/sys/fs/bpf/cg", "--mntnsmap", "/sys/fs/bpf/mnt", "--container"});
  EXPECT_EQ(o.netns, 4026531840u);
  EXPECT_EQ(o.cgroup, "/sys/fs/cgroup/system.slice");
  EXPECT_EQ(o.cgroupmap, "/sys/fs/bpf/cg");
  EXPECT_EQ(o.mntnsmap, "/sys/fs/bpf/mnt");
  EXPECT_TRUE(o.container);
  EXPECT_EQ(run({"--netns", "net:[4026532281]"}).netns, 4026532281u);
  EXPECT_FALSE(run({}).netns.has_value());
}

TEST(OptionsContainers, BadValues) {
  expect_error({"--netns", "abc"},
               "tcpconnect: invalid network namespace 'abc' for --netns: expected an inode number "
               "(as in net:[4026531840])");
  expect_error({"--netns", "0"},
               "tcpconnect: invalid network namespace '0' for --netns: expected an inode number "
               "(as in net:[4026531840])");
  expect_error({"--netns", "4294967296"},
               "tcpconnect: invalid network namespace '4294967296' for --netns: expected an inode "
               "number (as in net:[4026531840])");
  expect_error({"--cgroup", ""}, "tcpconnect: option --cgroup needs a path");
  expect_error({"--cgroupmap="}, "tcpconnect: option --cgroupmap requires a value (MAPPATH)");
  expect_error({"-c", "--container"}, "tcpconnect: -c/--count cannot be combined with --container");
}

TEST(OptionsDns, FlagAndCacheLimits) {
  Options o = run({"-d"});
  EXPECT_TRUE(o.dns);
  EXPECT_EQ(o.dns_cache_size, 10000u);
  EXPECT_EQ(o.dns_max_age_ns, 3600ull * 1'000'000'000);
  o = run({"--dns", "--dns-cache-size", "50", "--dns-max-age", "1.5"});
  EXPECT_EQ(o.dns_cache_size, 50u);
  EXPECT_EQ(o.dns_max_age_ns, 1'500'000'000u);
}

TEST(OptionsDns, Conflicts) {
  expect_error({"-d", "-c"}, "tcpconnect: -c/--count cannot be combined with -d/--dns");
  expect_error({"-cd"}, "tcpconnect: -c/--count cannot be combined with -d/--dns");
  expect_error({"--dns-cache-size", "5"},
               "tcpconnect: --dns-cache-size and --dns-max-age need -d/--dns");
  expect_error({"-d", "--dns-cache-size", "0"},
               "tcpconnect: invalid size '0' for --dns-cache-size: expected an integer in "
               "1..10000000");
  expect_error({"-d", "--dns-max-age", "-1"},
               "tcpconnect: invalid age '-1' for --dns-max-age: expected a number of seconds > 0 "
               "(e.g. 600)");
}

}  // namespace
}  // namespace tcpconnect

namespace tcpconnect {
namespace {

TEST(OptionsProcess, ParentCmdlineAndCacheSize) {
  Options o = run({"--parent", "--cmdline", "--exec-cache-size", "100"});
  EXPECT_TRUE(o.parent);
  EXPECT_TRUE(o.cmdline);
  EXPECT_EQ(o.exec_cache_size, 100u);
  EXPECT_EQ(run({}).exec_cache_size, 16384u);
  expect_error({"--exec-cache-size", "0"},
               "tcpconnect: invalid size '0' for --exec-cache-size: expected an integer in "
               "1..10000000");
}

TEST(OptionsMetrics, Endpoints) {
  Options o = run({"--metrics", "9464"});
  EXPECT_EQ(o.metrics_addr, "127.0.0.1");
  EXPECT_EQ(o.metrics_port, 9464);
  o = run({"--metrics", "0.0.0.0:80", "--quiet", "--metrics-top", "5"});
  EXPECT_EQ(o.metrics_addr, "0.0.0.0");
  EXPECT_EQ(o.metrics_port, 80);
  EXPECT_TRUE(o.quiet);
  EXPECT_EQ(o.metrics_top, 5u);
  o = run({"--metrics=[::1]:9100"});
  EXPECT_EQ(o.metrics_addr, "::1");
  EXPECT_EQ(o.metrics_port, 9100);
}

TEST(OptionsMetrics, BadValues) {
  const std::string tail =
      " for --metrics: expected PORT, IPV4:PORT or [IPV6]:PORT with a port in 1..65535";
  for (const char* bad : {"abc", "0", "70000", "1.2.3.4.5:80", "localhost:80", "[::1]80",
                          "[1.2.3.4]:80", "::1:80", ":80", "127.0.0.1:"}) {
    expect_error({"--metrics", bad},
                 std::string("tcpconnect: invalid address '") + bad + "'" + tail);
  }
  expect_error({"--quiet"}, "tcpconnect: --quiet and --metrics-top need --metrics");
  expect_error({"--metrics-top", "3"}, "tcpconnect: --quiet and --metrics-top need --metrics");
  expect_error({"--metrics", "9464", "--metrics-top", "0"},
               "tcpconnect: invalid count '0' for --metrics-top: expected an integer in 1..10000");
  expect_error({"-c", "--metrics", "9464"},
               "tcpconnect: -c/--count cannot be combined with --metrics");
}

}  // namespace
}  // namespace tcpconnect
