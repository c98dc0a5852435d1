#include "cli/options.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tcpconnect/version.h"

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
  const Options o = run({"-tULjv4"});
  EXPECT_TRUE(o.timestamp);
  EXPECT_TRUE(o.print_uid);
  EXPECT_TRUE(o.lport);
  EXPECT_FALSE(o.count);
  EXPECT_TRUE(o.json);
  EXPECT_TRUE(o.verbose);
  EXPECT_TRUE(o.ipv4);
  // -c takes neither -t nor -U (see OptionsCount), but clusters with the others.
  const Options c = run({"-cLjv4"});
  EXPECT_TRUE(c.count);
  EXPECT_TRUE(c.lport);
  EXPECT_TRUE(c.json);
  EXPECT_TRUE(c.verbose);
  EXPECT_TRUE(c.ipv4);
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
  // Every bcc flag but -c, which takes neither -t nor -U (see OptionsCount).
  const Options o = run({"-t", "-p", "181", "-P", "80,81", "-4", "-L", "-U", "-u", "1000", "-j",
                         "--duration", "10", "-v", "--attach", "tracepoint"});
  EXPECT_TRUE(o.timestamp);
  EXPECT_EQ(o.pid, 181u);
  EXPECT_EQ(o.ports, (std::vector<std::uint16_t>{80, 81}));
  EXPECT_TRUE(o.ipv4);
  EXPECT_FALSE(o.ipv6);
  EXPECT_TRUE(o.lport);
  EXPECT_TRUE(o.print_uid);
  EXPECT_EQ(o.uid, 1000u);
  EXPECT_FALSE(o.count);
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
       {"-h",         "--help",   "-t",        "--timestamp",   "-p",         "--pid",
        "-P",         "--port",   "-4",        "--ipv4",        "-6",         "--ipv6",
        "-L",         "-s",       "--lport",   "--source-port", "-U",         "--print-uid",
        "-u",         "--uid",    "-c",        "--count",       "-j",         "--json",
        "--duration", "-v",       "--verbose", "--attach",      "PID",        "PORTS",
        "UID",        "DURATION", "tp_btf",    "raw_tp",        "tracepoint", "--version"}) {
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
  expect_error({"--duration"}, "tcpconnect: option --duration requires a value (DURATION)");
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

// The one message shape of every duration option.
std::string duration_error(const std::string& option, const std::string& value) {
  return "tcpconnect: invalid duration '" + value + "' for " + option +
         ": expected a duration > 0 and <= 1000000000s: a number of seconds or a number with a "
         "unit us, ms, s, m or h (e.g. 10, 0.5, 250ms, 2m)";
}

TEST(OptionsErrors, BadDuration) {
  for (const char* v : {"0",
                        "0.0",
                        "0s",
                        "-1",
                        "-0.5",
                        "abc",
                        "",
                        "inf",
                        "nan",
                        "infinity",
                        "1e3",
                        " 1",
                        ".",
                        "1.2.3",
                        "1000000001",
                        "1000000000.5",
                        "16666667m",
                        "277778h",
                        "+1",
                        "10 s",
                        "10S",
                        "5MS",
                        "5d",
                        "s",
                        "ms",
                        "1.s",
                        "0.1ns",
                        "0.0001us",
                        "5sec",
                        "1m30s",
                        "99999999999999999999999h"}) {
    expect_error({"--duration", v}, duration_error("--duration", v));
  }
  expect_error({"--duration=-1"}, duration_error("--duration", "-1"));
}

// --duration, --shorter-than and --dns-max-age read durations alike: a bare number is seconds.
TEST(OptionsDuration, OneGrammarForEveryDurationOption) {
  const std::pair<const char*, std::uint64_t> cases[] = {{"10", 10'000'000'000},
                                                         {"10s", 10'000'000'000},
                                                         {"0.5", 500'000'000},
                                                         {".25", 250'000'000},
                                                         {"0.5s", 500'000'000},
                                                         {"250ms", 250'000'000},
                                                         {"500us", 500'000},
                                                         {"2m", 120'000'000'000},
                                                         {"1.5m", 90'000'000'000},
                                                         {"1h", 3'600'000'000'000},
                                                         {"0.001us", 1},
                                                         {"1000000000", 1'000'000'000'000'000'000},
                                                         {"16666666m", 999'999'960'000'000'000}};
  for (const auto& [text, ns] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(run({"--duration", text}).duration_s, static_cast<double>(ns) / 1e9);
    EXPECT_EQ(run({"--shorter-than", text}).shorter_than_ns, ns);
    EXPECT_EQ(run({"-d", "--dns-max-age", text}).dns_max_age_ns, ns);
  }
  EXPECT_EQ(run({"--shorter-than", "5"}).shorter_than_ns, 5'000'000'000u);
  EXPECT_EQ(run({"--duration=10s"}).duration_s, 10.0);
  EXPECT_EQ(run({"-d", "--dns-max-age=1h"}).dns_max_age_ns, 3'600'000'000'000u);
}

TEST(OptionsErrors, BadDurationIsWordedAlikeForEveryOption) {
  for (const char* v : {"0", "-1", "5d", "1e3ms", "0.0001us", "300000h", "1h ", ""}) {
    expect_error({"--duration", v}, duration_error("--duration", v));
    expect_error({"--shorter-than", v}, duration_error("--shorter-than", v));
    expect_error({"-d", "--dns-max-age", v}, duration_error("--dns-max-age", v));
  }
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
  EXPECT_EQ(parse_options(1, none).options.ringbuf_bytes, 2u << 20);
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
    std::string message;
  };
  const Case cases[] = {
      {{"-c", "--lifetime"},
       "tcpconnect: -c/--count cannot be combined with --lifetime: the table counts connect "
       "attempts, not how they end"},
      {{"-c", "--failed"},
       "tcpconnect: -c/--count cannot be combined with --failed: the table counts connect "
       "attempts, not how they end"},
      {{"-c", "--outcome"},
       "tcpconnect: -c/--count cannot be combined with --outcome: the table counts connect "
       "attempts, not how they end"},
      {{"-c", "--shorter-than", "5s"},
       "tcpconnect: -c/--count cannot be combined with --shorter-than: the table counts connect "
       "attempts, not how they end"},
      {{"--shorter-than", "5s", "-c", "--lifetime", "--outcome"},
       "tcpconnect: -c/--count cannot be combined with --outcome, --lifetime or --shorter-than: "
       "the table counts connect attempts, not how they end"},
      {{"--by-process"}, "tcpconnect: --by-process needs -c/--count, --top or --hist"},
      {{"--shorter-than", "0ms"}, duration_error("--shorter-than", "0ms")},
      {{"--shorter-than", "ms"}, duration_error("--shorter-than", "ms")},
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
  expect_error({"--dns-cache-size", "5"}, "tcpconnect: --dns-cache-size needs -d/--dns");
  expect_error({"--dns-max-age", "1h"}, "tcpconnect: --dns-max-age needs -d/--dns");
  expect_error({"--dns-max-age", "1h", "--dns-cache-size", "5"},
               "tcpconnect: --dns-cache-size and --dns-max-age need -d/--dns");
  expect_error({"-d", "--dns-cache-size", "0"},
               "tcpconnect: invalid size '0' for --dns-cache-size: expected an integer in "
               "1..10000000");
  expect_error({"-d", "--dns-max-age", "-1"}, duration_error("--dns-max-age", "-1"));
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
  expect_error({"--quiet"}, "tcpconnect: --quiet needs --metrics");
  expect_error({"--metrics-top", "3"}, "tcpconnect: --metrics-top needs --metrics");
  expect_error({"--metrics-top", "3", "--quiet"},
               "tcpconnect: --quiet and --metrics-top need --metrics");
  expect_error({"--metrics", "9464", "--metrics-top", "0"},
               "tcpconnect: invalid count '0' for --metrics-top: expected an integer in 1..10000");
  expect_error({"-c", "--metrics", "9464"},
               "tcpconnect: -c/--count cannot be combined with --metrics");
}

}  // namespace
}  // namespace tcpconnect

namespace tcpconnect {
namespace {

// ---------------------------------------------------------------------------------------------
// --version

TEST(OptionsVersion, PrintsTheProjectVersion) {
  const ParseResult r = parse({"--version"});
  EXPECT_EQ(r.kind, Kind::Version);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.text, std::string("tcpconnect ") + kVersion);
  // MAJOR.MINOR.PATCH, as project(tcpconnect VERSION ...) gives it.
  const std::string v = kVersion;
  EXPECT_EQ(std::count(v.begin(), v.end(), '.'), 2) << v;
  EXPECT_EQ(v.find_first_not_of("0123456789."), std::string::npos) << v;
}

TEST(OptionsVersion, WinsOverOtherArgumentsLikeHelp) {
  EXPECT_EQ(parse({"-t", "--version"}).kind, Kind::Version);
  EXPECT_EQ(parse({"--version", "-p", "abc"}).kind, Kind::Version);
  EXPECT_EQ(parse({"--version", "--bogus"}).kind, Kind::Version);
  EXPECT_EQ(parse({"-c", "-t", "--version"}).kind, Kind::Version);
}

TEST(OptionsVersion, LongFormOnly) {
  // bcc's tcpconnect has no -V; -v is --verbose.
  expect_error({"-V"}, "tcpconnect: unknown option '-V'");
  EXPECT_EQ(parse({"-v"}).kind, Kind::Run);
  expect_error({"--version=1"}, "tcpconnect: option '--version' does not take a value");
}

// ---------------------------------------------------------------------------------------------
// Options that need another one: the message names only what was given.

TEST(OptionsNeeds, NamesOnlyTheOptionsGiven) {
  expect_error({"--quiet"}, "tcpconnect: --quiet needs --metrics");
  expect_error({"--metrics-top", "5"}, "tcpconnect: --metrics-top needs --metrics");
  expect_error({"--quiet", "--metrics-top", "5"},
               "tcpconnect: --quiet and --metrics-top need --metrics");
  expect_error({"--dns-cache-size", "5"}, "tcpconnect: --dns-cache-size needs -d/--dns");
  expect_error({"--dns-max-age", "10"}, "tcpconnect: --dns-max-age needs -d/--dns");
  expect_error({"--by-process"}, "tcpconnect: --by-process needs -c/--count, --top or --hist");
  expect_error({"--exec-cache-size", "100"},
               "tcpconnect: --exec-cache-size needs --cmdline or -j/--json");
  expect_error({"--parent", "--exec-cache-size", "100"},
               "tcpconnect: --exec-cache-size needs --cmdline or -j/--json");
  // Bad values are reported before combinations.
  expect_error({"--exec-cache-size", "0"},
               "tcpconnect: invalid size '0' for --exec-cache-size: expected an integer in "
               "1..10000000");
  EXPECT_EQ(run({"--cmdline", "--exec-cache-size", "100"}).exec_cache_size, 100u);
  EXPECT_EQ(run({"-j", "--exec-cache-size", "100"}).exec_cache_size, 100u);
}

// ---------------------------------------------------------------------------------------------
// -c/--count with every other option

TEST(OptionsCount, AllowedCombinations) {
  // The source port becomes part of the count key, as in libbpf-tools' tcpconnect -c -s.
  for (const char* lport : {"-L", "-s", "--lport", "--source-port"}) {
    const Options o = run({"-c", lport});
    EXPECT_TRUE(o.count);
    EXPECT_TRUE(o.lport);
  }
  EXPECT_TRUE(run({"-cs"}).lport);
  EXPECT_TRUE(run({"-c", "-j"}).json);
  EXPECT_TRUE(run({"-c", "--by-process", "-L", "-j"}).by_process);
  // Filters and the mechanics of tracing apply to the table as to lines.
  run({"-c",          "-p",
       "1",           "-P",
       "80",          "-u",
       "0",           "-4",
       "--netns",     "4026531840",
       "--cgroup",    "/x",
       "--cgroupmap", "/m",
       "--mntnsmap",  "/n",
       "--duration",  "1s",
       "-v",          "--attach",
       "raw_tp",      "--ringbuf-size",
       "64K"});
}

TEST(OptionsCount, RefusedCombinationsSayWhy) {
  const std::string table =
      ": the table is keyed by addresses and port; use --by-process for "
      "per-process rows";
  const std::string lifecycle = ": the table counts connect attempts, not how they end";
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"-c", "-t"},
       "-c/--count cannot be combined with -t/--timestamp: the table is printed once, at exit"},
      {{"-ct"},
       "-c/--count cannot be combined with -t/--timestamp: the table is printed once, at exit"},
      {{"-c", "-U"}, "-c/--count cannot be combined with -U/--print-uid" + table},
      {{"-c", "--print-uid", "--by-process"},
       "-c/--count cannot be combined with -U/--print-uid" + table},
      {{"-c", "--cmdline"}, "-c/--count cannot be combined with --cmdline" + table},
      {{"-c", "--parent"}, "-c/--count cannot be combined with --parent" + table},
      {{"-c", "--cmdline", "-U", "--parent"},
       "-c/--count cannot be combined with -U/--print-uid, --parent or --cmdline" + table},
      {{"-c", "--accept"}, "-c/--count cannot be combined with --accept: -c counts connects only"},
      {{"-c", "-j", "--exec-cache-size", "10"},
       "-c/--count cannot be combined with --exec-cache-size: the table has no command lines"},
      {{"-c", "--outcome"}, "-c/--count cannot be combined with --outcome" + lifecycle},
      {{"-c", "--failed", "--lifetime"},
       "-c/--count cannot be combined with --failed or --lifetime" + lifecycle},
      // Refusals kept from before, worded as before.
      {{"-c", "-d"}, "-c/--count cannot be combined with -d/--dns"},
      {{"-c", "--container"}, "-c/--count cannot be combined with --container"},
      {{"-c", "--metrics", "9464"}, "-c/--count cannot be combined with --metrics"},
  };
  for (const auto& [args, message] : cases) expect_error(args, "tcpconnect: " + message);
}

// ---------------------------------------------------------------------------------------------
// --quiet with the options of the per-event output it suppresses

TEST(OptionsQuiet, RefusesWhatItWouldIgnore) {
  const std::string why =
      ": --quiet prints no per-event output, and --metrics counts every connection";
  const std::pair<std::vector<std::string>, const char*> cases[] = {
      {{"-j"}, "-j/--json"},
      {{"-t"}, "-t/--timestamp"},
      {{"-U"}, "-U/--print-uid"},
      {{"-s"}, "-L/--lport"},
      {{"--outcome"}, "--outcome"},
      {{"--failed"}, "--failed"},
      {{"--lifetime"}, "--lifetime"},
      {{"--shorter-than", "1s"}, "--shorter-than"},
      {{"--accept"}, "--accept"},
      {{"-d"}, "-d/--dns"},
      {{"--container"}, "--container"},
      {{"--parent"}, "--parent"},
      {{"--cmdline"}, "--cmdline"},
  };
  for (const auto& [extra, name] : cases) {
    std::vector<std::string> args = {"--metrics", "9464", "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    expect_error(args, std::string("tcpconnect: --quiet cannot be combined with ") + name + why);
  }
  expect_error({"--metrics", "9464", "--quiet", "-t", "-j", "--failed"},
               "tcpconnect: --quiet cannot be combined with -j/--json, -t/--timestamp or "
               "--failed" +
                   why);
  // What shapes the metrics or the tracing itself is fine.
  const Options o = run({"--metrics",  "9464",
                         "--quiet",    "--metrics-top",
                         "5",          "-p",
                         "1",          "-P",
                         "80",         "-u",
                         "0",          "-6",
                         "--netns",    "1",
                         "--cgroup",   "/x",
                         "--duration", "2m",
                         "-v",         "--attach",
                         "tp_btf",     "--ringbuf-size",
                         "1M"});
  EXPECT_TRUE(o.quiet);
  // Without --quiet, lines and metrics are two outputs: every line option applies to the lines.
  run({"--metrics", "9464", "-j", "-t", "-U", "-L", "--lifetime", "--failed", "--accept", "-d",
       "--container", "--parent", "--cmdline"});
}

// Options of the per-event output that combine (each line still one line per connection).
TEST(OptionsLifecycle, CombinationsThatMeanSomething) {
  Options o = run({"--outcome", "--failed", "--lifetime", "--shorter-than", "1s", "--accept"});
  EXPECT_TRUE(o.outcome && o.failed && o.lifetime && o.accept);
  o = run({"-j", "-t", "-U", "-L", "--parent", "--cmdline", "--container", "-d"});
  EXPECT_TRUE(o.json && o.parent && o.cmdline);
}

}  // namespace
}  // namespace tcpconnect
