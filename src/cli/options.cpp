// Command line: argv -> Options. CLI11 tokenizes argv (short/long forms, clusters such as -tU,
// --opt=value, -pVALUE, "--"); values are kept as strings and validated here so that every error
// is one deterministic line of our own wording. Nothing is printed and exit() is never called.
#include "cli/options.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "tcpconnect/version.h"

namespace tcpconnect {
namespace {

constexpr std::uint64_t kMaxPid = 4194304;        // PID_MAX_LIMIT on 64-bit Linux
constexpr std::uint64_t kMaxUid = 4294967294ULL;  // (uid_t)-1 is "no uid"
constexpr std::size_t kMaxPorts = 64;
// Every duration option's upper bound (about 31 years): nanoseconds stay within int64.
constexpr std::uint64_t kMaxDurationNs = 1'000'000'000ull * 1'000'000'000;
constexpr std::size_t kMaxShown = 80;  // longest user value echoed back in a message

constexpr std::uint64_t kMaxRingbuf = 1ull << 30;      // --ringbuf-size: 1 GiB
constexpr std::uint64_t kMinIntervalNs = 100'000'000;  // --interval: 100 ms

constexpr const char* kTcpconnectExamples =
    "examples:\n"
    "    tcpconnect                  # trace every TCP connect()\n"
    "    tcpconnect -t               # prefix each line with a timestamp\n"
    "    tcpconnect -p 181           # only connects made by PID 181\n"
    "    tcpconnect -P 80            # only connects to destination port 80\n"
    "    tcpconnect -P 80,81         # only connects to destination port 80 or 81\n"
    "    tcpconnect -4               # only IPv4 connects\n"
    "    tcpconnect -6               # only IPv6 connects\n"
    "    tcpconnect -U               # add a UID column\n"
    "    tcpconnect -u 1000          # only connects made by UID 1000\n"
    "    tcpconnect -c               # count connects per source IP and destination IP/port\n"
    "    tcpconnect -L               # add a local port (LPORT) column\n"
    "    tcpconnect -j               # print one JSON object per line\n"
    "    tcpconnect --duration 10    # stop tracing after 10 seconds (also 10s, 1.5m, 500ms)\n"
    "    tcpconnect --attach raw_tp  # force the raw tracepoint attach mechanism\n"
    "    tcpconnect --outcome        # print each attempt's outcome and handshake latency\n"
    "    tcpconnect --failed         # only failed attempts, with the reason\n"
    "    tcpconnect --lifetime       # one line per connection when it closes\n"
    "    tcpconnect --shorter-than 500ms --accept  # short-lived connections, both ways\n"
    "    tcpconnect -c --by-process  # count per process and destination, with intervals\n"
    "    tcpconnect -c --interval 1 --rows 10  # the 10 busiest destinations, every second\n"
    "    tcpconnect --top            # live: the busiest connectors, failed %, latency (q quits)\n"
    "    tcpconnect --hist           # histograms of handshake latency and lifetime per port\n"
    "    tcpconnect -d               # add the DNS name each destination was resolved from\n"
    "    tcpconnect --parent --cmdline  # add the parent process and the full command line\n"
    "    tcpconnect --metrics 9464 --quiet  # Prometheus metrics on 127.0.0.1:9464, no lines\n"
    "    tcpconnect --container      # add NETNS and CONTAINER columns\n"
    "    tcpconnect --netns 4026532281                 # only sockets in this network namespace\n"
    "    tcpconnect --cgroup /sys/fs/cgroup/system.slice  # only processes in this cgroup (v2)\n"
    "    tcpconnect --cgroupmap /sys/fs/bpf/test01    # only cgroups whose ids are in this map\n"
    "    tcpconnect --mntnsmap /sys/fs/bpf/mnt_ns_set # only mount namespaces in this map\n";

constexpr const char* kTcpacceptExamples =
    "examples:\n"
    "    tcpaccept             # trace every accepted TCP connection\n"
    "    tcpaccept -t          # include a timestamp column (seconds)\n"
    "    tcpaccept -T          # include a time column (HH:MM:SS)\n"
    "    tcpaccept -P 80,81    # only connections accepted on local port 80 or 81\n"
    "    tcpaccept -p 181      # only connections accepted by PID 181\n"
    "    tcpaccept -4          # only IPv4\n"
    "    tcpaccept -6          # only IPv6\n"
    "    tcpaccept --cgroupmap /sys/fs/bpf/test01  # only cgroups whose ids are in this map\n"
    "    tcpaccept --mntnsmap /sys/fs/bpf/mnt_ns_set  # only mount namespaces in this map\n"
    "    tcpaccept -j          # one JSON object per line\n";

constexpr const char* kTcplifeExamples =
    "examples:\n"
    "    tcplife               # one line per TCP session when it closes, both directions\n"
    "    tcplife -T            # include a time column (HH:MM:SS)\n"
    "    tcplife -w            # wider columns (fit IPv6 addresses), with IP\n"
    "    tcplife -stT          # comma-separated values, with times and timestamps\n"
    "    tcplife -p 181        # only sessions of PID 181\n"
    "    tcplife -L 80         # only sessions on local port 80\n"
    "    tcplife -L 80,81      # only sessions on local port 80 or 81\n"
    "    tcplife -D 80         # only sessions with remote port 80\n"
    "    tcplife -j            # one JSON object per line\n";

constexpr const char* kTcpconnlatExamples =
    "examples:\n"
    "    tcpconnlat            # the handshake latency of every TCP connect\n"
    "    tcpconnlat 1          # only handshakes slower than 1 ms\n"
    "    tcpconnlat 0.1        # only handshakes slower than 100 us\n"
    "    tcpconnlat -t         # include a timestamp column (seconds)\n"
    "    tcpconnlat -p 181     # only connects made by PID 181\n"
    "    tcpconnlat -L         # include the local port (LPORT) column\n"
    "    tcpconnlat -4         # only IPv4\n"
    "    tcpconnlat -6         # only IPv6\n"
    "    tcpconnlat -j         # one JSON object per line\n";

// A personality: the command line of one tool of the family, chosen by the program name. The
// options every tool has are offered under the same names by all; these rows say which others
// a tool has and what -P and -L mean in it. What each tool prints is the plan's (plan.cpp).
struct Personality {
  const char* name;
  const char* synopsis;  // the usage line after the name
  const char* description;
  const char* examples;
  const char* port_help;    // -P/--port PORTS; nullptr: not offered
  const char* lport_names;  // the LPORT column flag; nullptr: not offered
  const char* lport_help;
  bool own_modes;  // tcpconnect's -c, --by-process, --outcome, --failed, --lifetime,
                   // --shorter-than, --accept and -d (with its cache options)
  bool sessions;   // tcplife's -w, -s, -L/--localport and -D/--remoteport
  bool min_ms;     // tcpconnlat's positional min_ms
  Tool tool;
};

constexpr Personality kPersonalities[] = {
    {"tcpconnect", "[OPTIONS]",
     "Trace TCP active connections (connect()) and print one line per attempt.",
     kTcpconnectExamples, "only trace these destination ports (comma-separated)",
     "-L,-s,--lport,--source-port",
     "include the local port (LPORT) column; with -c: count per source port too", true, false,
     false, Tool::Tcpconnect},
    {"tcpaccept",
     "[-h] [-T] [-t] [-p PID] [-P PORTS] [-4|-6] [--cgroupmap MAPPATH] [--mntnsmap MAPPATH] "
     "[OPTIONS]",
     "Trace TCP accepts: one line per accepted connection, with the process that accepted it.",
     kTcpacceptExamples, "only trace these local ports (comma-separated)", nullptr, nullptr, false,
     false, false, Tool::Tcpaccept},
    {"tcplife", "[-h] [-T] [-t] [-w] [-s] [-p PID] [-L PORTS] [-D PORTS] [-4|-6] [OPTIONS]",
     "Trace the lifespan of TCP sessions: one line per session when it closes, with its bytes "
     "and duration.",
     kTcplifeExamples, nullptr, nullptr, nullptr, false, true, false, Tool::Tcplife},
    {"tcpconnlat", "[-h] [-t] [-T] [-p PID] [-L] [-4|-6] [OPTIONS] [min_ms]",
     "Trace TCP connects and show their handshake latency.", kTcpconnlatExamples, nullptr,
     "-L,--lport", "include the local port (LPORT) column", false, false, true, Tool::Tcpconnlat},
};

const Personality& personality(Tool tool) {
  for (const Personality& p : kPersonalities)
    if (p.tool == tool) return p;
  return kPersonalities[0];
}

// argparse-like layout: usage line, blank, description, options, examples. CLI11's own usage
// line would also list the hidden catch-all positional, so it is replaced by a fixed one.
class Formatter : public CLI::Formatter {
 public:
  explicit Formatter(const Personality& p) : p_(p) {}
  std::string make_description(const CLI::App*) const override { return {}; }
  std::string make_usage(const CLI::App* app, std::string) const override {
    return std::string("Usage: ") + p_.name + " " + p_.synopsis + "\n\n" + app->get_description() +
           "\n";
  }

 private:
  const Personality& p_;
};

// Quotes a user-supplied string for a one-line message: control characters, quotes and
// backslashes are escaped and very long values are shortened.
std::string quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  const std::size_t n = std::min(s.size(), kMaxShown);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\' || c == '\'') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > n) out += "...";
  out += '\'';
  return out;
}

// Strict unsigned decimal: one or more ASCII digits, nothing else (no sign, space, 0x, ...).
std::optional<std::uint64_t> parse_decimal(std::string_view s, std::uint64_t lo, std::uint64_t hi) {
  if (s.empty()) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;  // overflow
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

// The one duration grammar, for every option that takes one (--duration, --shorter-than,
// --dns-max-age): a number, DIGITS[.DIGITS] or .DIGITS, then optionally a unit: us, ms, s, m or h
// (case-sensitive: "5MS" is refused rather than guessed). A bare number is seconds everywhere.
// Returns nanoseconds, rounded to the nearest; each option checks its own range.
std::optional<std::uint64_t> parse_duration_ns(std::string_view s) {
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  double scale = 1e9;
  for (const auto& [unit, unit_scale] : kUnits) {
    if (s.size() <= unit.size() || s.substr(s.size() - unit.size()) != unit) continue;
    const char last = s[s.size() - unit.size() - 1];
    if (last < '0' || last > '9') continue;  // "5ms" must not parse as "5m" + "s"
    s.remove_suffix(unit.size());
    scale = unit_scale;
    break;
  }
  std::size_t digits = 0, dots = 0;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      ++digits;
    } else if (c == '.') {
      ++dots;
    } else {
      return std::nullopt;  // signs, exponents, blanks, "inf", "nan", unknown units
    }
  }
  if (digits == 0 || dots > 1) return std::nullopt;
  double v = 0;
  const auto [ptr, ec] =
      std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  const double ns = v * scale;
  // Far above any option's range, and below 2^63 so that the conversion is defined.
  if (!std::isfinite(ns) || ns > 1e18 * 4) return std::nullopt;
  return static_cast<std::uint64_t>(std::llround(ns));
}

// --ringbuf-size: a bare number is KiB (the original form); else a number with a unit, K/KiB,
// M/MiB, G/GiB or p/pages (of `page` bytes), case-insensitive. Returns bytes; the power-of-two
// and range checks are the caller's.
std::optional<std::uint64_t> parse_size(std::string_view s, std::uint64_t page) {
  static constexpr std::pair<std::string_view, std::uint64_t> kUnits[] = {
      {"", 1ull << 10},    {"k", 1ull << 10}, {"kib", 1ull << 10}, {"m", 1ull << 20},
      {"mib", 1ull << 20}, {"g", 1ull << 30}, {"gib", 1ull << 30}, {"p", 0},
      {"page", 0},         {"pages", 0}};
  const std::size_t digits = std::min(s.find_first_not_of("0123456789"), s.size());
  std::string unit(s.substr(digits));
  for (char& c : unit)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  for (const auto& [name, scale] : kUnits) {
    if (unit != name) continue;
    const std::uint64_t mult = scale ? scale : page;
    // Bounded so that the product cannot overflow; anything above is out of range anyway.
    const auto n = parse_decimal(s.substr(0, digits), 0, kMaxRingbuf);
    if (!n) return std::nullopt;
    return *n * mult;
  }
  return std::nullopt;
}

// --metrics: "PORT", "IPV4:PORT" or "[IPV6]:PORT" -> (address, port).
std::optional<std::pair<std::string, std::uint16_t>> parse_endpoint(std::string_view s) {
  std::string addr = "127.0.0.1";
  std::string_view port = s;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    addr = std::string(s.substr(1, close - 1));
    port = s.substr(close + 2);
    in6_addr a6{};
    if (inet_pton(AF_INET6, addr.c_str(), &a6) != 1) return std::nullopt;
  } else if (const auto colon = s.rfind(':'); colon != std::string_view::npos) {
    addr = std::string(s.substr(0, colon));
    port = s.substr(colon + 1);
    in_addr a4{};
    if (inet_pton(AF_INET, addr.c_str(), &a4) != 1) return std::nullopt;
  }
  const auto p = parse_decimal(port, 1, 65535);
  if (!p) return std::nullopt;
  return std::pair{addr, static_cast<std::uint16_t>(*p)};
}

std::optional<AttachMode> parse_attach(std::string_view s) {
  for (AttachMode m :
       {AttachMode::Auto, AttachMode::TpBtf, AttachMode::RawTp, AttachMode::Tracepoint}) {
    if (s == attach_mode_name(m)) return m;
  }
  return std::nullopt;
}

// CLI11's help with blank-line runs collapsed and exactly one trailing newline.
std::string help_text(const CLI::App& app) {
  const std::string raw = app.help();
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    if (c == '\n' && out.size() >= 2 && out[out.size() - 1] == '\n' &&
        out[out.size() - 2] == '\n') {
      continue;
    }
    out += c;
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  out += '\n';
  return out;
}

ParseResult error(std::string msg) {
  ParseResult r;
  r.kind = ParseResult::Kind::Error;
  r.exit_code = 2;
  r.text = std::move(msg);  // parse_options() puts the tool's name first
  // Guarantee the one-line contract even for messages we did not anticipate.
  for (char& c : r.text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!r.text.empty() && r.text.back() == ' ') r.text.pop_back();
  return r;
}

// An option that takes exactly one value, captured as a string and validated afterwards.
struct ValueOption {
  CLI::Option* opt = nullptr;
  const char* label = "";  // how messages name it, e.g. "-p/--pid"
  const char* type = "";   // metavariable, e.g. "PID"
};

ValueOption add_value(CLI::App& app, const char* names, const char* label, const char* type,
                      const char* desc) {
  CLI::Option* opt = app.add_option(names, CLI::callback_t{}, desc);
  opt->type_name(type);
  // Collect every occurrence so that repeats can be reported with our own message.
  opt->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  return ValueOption{opt, label, type};
}

// The single value of `v`, or an error if it was given more than once. nullopt value = absent.
struct Single {
  std::optional<std::string> value;
  std::optional<ParseResult> err;
};

// Whether option `v` was given (false for one this tool does not offer).
bool given(const ValueOption& v) { return v.opt && v.opt->count() > 0; }

Single single(const ValueOption& v) {
  if (!v.opt) return {};  // not offered by this tool
  const auto& res = v.opt->results();
  if (res.empty()) return {};
  if (res.size() > 1) {
    return {std::nullopt, error(std::string("option ") + v.label + " given more than once")};
  }
  return {res.front(), std::nullopt};
}

// "-p/--pid" etc. for the option CLI11 names in `msg` ("--pid: 1 required PID missing").
const ValueOption* find_named(const std::vector<ValueOption>& opts, const std::string& msg) {
  for (const auto& v : opts) {
    const std::string name = v.opt->get_name();
    if (!name.empty() && msg.rfind(name + ":", 0) == 0) return &v;
  }
  return nullptr;
}

std::vector<std::string_view> split_commas(std::string_view rest) {
  std::vector<std::string_view> items;
  while (true) {
    const auto comma = rest.find(',');
    items.push_back(rest.substr(0, comma));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return items;
}

// Comma-separated ports of option `label` (e.g. "-P/--port").
std::optional<ParseResult> parse_ports(const std::string& text, const std::string& label,
                                       std::vector<std::uint16_t>& out) {
  const std::string allowed = "expected comma-separated port numbers in 1..65535";
  if (text.empty()) return error("invalid " + label + " value " + quote(text) + ": " + allowed);
  const std::vector<std::string_view> items = split_commas(text);
  if (items.size() > kMaxPorts) {
    return error("too many ports in " + label + ": " + std::to_string(items.size()) +
                 " given, at most " + std::to_string(kMaxPorts) + " allowed");
  }
  out.clear();
  for (std::string_view item : items) {
    if (item.empty()) {
      std::string msg = "invalid " + label;
      msg += " value " + quote(text) + ": empty entry; " + allowed;
      return error(std::move(msg));
    }
    const auto port = parse_decimal(item, 1, 65535);
    if (!port) {
      return error("invalid port " + quote(item) + " in " + label +
                   ": expected an integer in 1..65535");
    }
    const auto p = static_cast<std::uint16_t>(*port);
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  return std::nullopt;
}

// Comma-separated container, pod or namespace names of option `label`: what docker and
// Kubernetes allow in a name (letters, digits, '_', '.', '-'), at most 253 bytes each.
std::optional<ParseResult> parse_names(const std::string& text, const std::string& label,
                                       std::vector<std::string>& out) {
  constexpr std::size_t kMaxNames = 64, kMaxName = 253;
  const std::vector<std::string_view> items = split_commas(text);
  if (items.size() > kMaxNames) {
    return error("too many names in " + label + ": " + std::to_string(items.size()) +
                 " given, at most " + std::to_string(kMaxNames) + " allowed");
  }
  out.clear();
  for (std::string_view item : items) {
    const bool ok = !item.empty() && item.size() <= kMaxName &&
                    std::all_of(item.begin(), item.end(), [](char ch) {
                      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' ||
                             ch == '.' || ch == '-';
                    });
    if (!ok) {
      return error("invalid name " + quote(item) + " in " + label +
                   ": expected letters, digits, '_', '.' or '-' (at most 253)");
    }
    if (std::find(out.begin(), out.end(), item) == out.end()) out.emplace_back(item);
  }
  return std::nullopt;
}

// The duration of option `v`, if it was given, into `ns`: the grammar of parse_duration_ns(),
// within (0, max_ns]. The message has one shape for every duration option.
std::optional<ParseResult> read_duration(const ValueOption& v, std::uint64_t max_ns,
                                         std::optional<std::uint64_t>& ns) {
  auto s = single(v);
  if (!s.value) return std::nullopt;
  ns = parse_duration_ns(*s.value);
  if (!ns || *ns == 0 || *ns > max_ns) {
    return error("invalid duration " + quote(*s.value) + " for " + v.label +
                 ": expected a duration > 0 and <= " + std::to_string(max_ns / 1'000'000'000) +
                 "s: a number of seconds or a number with a unit us, ms, s, m or h (e.g. 10, "
                 "0.5, 250ms, 2m)");
  }
  return std::nullopt;
}

// Option names for a message: "A", "A and B", "A, B and C" (`last` is "and" or "or").
std::string join_names(const std::vector<const char*>& names, const char* last) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? std::string(" ") + last + " " : ", ";
    out += names[i];
  }
  return out;
}

// The names of the options in `opts` that were given: {given, name} pairs.
std::vector<const char*> given_names(std::initializer_list<std::pair<bool, const char*>> opts) {
  std::vector<const char*> out;
  for (const auto& [given, name] : opts) {
    if (given) out.push_back(name);
  }
  return out;
}

// The command line of tool `p`; error texts without the tool's name.
ParseResult parse_as(const Personality& p, int argc, const char* const* argv) {
  ParseResult result;
  Options& o = result.options;
  o.tool = p.tool;
  const std::string version_text = p.tool == Tool::Tcpconnect
                                       ? std::string("tcpconnect ") + kVersion
                                       : std::string(p.name) + " (tcpconnect) " + kVersion;

  CLI::App app(p.description, p.name);
  app.formatter(std::make_shared<Formatter>(p));
  app.get_formatter()->column_width(34);
  app.set_help_flag("-h,--help", "show this help message and exit");
  // bcc's tcpconnect has no -V, and -v is --verbose: the long form only.
  app.set_version_flag("--version", version_text, "show the version and exit")
      ->disable_flag_override();
  app.footer(p.examples);
  app.allow_extras(true);  // unknown options end up in remaining(); reported below

  auto flag = [&app](const char* names, bool& target, const char* desc) {
    CLI::Option* f = app.add_flag(names, target, desc);
    f->disable_flag_override();  // "--json=false" is rejected, "-j" / "--json" only
    return f;
  };

  // What the other options add (and -c, which is tcpconnect's only) is offered only where a
  // tool has it: `own` for tcpconnect's own modes, `sessions` for tcplife's.
  const bool own = p.own_modes;
  const auto value_if = [&app](bool offered, const char* names, const char* label, const char* type,
                               const char* desc) {
    return offered ? add_value(app, names, label, type, desc) : ValueOption{};
  };
  const auto flag_if = [&flag](bool offered, const char* names, bool& target,
                               const char* desc) -> const CLI::Option* {
    return offered ? flag(names, target, desc) : nullptr;
  };

  flag("-T,--time", o.time, "include a time column (HH:MM:SS, local time)");
  flag("-t,--timestamp", o.timestamp,
       p.tool == Tool::Tcplife ? "include a timestamp column (seconds since the first line)"
                               : "include a timestamp column");
  const ValueOption pid =
      add_value(app, "-p,--pid", "-p/--pid", "PID", "only trace this process ID");
  const ValueOption port =
      value_if(p.port_help != nullptr, "-P,--port", "-P/--port", "PORTS", p.port_help);
  flag("-4,--ipv4", o.ipv4, "only trace IPv4");
  flag("-6,--ipv6", o.ipv6, "only trace IPv6");
  if (p.lport_names) flag(p.lport_names, o.lport, p.lport_help);
  flag_if(p.sessions, "-w,--wide", o.wide, "wide columns (fit IPv6 addresses), with IP");
  flag_if(p.sessions, "-s,--csv", o.csv, "comma-separated values");
  const ValueOption local_port = value_if(p.sessions, "-L,--localport", "-L/--localport", "PORTS",
                                          "only trace these local ports (comma-separated)");
  const ValueOption remote_port =
      value_if(p.sessions, "-D,--remoteport", "-D/--remoteport", "PORTS",
               "only trace these remote ports (comma-separated)");
  flag("-U,--print-uid", o.print_uid, "include the UID column");
  const ValueOption uid = add_value(app, "-u,--uid", "-u/--uid", "UID", "only trace this user ID");
  flag_if(own, "-c,--count", o.count,
          "count connects per source IP and destination IP/port; print the table at exit");
  flag("-j,--json", o.json, "print one JSON object per line");
  const ValueOption duration =
      add_value(app, "--duration", "--duration", "DURATION",
                "stop after this long: seconds, or with a unit us, ms, s, m, h (e.g. 10, 0.5, 2m)");
  flag("-v,--verbose", o.verbose, "print diagnostics (e.g. the attach mechanism) to stderr");
  const ValueOption attach = add_value(app, "--attach", "--attach", "MODE",
                                       "attach mechanism: auto, tp_btf, raw_tp, tracepoint "
                                       "(default: auto)");
  flag_if(own, "--outcome", o.outcome,
          "print each attempt when its handshake ends, with OUTCOME and LAT(ms) columns");
  flag_if(own, "--failed", o.failed, "only attempts that did not establish, with the reason");
  const CLI::Option* lifetime =
      flag_if(own, "--lifetime", o.lifetime,
              "one line per connection when it ends: outcome, latency, duration, TX/RX bytes");
  const ValueOption shorter =
      value_if(own, "--shorter-than", "--shorter-than", "DURATION",
               "only connections that lived less than this (e.g. 5, 250ms); implies --lifetime");
  flag_if(own, "--accept", o.accept,
          "also trace accepted (inbound) connections; adds a DIR column");
  flag_if(own, "--by-process", o.by_process, "with -c: count per process (PID and COMM) too");
  const ValueOption interval =
      value_if(own, "--interval", "--interval", "DURATION",
               "with -c: print the table every interval, with the connects and failures of that "
               "interval (e.g. 1, 500ms, 1m)");
  const CLI::Option* cumulative = flag_if(own, "--cumulative", o.cumulative,
                                          "with --interval: counts since the start, not per "
                                          "interval");
  const ValueOption rows = value_if(own, "--rows", "--rows", "N",
                                    "with -c or --top: at most N rows per table, the busiest");
  flag_if(own, "--top", o.top,
          "a live full-screen table of the busiest processes and destinations, refreshed every "
          "--interval (default 1s): rate, failed %, handshake latency (with --lifetime, bytes); "
          "keys: q quits, s sorts, p pauses. Not on a terminal: -c --by-process --interval "
          "tables");
  flag_if(own, "--hist", o.hist,
          "print log2 histograms of handshake latency (us) and connection lifetime (ms) at exit "
          "(with --interval, every interval)");
  const ValueOption hist_by = value_if(own, "--hist-by", "--hist-by", "KEY",
                                       "with --hist: one histogram per destination port (port, "
                                       "the default) or per process (process)");
  flag_if(own, "-d,--dns", o.dns,
          "add a QUERY column: the DNS name last resolved to the destination, in the same "
          "network namespace");
  const ValueOption dns_size =
      value_if(own, "--dns-cache-size", "--dns-cache-size", "N",
               "with -d: remember at most N address->name entries (default: 10000)");
  const ValueOption dns_age = value_if(own, "--dns-max-age", "--dns-max-age", "DURATION",
                                       "with -d: forget answers older than this (default: 1h)");
  flag("--container", o.container,
       "add NETNS and CONTAINER (the runtime's name, else the ID or cgroup name) columns");
  const ValueOption runtime_socket =
      add_value(app, "--runtime-socket", "--runtime-socket", "PATH",
                "ask this runtime socket for container names: the Docker Engine API (docker, "
                "podman), or the CRI (containerd, CRI-O) for cri:PATH or a socket named "
                "containerd.sock or crio.sock (default: /var/run/docker.sock, "
                "/run/podman/podman.sock, /run/containerd/containerd.sock, /run/crio/crio.sock)");
  const ValueOption container_name =
      add_value(app, "--container-name", "--container-name", "NAME[,NAME...]",
                "only containers the runtime names so (exact names)");
  const ValueOption pod = add_value(app, "--pod", "--pod", "NAME[,NAME...]",
                                    "only containers of these Kubernetes pods (exact names)");
  const ValueOption pod_namespace =
      add_value(app, "--pod-namespace", "--pod-namespace", "NS[,NS...]",
                "only containers of pods in these Kubernetes namespaces");
  flag("--parent", o.parent, "add PPID and PCOMM columns (the parent, at the time of the event)");
  flag("--cmdline", o.cmdline, "add a CMDLINE column: the full command line, captured at exec");
  const ValueOption exec_size =
      add_value(app, "--exec-cache-size", "--exec-cache-size", "N",
                "with --cmdline or -j: remember the command lines of at most N processes "
                "(default: 16384)");
  const ValueOption metrics = add_value(app, "--metrics", "--metrics", "[ADDR:]PORT",
                                        "serve Prometheus metrics at http://ADDR:PORT/metrics "
                                        "(ADDR: an IP address, default 127.0.0.1; [::1]:PORT "
                                        "for IPv6)");
  flag("--quiet", o.quiet,
       "with --metrics: print no per-event output (so no option that shapes it either)");
  const ValueOption metrics_top =
      add_value(app, "--metrics-top", "--metrics-top", "N",
                "with --metrics: distinct process names and ports per label before the rest "
                "count as \"other\" (default: 20)");
  flag("--metrics-container", o.metrics_container,
       "with --metrics: also count by container (the runtime's name, else the short ID, \"-\" "
       "for none), bounded like the other labels");
  const ValueOption netns = add_value(app, "--netns", "--netns", "INODE",
                                      "only sockets in this network namespace (inode, as in "
                                      "/proc/PID/ns/net -> net:[INODE])");
  const ValueOption cgroup = add_value(app, "--cgroup", "--cgroup", "PATH",
                                       "only processes in this cgroup v2 directory or below it");
  const ValueOption cgroupmap =
      add_value(app, "--cgroupmap", "--cgroupmap", "MAPPATH",
                "only processes whose cgroup id is a key of this pinned BPF hash map");
  const ValueOption mntnsmap =
      add_value(app, "--mntnsmap", "--mntnsmap", "MAPPATH",
                "only processes whose mount namespace id is a key of this pinned BPF hash map");
  const ValueOption ringbuf =
      add_value(app, "--ringbuf-size", "--ringbuf-size", "SIZE",
                "kernel-to-user ring buffer size, a power of two from one page to 1G: KiB, or "
                "with a unit: 64K, 4M, 1G, 16p (pages) (default: 2M)");
  std::vector<ValueOption> values;
  for (const ValueOption& v :
       {pid,       port,           local_port,     remote_port, uid,
        duration,  attach,         ringbuf,        shorter,     netns,
        cgroup,    cgroupmap,      mntnsmap,       dns_size,    dns_age,
        exec_size, metrics,        metrics_top,    interval,    rows,
        hist_by,   runtime_socket, container_name, pod,         pod_namespace}) {
    if (v.opt) values.push_back(v);
  }

  // Hidden catch-all so positionals (including anything after "--") are told apart from
  // unknown options.
  std::vector<std::string> positionals;
  app.add_option("args", positionals)->group("");

  std::vector<std::string> args;
  if (argv != nullptr && argc > 1) {
    args.reserve(static_cast<std::size_t>(argc - 1));
    for (int i = argc - 1; i > 0; --i) args.emplace_back(argv[i] != nullptr ? argv[i] : "");
  }

  try {
    app.parse(std::move(args));  // CLI11 wants the arguments reversed
  } catch (const CLI::CallForHelp&) {
    result.kind = ParseResult::Kind::Help;
    result.exit_code = 0;
    result.text = help_text(app);
    return result;
  } catch (const CLI::CallForAllHelp&) {
    result.kind = ParseResult::Kind::Help;
    result.exit_code = 0;
    result.text = help_text(app);
    return result;
  } catch (const CLI::CallForVersion&) {
    result.kind = ParseResult::Kind::Version;
    result.exit_code = 0;
    result.text = version_text;
    return result;
  } catch (const CLI::ArgumentMismatch& e) {
    const std::string msg = e.what();
    if (msg.find("disallowed flag override") != std::string::npos) {
      // CLI11 reports the bare name; values can only be attached to long names (--name=VALUE).
      const std::string name = msg.substr(0, msg.find(' '));
      return error("option " + quote((name.size() == 1 ? "-" : "--") + name) +
                   " does not take a value");
    }
    if (const ValueOption* v = find_named(values, msg)) {
      return error(std::string("option ") + v->label + " requires a value (" + v->type + ")");
    }
    return error(msg);
  } catch (const CLI::ParseError& e) {
    return error(e.what());
  }

  // Unknown options first (in command-line order), then stray positionals.
  const std::string no_positionals = std::string(p.name) + " takes no positional arguments";
  for (const std::string& extra : app.remaining()) {
    if (extra == "--") continue;  // end-of-options marker; what follows is in `positionals`
    if (extra.size() > 1 && extra[0] == '-') {
      // tcpconnlat's min_ms may be a negative number: refused as such, not as an option.
      if (!p.min_ms || !parse_duration_ns(std::string_view(extra).substr(1))) {
        return error("unknown option " + quote(extra));
      }
    }
    if (!p.min_ms) return error("unexpected argument " + quote(extra) + ": " + no_positionals);
    positionals.insert(positionals.begin(), extra);
  }
  if (!positionals.empty() && !p.min_ms) {
    return error("unexpected argument " + quote(positionals.front()) + ": " + no_positionals);
  }
  if (!positionals.empty()) {
    if (positionals.size() > 1) {
      return error("unexpected argument " + quote(positionals[1]) + ": " + p.name +
                   " takes one positional argument, min_ms");
    }
    // bcc's min_ms: milliseconds, fractions allowed (0.1 is 100 us); 0 prints every handshake.
    const std::string& text = positionals.front();
    const auto ns = parse_duration_ns(text + "ms");
    const bool digits_only = text.find_first_not_of("0123456789.") == std::string::npos;
    if (!digits_only || !ns || *ns > kMaxDurationNs) {
      return error("invalid min_ms " + quote(text) +
                   ": expected a number of milliseconds >= 0 (e.g. 1, 0.1)");
    }
    if (*ns > 0) o.min_latency_ns = *ns;
  }

  for (const ValueOption& v : values) {
    if (auto s = single(v); s.err) return std::move(*s.err);
  }

  if (auto s = single(pid); s.value) {
    const auto v = parse_decimal(*s.value, 1, kMaxPid);
    if (!v) {
      return error("invalid PID " + quote(*s.value) + " for -p/--pid: expected an integer in 1.." +
                   std::to_string(kMaxPid));
    }
    o.pid = static_cast<std::uint32_t>(*v);
  }
  for (const auto& [opt, target] :
       {std::pair{&port, &o.ports}, std::pair{&local_port, &o.local_ports},
        std::pair{&remote_port, &o.remote_ports}}) {
    if (auto s = single(*opt); s.value) {
      if (auto err = parse_ports(*s.value, opt->label, *target)) return std::move(*err);
    }
  }
  if (auto s = single(uid); s.value) {
    const auto v = parse_decimal(*s.value, 0, kMaxUid);
    if (!v) {
      return error("invalid UID " + quote(*s.value) + " for -u/--uid: expected an integer in 0.." +
                   std::to_string(kMaxUid));
    }
    o.uid = static_cast<std::uint32_t>(*v);
  }
  std::optional<std::uint64_t> ns;
  if (auto err = read_duration(duration, kMaxDurationNs, ns)) return std::move(*err);
  if (ns) o.duration_s = static_cast<double>(*ns) / 1e9;
  if (auto s = single(attach); s.value) {
    const auto m = parse_attach(*s.value);
    if (!m) {
      return error("invalid attach mode " + quote(*s.value) +
                   " for --attach: expected one of auto, tp_btf, raw_tp, tracepoint");
    }
    o.attach = *m;
  }
  if (auto s = single(ringbuf); s.value) {
    // The kernel wants a power of two that is a whole number of pages.
    const long sys_page = sysconf(_SC_PAGESIZE);
    const std::uint64_t page = sys_page > 0 ? static_cast<std::uint64_t>(sys_page) : 4096;
    const auto v = parse_size(*s.value, page);
    if (!v || *v < page || *v > kMaxRingbuf || (*v & (*v - 1)) != 0) {
      return error("invalid size " + quote(*s.value) +
                   " for --ringbuf-size: expected a power of two from " +
                   std::to_string(page / 1024) +
                   "K (one page) to 1G, in KiB or with a unit (e.g. 64K, 4M, 1G, 16p)");
    }
    o.ringbuf_bytes = static_cast<std::uint32_t>(*v);
  }
  if (auto err = read_duration(shorter, kMaxDurationNs, o.shorter_than_ns)) {
    return std::move(*err);
  }
  if (auto err = read_duration(interval, kMaxDurationNs, o.interval_ns)) return std::move(*err);
  if (o.interval_ns && *o.interval_ns < kMinIntervalNs) {
    return error("invalid duration " + quote(*single(interval).value) +
                 " for --interval: at least 100ms");
  }
  if (auto s = single(rows); s.value) {
    const auto v = parse_decimal(*s.value, 1, 1'000'000);
    if (!v) {
      return error("invalid count " + quote(*s.value) +
                   " for --rows: expected an integer in 1..1000000");
    }
    o.rows = static_cast<std::uint32_t>(*v);
  }
  if (auto s = single(hist_by); s.value) {
    if (*s.value != "port" && *s.value != "process") {
      return error("invalid value " + quote(*s.value) + " for --hist-by: expected port or process");
    }
    o.hist_by_process = *s.value == "process";
  }
  if (o.shorter_than_ns) o.lifetime = true;
  if (auto s = single(netns); s.value) {
    std::string_view v = *s.value;
    if (v.size() > 6 && v.substr(0, 5) == "net:[" && v.back() == ']') v = v.substr(5, v.size() - 6);
    const auto n = parse_decimal(v, 1, 0xffffffffULL);
    if (!n) {
      return error("invalid network namespace " + quote(*s.value) +
                   " for --netns: expected an inode number (as in net:[4026531840])");
    }
    o.netns = static_cast<std::uint32_t>(*n);
  }
  for (const auto& [opt, target] :
       {std::pair{&cgroup, &o.cgroup}, std::pair{&cgroupmap, &o.cgroupmap},
        std::pair{&mntnsmap, &o.mntnsmap}}) {
    if (auto s = single(*opt); s.value) {
      if (s.value->empty()) return error(std::string("option ") + opt->label + " needs a path");
      *target = *s.value;
    }
  }
  if (auto s = single(runtime_socket); s.value) {
    if (s.value->empty() || *s.value == "cri:" || *s.value == "engine:")
      return error("option --runtime-socket needs a path");
    o.runtime_socket = *s.value;
  }
  for (const auto& [opt, target] :
       {std::pair{&container_name, &o.container_names}, std::pair{&pod, &o.pods},
        std::pair{&pod_namespace, &o.pod_namespaces}}) {
    if (auto s = single(*opt); s.value) {
      if (auto err = parse_names(*s.value, opt->label, *target)) return std::move(*err);
    }
  }
  if (auto s = single(dns_size); s.value) {
    const auto v = parse_decimal(*s.value, 1, 10'000'000);
    if (!v) {
      return error("invalid size " + quote(*s.value) +
                   " for --dns-cache-size: expected an integer in 1..10000000");
    }
    o.dns_cache_size = static_cast<std::uint32_t>(*v);
  }
  ns.reset();
  if (auto err = read_duration(dns_age, kMaxDurationNs, ns)) return std::move(*err);
  if (ns) o.dns_max_age_ns = *ns;
  if (auto s = single(exec_size); s.value) {
    const auto v = parse_decimal(*s.value, 1, 10'000'000);
    if (!v) {
      return error("invalid size " + quote(*s.value) +
                   " for --exec-cache-size: expected an integer in 1..10000000");
    }
    o.exec_cache_size = static_cast<std::uint32_t>(*v);
  }
  if (auto s = single(metrics); s.value) {
    auto ep = parse_endpoint(*s.value);
    if (!ep) {
      return error("invalid address " + quote(*s.value) +
                   " for --metrics: expected PORT, IPV4:PORT or [IPV6]:PORT with a port in "
                   "1..65535");
    }
    o.metrics_addr = ep->first;
    o.metrics_port = ep->second;
  }
  if (auto s = single(metrics_top); s.value) {
    const auto v = parse_decimal(*s.value, 1, 10000);
    if (!v) {
      return error("invalid count " + quote(*s.value) +
                   " for --metrics-top: expected an integer in 1..10000");
    }
    o.metrics_top = static_cast<std::uint32_t>(*v);
  }

  // Combinations. Every pair of options either means something or is refused here: nothing
  // given is silently ignored. Messages name only the options that were given.
  // o.lifetime is also set by --shorter-than.
  const bool lifetime_given = lifetime && lifetime->count() > 0;
  const bool shorter_given = o.shorter_than_ns.has_value();
  const bool exec_size_given = given(exec_size);

  // Options that refine another one.
  const auto needs = [](const std::vector<const char*>& names, const char* what) {
    return error(join_names(names, "and") + (names.size() == 1 ? " needs " : " need ") + what);
  };
  if (!o.metrics_addr) {
    const auto names = given_names({{o.quiet, "--quiet"},
                                    {given(metrics_top), "--metrics-top"},
                                    {o.metrics_container, "--metrics-container"}});
    if (!names.empty()) return needs(names, "--metrics");
  }
  if (!o.dns) {
    const auto names =
        given_names({{given(dns_size), "--dns-cache-size"}, {given(dns_age), "--dns-max-age"}});
    if (!names.empty()) return needs(names, "-d/--dns");
  }
  // Container names are asked for --container, JSON records and the container filters.
  const bool container_filter =
      !o.container_names.empty() || !o.pods.empty() || !o.pod_namespaces.empty();
  if (o.runtime_socket && !o.container && !o.json && !container_filter && !o.metrics_container) {
    return needs({"--runtime-socket"},
                 "--container, -j/--json, --container-name, --pod, --pod-namespace or "
                 "--metrics-container");
  }
  // The command lines are looked up for --cmdline and for JSON records, and for nothing else.
  if (exec_size_given && !o.cmdline && !o.json) {
    return needs({"--exec-cache-size"}, "--cmdline or -j/--json");
  }
  // Tables: -c's count table, --top's screen (the same rows) and --hist's histograms all read
  // the kernel's count table, and print nothing per event.
  const bool tables = o.count || o.top || o.hist;
  if (!tables) {
    const auto names =
        given_names({{o.by_process, "--by-process"}, {o.interval_ns.has_value(), "--interval"}});
    if (!names.empty()) return needs(names, "-c/--count, --top or --hist");
  }
  if (given(rows) && !o.count && !o.top) return needs({"--rows"}, "-c/--count or --top");
  if (given(hist_by) && !o.hist) return needs({"--hist-by"}, "--hist");
  if (o.top) {
    const auto names = given_names({{o.hist, "--hist"},
                                    {o.json, "-j/--json"},
                                    {o.metrics_addr.has_value(), "--metrics"},
                                    {o.cumulative, "--cumulative"}});
    if (!names.empty()) {
      return error("--top cannot be combined with " + join_names(names, "or") +
                   ": it draws one live table (without a terminal: use -c --interval)");
    }
  }
  if (cumulative && cumulative->count() > 0 && !o.interval_ns) {
    return needs({"--cumulative"}, "--interval");
  }

  // -c prints one table at exit, keyed by source and destination address and destination port
  // (with -L/-s the source port too, with --by-process the process too; -j makes its rows JSON
  // records): what shapes per-event lines has no place in it.
  if (tables) {
    const char* mode = o.top ? "--top" : o.count ? "-c/--count" : "--hist";
    struct Conflict {
      std::vector<const char*> names;
      const char* why;
    };
    const Conflict conflicts[] = {
        {given_names({{o.metrics_addr.has_value(), "--metrics"}}), ""},
        {given_names({{o.dns, "-d/--dns"}}), ""},
        {given_names({{o.container, "--container"}}), ""},
        {given_names({{!o.container_names.empty(), "--container-name"},
                      {!o.pods.empty(), "--pod"},
                      {!o.pod_namespaces.empty(), "--pod-namespace"}}),
         ": containers are told apart by name in user space, per event"},
        // --top shows the bytes of the connections that ended with --lifetime.
        {given_names({{o.outcome, "--outcome"},
                      {o.failed, "--failed"},
                      {lifetime_given && !o.top, "--lifetime"},
                      {shorter_given, "--shorter-than"}}),
         ": the table counts connect attempts, not how they end"},
        {given_names({{o.time, "-T/--time"}, {o.timestamp, "-t/--timestamp"}}),
         ": the table is printed once, at exit"},
        {given_names(
             {{o.print_uid, "-U/--print-uid"}, {o.parent, "--parent"}, {o.cmdline, "--cmdline"}}),
         ": the table is keyed by addresses and port; use --by-process for per-process rows"},
        {given_names({{o.accept, "--accept"}}), ": -c counts connects only"},
        {given_names({{exec_size_given, "--exec-cache-size"}}), ": the table has no command lines"},
    };
    for (const Conflict& c : conflicts) {
      if (!c.names.empty()) {
        return error(std::string(mode) + " cannot be combined with " + join_names(c.names, "or") +
                     c.why);
      }
    }
  }

  // --quiet prints no per-event output, and the metrics count every connection whatever the
  // line options select: any of them would be ignored.
  if (o.quiet) {
    const auto names =
        given_names({{o.json, "-j/--json"},
                     {o.time, "-T/--time"},
                     {o.timestamp, "-t/--timestamp"},
                     {o.wide, "-w/--wide"},
                     {o.csv, "-s/--csv"},
                     {!o.local_ports.empty(), "-L/--localport"},
                     {!o.remote_ports.empty(), "-D/--remoteport"},
                     {o.min_latency_ns.has_value(), "min_ms"},
                     {o.print_uid, "-U/--print-uid"},
                     {o.lport, "-L/--lport"},
                     {o.outcome, "--outcome"},
                     {o.failed, "--failed"},
                     {lifetime_given, "--lifetime"},
                     {shorter_given, "--shorter-than"},
                     {o.accept, "--accept"},
                     {o.dns, "-d/--dns"},
                     {o.container, "--container"},
                     {container_filter, "--container-name, --pod or --pod-namespace"},
                     {o.parent, "--parent"},
                     {o.cmdline, "--cmdline"}});
    if (!names.empty()) {
      return error("--quiet cannot be combined with " + join_names(names, "or") +
                   ": --quiet prints no per-event output, and --metrics counts every connection");
    }
  }
  if (o.ipv4 && o.ipv6) return error("options -4/--ipv4 and -6/--ipv6 are mutually exclusive");
  if (o.csv && o.json) return error("options -s/--csv and -j/--json are mutually exclusive");

  return result;
}

}  // namespace

Tool tool_of(const char* argv0) {
  if (argv0 == nullptr) return Tool::Tcpconnect;
  std::string_view name = argv0;
  if (const auto slash = name.rfind('/'); slash != std::string_view::npos) {
    name.remove_prefix(slash + 1);
  }
  for (const Personality& p : kPersonalities)
    if (name == p.name) return p.tool;
  return Tool::Tcpconnect;
}

const char* tool_name(Tool tool) { return personality(tool).name; }

ParseResult parse_options(int argc, const char* const* argv) {
  const Personality& p = personality(tool_of(argv != nullptr && argc > 0 ? argv[0] : nullptr));
  ParseResult r = parse_as(p, argc, argv);
  if (r.kind == ParseResult::Kind::Error) r.text = std::string(p.name) + ": " + r.text;
  return r;
}

}  // namespace tcpconnect
