// Text output, column-compatible with bcc's tools/tcpconnect.py:
//
//   header: [TIME(s) %-9s][UID %-6s]%-7s %-12s %-2s %-16s %-16s %-6s
//           (PID COMM IP SADDR DADDR DPORT), or with -L
//           %-7s %-12s %-2s %-16s %-6s %-16s %-5s
//           (PID COMM IP SADDR LPORT DADDR DPORT)
//   rows:   [%-9.3f][%-6d]%-7d %-12.12s %-2d %-16s [%-6d] %-16s %-6d|%-5d
//
// Unlike bcc, trailing whitespace is stripped from every line, and text from
// outside the tool (COMM, PCOMM, CONTAINER, QUERY, CMDLINE) is escaped
// (sink/escape.h) so that it cannot drive the terminal.
#include "sink/text_sink.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <iterator>
#include <string>
#include <string_view>

#include "model/intervals.h"
#include "sink/escape.h"
#include "tcpconnect/abi.h"

namespace tcpconnect {
namespace {

constexpr std::size_t kCountAddrWidth = 25;  // bcc's %-25s LADDR / RADDR
constexpr std::size_t kCommWidth = 12;       // bcc's %-12.12s COMM

// Appends `s` left-aligned in a field of `width` bytes. Widths are counted in
// bytes, as Python's %-Ns does on the bytes bcc prints (fmt would count code
// points).
void append_padded(fmt::memory_buffer& buf, std::string_view s, std::size_t width) {
  buf.append(s);
  if (s.size() < width) {
    for (std::size_t i = s.size(); i < width; ++i) buf.push_back(' ');
  }
}

// %-12.12s of a text that came from outside (task name, cgroup name; or
// another width): its escaped form (sink/escape.h), cut to at most `width`
// bytes before any character that would not fit whole, then padded. bcc
// counts the width in bytes, and so does this; escapes count at their
// printed length, so the column stays aligned.
void append_text(fmt::memory_buffer& buf, std::string& scratch, std::string_view text,
                 std::size_t width) {
  scratch.clear();
  append_escaped(scratch, text, width);
  append_padded(buf, scratch, width);
}

// A text column without a width (QUERY, CMDLINE): escaped whole.
void append_text(fmt::memory_buffer& buf, std::string& scratch, std::string_view text) {
  scratch.clear();
  append_escaped(scratch, text);
  buf.append(scratch);
}

// Width a column needs so that `len` bytes are followed by padding: bcc's
// width, or len + 1 for longer values.
std::size_t grown_width(std::size_t current, std::size_t len) { return std::max(current, len + 1); }

// HH:MM:SS.mmm local time of a wall-clock stamp; "-" when unknown.
std::string clock_time(std::uint64_t ns) {
  if (ns == 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  return fmt::format("{:02}:{:02}:{:02}.{:03}", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (ns / 1'000'000) % 1000);
}

// CONTAINER column: docker's 12-digit short ID, else the cgroup's own name,
// "-" for the root cgroup or an unknown one.
std::string_view container_column(const ConnectEvent& ev) {
  if (!ev.container.empty()) return ev.container.substr(0, 12);
  const auto slash = ev.cgroup.rfind('/');
  std::string_view name = slash == std::string_view::npos ? ev.cgroup : ev.cgroup.substr(slash + 1);
  return name.empty() ? std::string_view("-") : name;
}

}  // namespace

TextSink::TextSink(const OutputConfig& cfg, std::ostream& out, std::ostream& err)
    : timestamp_(cfg.columns.timestamp),
      print_uid_(cfg.columns.uid),
      lport_(cfg.columns.lport),
      count_(cfg.count),
      by_process_(cfg.by_process),
      dir_(cfg.columns.dir),
      outcome_(cfg.columns.outcome),
      lifetime_(cfg.columns.lifetime),
      container_(cfg.columns.container),
      dns_(cfg.columns.dns),
      parent_(cfg.columns.parent),
      cmdline_(cfg.columns.cmdline),
      out_(out),
      err_(err) {}

void TextSink::write_line(std::ostream& os) {
  std::size_t n = buf_.size();
  while (n > 0 && (buf_[n - 1] == ' ' || buf_[n - 1] == '\t')) --n;
  buf_.resize(n);
  buf_.push_back('\n');
  os.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
}

void TextSink::start(const StartInfo& /*info*/) {
  // bcc prints no header in -c mode; its count table comes at exit.
  if (count_) return;
  buf_.clear();
  if (timestamp_) append_padded(buf_, "TIME(s)", 9);
  if (print_uid_) append_padded(buf_, "UID", 6);
  append_padded(buf_, "PID", 7);
  buf_.push_back(' ');
  append_padded(buf_, "COMM", kCommWidth);
  buf_.push_back(' ');
  append_padded(buf_, "IP", 2);
  buf_.push_back(' ');
  if (dir_) append_padded(buf_, "DIR ", 4);
  append_padded(buf_, "SADDR", saddr_width_);
  buf_.push_back(' ');
  if (lport_) {
    append_padded(buf_, "LPORT", 6);
    buf_.push_back(' ');
  }
  append_padded(buf_, "DADDR", daddr_width_);
  buf_.push_back(' ');
  append_padded(buf_, "DPORT", lport_ ? 5 : 6);
  append_extra_header();
  write_line(out_);
}

// Lifecycle columns after bcc's, only in the modes that ask for them:
// OUTCOME (%-12s) LAT(ms) (%-8s) [DUR(ms) (%-9s) TX (%-10s) RX].
void TextSink::append_extra_header() {
  append_lifecycle_header();
  // --parent: PPID (%-7s) PCOMM (%-12s); --container: NETNS (%-10s) CONTAINER
  // (%-12s); -d: bcc's QUERY; --cmdline: CMDLINE, last (it has spaces).
  if (parent_) {
    buf_.push_back(' ');
    append_padded(buf_, "PPID", 7);
    buf_.push_back(' ');
    append_padded(buf_, "PCOMM", kCommWidth);
  }
  if (container_) {
    buf_.push_back(' ');
    append_padded(buf_, "NETNS", 10);
    buf_.push_back(' ');
    append_padded(buf_, "CONTAINER", 12);
  }
  if (dns_) buf_.append(std::string_view(" QUERY"));
  if (cmdline_) buf_.append(std::string_view(" CMDLINE"));
}

void TextSink::append_lifecycle_header() {
  if (!outcome_) return;
  buf_.push_back(' ');
  append_padded(buf_, "OUTCOME", 12);
  buf_.push_back(' ');
  append_padded(buf_, "LAT(ms)", 8);
  if (!lifetime_) return;
  buf_.push_back(' ');
  append_padded(buf_, "DUR(ms)", 9);
  buf_.push_back(' ');
  append_padded(buf_, "TX", 10);
  buf_.push_back(' ');
  append_padded(buf_, "RX", 10);
}

void TextSink::append_extra(const ConnectEvent& ev) {
  append_lifecycle(ev);
  if (parent_) {
    fmt::format_to(std::back_inserter(buf_), " {:<7} ", ev.ppid);
    append_text(buf_, text_, ev.pcomm, kCommWidth);
  }
  if (container_) {
    fmt::format_to(std::back_inserter(buf_), " {:<10} ", ev.netns);
    append_text(buf_, text_, container_column(ev), 12);
  }
  if (dns_) {
    buf_.push_back(' ');
    append_text(buf_, text_, ev.query);
  }
  if (cmdline_) {
    // Pads QUERY only when a command line follows it.
    buf_.push_back(' ');
    append_text(buf_, text_, ev.cmdline);
  }
}

void TextSink::append_lifecycle(const ConnectEvent& ev) {
  if (!outcome_) return;
  auto it = std::back_inserter(buf_);
  buf_.push_back(' ');
  append_padded(buf_, outcome_name(ev.outcome, ev.err), 12);
  buf_.push_back(' ');
  if (ev.latency_ns) {
    const std::size_t before = buf_.size();
    fmt::format_to(it, "{:.3f}", static_cast<double>(ev.latency_ns) / 1e6);
    for (std::size_t i = buf_.size() - before; i < 8; ++i) buf_.push_back(' ');
  } else {
    append_padded(buf_, "-", 8);  // not measured: accepted, or failed before a SYN
  }
  if (!lifetime_) return;
  buf_.push_back(' ');
  const std::size_t before = buf_.size();
  fmt::format_to(it, "{:.3f}", static_cast<double>(ev.duration_ns) / 1e6);
  for (std::size_t i = buf_.size() - before; i < 9; ++i) buf_.push_back(' ');
  fmt::format_to(it, " {:<10} {:<10}", ev.tx_bytes, ev.rx_bytes);
}

void TextSink::connect(const ConnectEvent& ev) {
  auto it = std::back_inserter(buf_);
  buf_.clear();
  if (timestamp_) {
    // Seconds since the first event printed. Records can be emitted slightly
    // out of stamp order, so the difference is signed.
    if (!first_mono_ns_) first_mono_ns_ = ev.mono_ns;
    const auto delta = static_cast<std::int64_t>(ev.mono_ns - *first_mono_ns_);
    fmt::format_to(it, "{:<9.3f}", static_cast<double>(delta) / 1e9);
    // bcc's layout has no separator after TIME(s) and UID; keep one when a
    // value fills its column (>= 10000 s, UIDs of 6+ digits).
    if (buf_.size() >= 9 && buf_[buf_.size() - 1] != ' ') buf_.push_back(' ');
  }
  if (print_uid_) {
    const std::size_t before = buf_.size();
    fmt::format_to(it, "{:<6}", ev.uid);
    if (buf_.size() - before >= 6 && buf_[buf_.size() - 1] != ' ') buf_.push_back(' ');
  }
  fmt::format_to(it, "{:<7} ", ev.pid);
  append_text(buf_, text_, ev.comm, kCommWidth);
  fmt::format_to(it, " {:<2} ", ev.ip);
  if (dir_) append_padded(buf_, ev.inbound ? "in  " : "out ", 4);

  // Growing address columns: bcc pads SADDR / DADDR to 16 characters, which
  // a long IPv6 address overflows, running into the next column. Instead each
  // column's width starts at 16 and, whenever an address of 16 or more
  // characters shows up, grows to len(address) + 1, so there is always at
  // least one space of padding before the separator. Widths only ever grow
  // (later rows stay aligned with the widest seen so far); the header is not
  // reprinted. Each address is appended before the next cache lookup, which
  // may reuse the cached string.
  const std::string& saddr = addrs_.get(ev.ip, ev.saddr);
  saddr_width_ = grown_width(saddr_width_, saddr.size());
  append_padded(buf_, saddr, saddr_width_);
  buf_.push_back(' ');
  if (lport_) fmt::format_to(it, "{:<6} ", ev.sport);
  const std::string& daddr = addrs_.get(ev.ip, ev.daddr);
  daddr_width_ = grown_width(daddr_width_, daddr.size());
  append_padded(buf_, daddr, daddr_width_);
  if (lport_) {
    fmt::format_to(it, " {:<5}", ev.dport);
  } else {
    fmt::format_to(it, " {:<6}", ev.dport);
  }
  append_extra(ev);
  write_line(out_);
}

void TextSink::lost(std::uint64_t delta, std::uint64_t total) {
  buf_.clear();
  fmt::format_to(std::back_inserter(buf_), "WARNING: {} events lost (total {})", delta, total);
  write_line(err_);
  err_.flush();
}

void TextSink::lost_enrichment(Enrichment kind, std::uint64_t delta, std::uint64_t total) {
  buf_.clear();
  fmt::format_to(std::back_inserter(buf_), "WARNING: {} {} lost (total {})", delta,
                 kind == Enrichment::Exec ? "command lines" : "DNS answers", total);
  write_line(err_);
  err_.flush();
}

void TextSink::counts(std::vector<CountRow> rows) {
  sort_count_rows(rows);

  struct Texts {
    std::string laddr;
    std::string raddr;
  };
  std::vector<Texts> texts;
  texts.reserve(rows.size());
  // bcc's LADDR / RADDR are %-25s; a column is widened to longest + 1 (for
  // the whole table, header included) when an address does not fit in 24.
  std::size_t lwidth = kCountAddrWidth;
  std::size_t rwidth = kCountAddrWidth;
  for (const CountRow& r : rows) {
    Texts t{format_address(r.ip, r.saddr), format_address(r.ip, r.daddr)};
    lwidth = grown_width(lwidth, t.laddr.size());
    rwidth = grown_width(rwidth, t.raddr.size());
    texts.push_back(std::move(t));
  }

  auto it = std::back_inserter(buf_);
  buf_.clear();
  write_line(out_);  // bcc: print("\n%-25s ...")
  buf_.clear();
  if (by_process_) {
    append_padded(buf_, "PID", 7);
    buf_.push_back(' ');
    append_padded(buf_, "COMM", 16);
    buf_.push_back(' ');
  }
  append_padded(buf_, "LADDR", lwidth);
  buf_.push_back(' ');
  append_padded(buf_, "RADDR", rwidth);
  buf_.push_back(' ');
  append_padded(buf_, "RPORT", 20);
  buf_.push_back(' ');
  append_padded(buf_, "CONNECTS", 10);
  // After bcc's columns: when the key was first and last seen (local time),
  // the median gap between its connects, and whether the gaps look like a
  // schedule ("periodic", with the share of gaps within 10% of the median)
  // or not ("irregular").
  buf_.push_back(' ');
  append_padded(buf_, "FIRST", 12);
  buf_.push_back(' ');
  append_padded(buf_, "LAST", 12);
  buf_.push_back(' ');
  append_padded(buf_, "EVERY", 7);
  buf_.push_back(' ');
  append_padded(buf_, "PATTERN", 7);
  write_line(out_);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const CountRow& r = rows[i];
    buf_.clear();
    if (by_process_) {
      fmt::format_to(it, "{:<7} ", r.pid);
      append_text(buf_, text_, r.comm, TC_COMM_LEN);
      buf_.push_back(' ');
    }
    append_padded(buf_, texts[i].laddr, lwidth);
    buf_.push_back(' ');
    append_padded(buf_, texts[i].raddr, rwidth);
    fmt::format_to(it, " {:<20} {:<10} ", r.dport, r.count);
    append_padded(buf_, clock_time(r.first_ns), 12);
    buf_.push_back(' ');
    append_padded(buf_, clock_time(r.last_ns), 12);
    buf_.push_back(' ');
    append_padded(buf_, r.intervals ? format_interval(r.interval_median_s) : "-", 7);
    buf_.push_back(' ');
    if (r.intervals >= 2) {
      fmt::format_to(it, "{} ({:.0f}%)", r.periodic ? "periodic" : "irregular",
                     r.regular_fraction * 100);
    } else {
      buf_.push_back('-');
    }
    write_line(out_);
  }
}

void TextSink::finish(const FinishInfo& info) {
  if (info.lost_total > 0) {
    buf_.clear();
    fmt::format_to(std::back_inserter(buf_), "WARNING: {} events lost in total", info.lost_total);
    write_line(err_);
    err_.flush();
  }
  if (info.lost_execs > 0 || info.lost_dns > 0) {
    buf_.clear();
    fmt::format_to(std::back_inserter(buf_),
                   "WARNING: {} command lines and {} DNS answers lost ({} and {} received; "
                   "CMDLINE may show ?, QUERY may be empty)",
                   info.lost_execs, info.lost_dns, info.execs, info.dns_answers);
    write_line(err_);
    err_.flush();
  }
  if (info.skipped > 0) {
    buf_.clear();
    fmt::format_to(std::back_inserter(buf_),
                   "WARNING: the kernel skipped {} tracepoint runs (recursion protection); some "
                   "events may be missing",
                   info.skipped);
    write_line(err_);
    err_.flush();
  }
  if (info.untracked > 0) {
    buf_.clear();
    fmt::format_to(std::back_inserter(buf_),
                   "WARNING: {} connections left the kernel's table before their end was seen; "
                   "their outcome or close records are missing",
                   info.untracked);
    write_line(err_);
    err_.flush();
  }
  out_.flush();
}

}  // namespace tcpconnect
