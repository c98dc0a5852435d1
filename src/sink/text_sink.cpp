// Text output, column-compatible with bcc's tools/tcpconnect.py:
//
//   header: [TIME %-9s][TIME(s) %-9s][UID %-6s]%-7s %-12s %-2s %-16s %-16s %-6s
//           (PID COMM IP SADDR DADDR DPORT), or with -L
//           %-7s %-12s %-2s %-16s %-6s %-16s %-5s
//           (PID COMM IP SADDR LPORT DADDR DPORT)
//   rows:   [%-9s][%-9.3f][%-6d]%-7d %-12.12s %-2d %-16s [%-6d] %-16s %-6d|%-5d
//
// and, at exit in -c mode, its count table (%-25s LADDR, %-25s RADDR, %-20s RPORT, %-10s
// CONNECTS; with -L libbpf-tools' %-20s LPORT before RPORT). Run as tcpaccept, tcplife or
// tcpconnlat, the lines are those of bcc's tool of that name (kAcceptColumns, kLifeColumns,
// kConnlatColumns; the formats are above each table), tcplife's -s as comma-separated values.
//
// All are written from tables of columns: a column's name, width, value and the option that
// shows it are written once, and drive the header and the rows alike. Every column is its
// value padded to its width, then one space before the next column (in CSV: a comma, no
// padding). bcc's TIME (%-9s), TIME(s) (%-9.3f) and UID (%-6s) have no separator of their own:
// they are 8, 8 and 5 wide here, so a value that fills them still gets a space.
//
// Unlike bcc, trailing whitespace is stripped from every line, and text from
// outside the tool (COMM, PCOMM, CONTAINER, QUERY, CMDLINE) is escaped
// (sink/escape.h) so that it cannot drive the terminal; in CSV a value with a comma or a quote
// is quoted (RFC 4180).
#include "sink/text_sink.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <initializer_list>
#include <iterator>
#include <span>
#include <string>
#include <string_view>

#include "model/intervals.h"
#include "sink/escape.h"
#include "tcpconnect/abi.h"

namespace tcpconnect {

// Where a column's value is written: the line, and what the sink keeps to write it.
struct TextCell {
  fmt::memory_buffer& buf;
  std::string& scratch;
  AddressCache& addrs;
  std::uint64_t origin_ns;  // TIME(s): monotonic stamp of the first event
  bool csv = false;         // values of comma-separated lines
  std::size_t width = 0;    // the column's width now

  void plain(std::string_view s) { buf.append(s); }
  template <typename T>
  void number(T v) {
    fmt::format_to(std::back_inserter(buf), "{}", v);
  }
  // Milliseconds with three decimals, from nanoseconds.
  void ms(std::uint64_t ns) {
    fmt::format_to(std::back_inserter(buf), "{:.3f}", static_cast<double>(ns) / 1e6);
  }
  // Text from outside the tool: its escaped form (sink/escape.h), cut to the column's width
  // (bytes, as bcc's %-12.12s counts them) before any character that would not fit whole;
  // whole in an unpadded column. Escapes count at their printed length, so the column stays
  // aligned.
  void text(std::string_view s) {
    scratch.clear();
    append_escaped(scratch, s, width ? width : kNoLimit);
    if (csv && scratch.find_first_of(",\"") != std::string::npos) {
      buf.push_back('"');
      for (char ch : scratch) {
        if (ch == '"') buf.push_back('"');
        buf.push_back(ch);
      }
      buf.push_back('"');
      return;
    }
    buf.append(scratch);
  }
  // Seconds since the first event, with `decimals` decimals. Records can be emitted slightly
  // out of stamp order, so the difference is signed.
  void seconds(std::uint64_t mono_ns, int decimals) {
    const auto delta = static_cast<std::int64_t>(mono_ns - origin_ns);
    fmt::format_to(std::back_inserter(buf), "{:.{}f}", static_cast<double>(delta) / 1e9, decimals);
  }
  void address(int ip, const AddrBytes& bytes) { buf.append(addrs.get(ip, bytes)); }
};

template <typename Record>
struct TextColumn {
  std::string_view name;
  // Bytes the value is padded to (Python's %-Ns counts bytes, fmt would count code points);
  // 0: not padded (the last columns).
  std::size_t width;
  // Widened for the longest value so far + 1, never narrowed (see below).
  bool grows;
  bool right;                          // padded on the left (bcc's %5d)
  bool (*shown)(const OutputConfig&);  // nullptr: always
  void (*value)(TextCell&, const Record&);
};

namespace {

template <bool Columns::*Flag>
bool with(const OutputConfig& c) {
  return c.columns.*Flag;
}

template <bool Columns::*Flag>
bool without(const OutputConfig& c) {
  return !(c.columns.*Flag);
}

bool with_lifetime(const OutputConfig& c) { return c.columns.outcome && c.columns.lifetime; }
bool by_process(const OutputConfig& c) { return c.by_process; }

// HH:MM:SS.mmm local time of a wall-clock stamp; "-" when unknown.
std::string clock_time(std::uint64_t ns) {
  if (ns == 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  return fmt::format("{:02}:{:02}:{:02}.{:03}", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (ns / 1'000'000) % 1000);
}

// Text in a growing column (a container's name) is cut at this many bytes.
constexpr std::size_t kMaxGrownWidth = 64;

// CONTAINER column: the name its runtime gave the container, else docker's 12-digit short ID,
// else the cgroup's own name, "-" for the root cgroup or an unknown one.
std::string_view container_column(const ConnectEvent& ev) {
  if (ev.container_info && !ev.container_info->name.empty()) return ev.container_info->name;
  if (!ev.container.empty()) return ev.container.substr(0, 12);
  const auto slash = ev.cgroup.rfind('/');
  std::string_view name = slash == std::string_view::npos ? ev.cgroup : ev.cgroup.substr(slash + 1);
  return name.empty() ? std::string_view("-") : name;
}

using Event = ConnectEvent;
using Cell = TextCell;

bool wide_or_csv(const OutputConfig& c) { return c.columns.wide || c.format == Format::Csv; }
bool narrow(const OutputConfig& c) { return !wide_or_csv(c); }

// The same column at another width (the tools pad the same value differently).
constexpr TextColumn<Event> at_width(TextColumn<Event> col, std::size_t width) {
  col.width = width;
  return col;
}

// Columns the tools share.
// -T: the event's local time (bcc's tcplife and tcpaccept print the time of printing).
constexpr TextColumn<Event> kTime{
    "TIME", 8, false, false, with<&Columns::time>, [](Cell& c, const Event& e) {
      c.plain(format_hms(e.ts_ns));
    }};
// -t: seconds since the first event printed.
constexpr TextColumn<Event> kTimestamp{
    "TIME(s)", 8, false, false, with<&Columns::timestamp>, [](Cell& c, const Event& e) {
      c.seconds(e.mono_ns, 3);
    }};
constexpr TextColumn<Event> kUid{
    "UID", 5, false, false, with<&Columns::uid>, [](Cell& c, const Event& e) { c.number(e.uid); }};
constexpr TextColumn<Event> kPid{"PID", 7,       false,
                                 false, nullptr, [](Cell& c, const Event& e) { c.number(e.pid); }};
constexpr TextColumn<Event> kComm{"COMM", 12,      false,
                                  false,  nullptr, [](Cell& c, const Event& e) { c.text(e.comm); }};
constexpr TextColumn<Event> kIp{"IP",  2,       false,
                                false, nullptr, [](Cell& c, const Event& e) { c.number(e.ip); }};
// Local and remote address and port, whichever side opened the connection.
constexpr TextColumn<Event> kLocalAddr{
    "SADDR", 16, true, false, nullptr, [](Cell& c, const Event& e) { c.address(e.ip, e.saddr); }};
constexpr TextColumn<Event> kRemoteAddr{
    "DADDR", 16, true, false, nullptr, [](Cell& c, const Event& e) { c.address(e.ip, e.daddr); }};
constexpr TextColumn<Event> kLocalPort{
    "LPORT", 5, false, false, nullptr, [](Cell& c, const Event& e) { c.number(e.sport); }};
constexpr TextColumn<Event> kRemotePort{
    "DPORT", 5, false, false, nullptr, [](Cell& c, const Event& e) { c.number(e.dport); }};
// The columns this tool adds, after every layout's own: --parent, --container, -d's QUERY,
// --cmdline last (it has spaces).
constexpr TextColumn<Event> kOwnColumns[] = {
    {"PPID", 7, false, false, with<&Columns::parent>,
     [](Cell& c, const Event& e) { c.number(e.ppid); }},
    {"PCOMM", 12, false, false, with<&Columns::parent>,
     [](Cell& c, const Event& e) { c.text(e.pcomm); }},
    {"NETNS", 10, false, false, with<&Columns::container>,
     [](Cell& c, const Event& e) { c.number(e.netns); }},
    {"CONTAINER", 13, true, false, with<&Columns::container>,
     [](Cell& c, const Event& e) { c.text(container_column(e)); }},
    {"QUERY", 0, false, false, with<&Columns::dns>,
     [](Cell& c, const Event& e) { c.text(e.query); }},
    {"CMDLINE", 0, false, false, with<&Columns::cmdline>,
     [](Cell& c, const Event& e) { c.text(e.cmdline); }},
};

// tcpconnect's lines, in bcc's order, then the columns this tool adds (lifecycle with
// --outcome/--failed/--lifetime; then kOwnColumns).
//
// SADDR and DADDR grow: bcc pads them to 16 characters, which a long IPv6 address overflows,
// running into the next column. Here a column's width starts at 16 and, whenever an address of
// 16 or more characters shows up, grows to len(address) + 1, so there is always at least one
// space of padding before the separator. Widths only ever grow (later rows stay aligned with
// the widest seen so far); the header is printed again, at the new widths, right before the
// first row printed at them. The same holds for the address columns of the other layouts.
constexpr TextColumn<Event> kEventColumns[] = {
    kTime,
    kTimestamp,
    kUid,
    kPid,
    kComm,
    kIp,
    {"DIR", 3, false, false, with<&Columns::dir>,
     [](Cell& c, const Event& e) { c.plain(e.inbound ? "in" : "out"); }},
    kLocalAddr,
    // -L: bcc puts LPORT between SADDR and DADDR, and narrows DPORT to %-5s.
    {"LPORT", 6, false, false, with<&Columns::lport>,
     [](Cell& c, const Event& e) { c.number(e.sport); }},
    kRemoteAddr,
    {"DPORT", 6, false, false, without<&Columns::lport>,
     [](Cell& c, const Event& e) { c.number(e.dport); }},
    {"DPORT", 5, false, false, with<&Columns::lport>,
     [](Cell& c, const Event& e) { c.number(e.dport); }},
    {"OUTCOME", 12, false, false, with<&Columns::outcome>,
     [](Cell& c, const Event& e) { c.plain(outcome_name(e.outcome, e.err)); }},
    // Not measured: accepted, or failed before a SYN.
    {"LAT(ms)", 8, false, false, with<&Columns::outcome>,
     [](Cell& c, const Event& e) {
       if (e.latency_ns) {
         c.ms(e.latency_ns);
       } else {
         c.plain("-");
       }
     }},
    {"DUR(ms)", 9, false, false, with_lifetime,
     [](Cell& c, const Event& e) { c.ms(e.duration_ns); }},
    {"TX", 10, false, false, with_lifetime, [](Cell& c, const Event& e) { c.number(e.tx_bytes); }},
    {"RX", 10, false, false, with_lifetime, [](Cell& c, const Event& e) { c.number(e.rx_bytes); }},
};

// tcpaccept (bcc): [TIME %-9s][TIME(s) %-9.3f]%-7d %-12.12s %-2d %-16s %-5d %-16s %-5d
// (PID COMM IP RADDR RPORT LADDR LPORT).
constexpr TextColumn<Event> kAcceptColumns[] = {
    kTime,
    kTimestamp,
    kUid,
    kPid,
    kComm,
    kIp,
    {"RADDR", 16, true, false, nullptr, [](Cell& c, const Event& e) { c.address(e.ip, e.daddr); }},
    {"RPORT", 5, false, false, nullptr, [](Cell& c, const Event& e) { c.number(e.dport); }},
    {"LADDR", 16, true, false, nullptr, [](Cell& c, const Event& e) { c.address(e.ip, e.saddr); }},
    kLocalPort,
};

// tcplife's MS: from the established state to the close, as bcc counts it (a connect that
// never established: from its SYN).
std::uint64_t session_ns(const Event& e) {
  return e.failed || e.latency_ns > e.duration_ns ? e.duration_ns : e.duration_ns - e.latency_ns;
}

// tcplife (bcc): [TIME %-8s ][TIME(s) %-9.6f ]
//   %-5d %-10.10s %-15s %-5d %-15s %-5d %5d %5d %.2f (PID COMM LADDR LPORT RADDR RPORT TX_KB
//   RX_KB MS); -w: %-5d %-16.16s %-2s %-26s %-5s %-26s %-5d %6d %6d %.2f, with IP after COMM;
//   -s: the values of -w separated by commas, COMM whole, TIME(s) %.6f.
constexpr TextColumn<Event> kLifeColumns[] = {
    kTime,
    {"TIME(s)", 9, false, false, with<&Columns::timestamp>,
     [](Cell& c, const Event& e) { c.seconds(e.mono_ns, 6); }},
    kUid,
    at_width(kPid, 5),
    {"COMM", 10, false, false, narrow, [](Cell& c, const Event& e) { c.text(e.comm); }},
    {"COMM", 16, false, false, wide_or_csv, [](Cell& c, const Event& e) { c.text(e.comm); }},
    {"IP", 2, false, false, wide_or_csv, [](Cell& c, const Event& e) { c.number(e.ip); }},
    {"LADDR", 15, true, false, narrow, [](Cell& c, const Event& e) { c.address(e.ip, e.saddr); }},
    {"LADDR", 26, true, false, wide_or_csv,
     [](Cell& c, const Event& e) { c.address(e.ip, e.saddr); }},
    kLocalPort,
    {"RADDR", 15, true, false, narrow, [](Cell& c, const Event& e) { c.address(e.ip, e.daddr); }},
    {"RADDR", 26, true, false, wide_or_csv,
     [](Cell& c, const Event& e) { c.address(e.ip, e.daddr); }},
    {"RPORT", 5, false, false, nullptr, [](Cell& c, const Event& e) { c.number(e.dport); }},
    {"TX_KB", 5, false, true, narrow, [](Cell& c, const Event& e) { c.number(e.tx_bytes / 1024); }},
    {"RX_KB", 5, false, true, narrow, [](Cell& c, const Event& e) { c.number(e.rx_bytes / 1024); }},
    {"TX_KB", 6, false, true, wide_or_csv,
     [](Cell& c, const Event& e) { c.number(e.tx_bytes / 1024); }},
    {"RX_KB", 6, false, true, wide_or_csv,
     [](Cell& c, const Event& e) { c.number(e.rx_bytes / 1024); }},
    {"MS", 8, false, false, nullptr,
     [](Cell& c, const Event& e) {
       fmt::format_to(std::back_inserter(c.buf), "{:.2f}",
                      static_cast<double>(session_ns(e)) / 1e6);
     }},
};

// tcpconnlat (bcc): [TIME(s) %-9.3f]%-6d %-12.12s %-2d %-16s [%-6d ]%-16s %-5d %.2f
// (PID COMM IP SADDR [LPORT] DADDR DPORT LAT(ms)); TIME is this tool's.
constexpr TextColumn<Event> kConnlatColumns[] = {
    kTime,
    kTimestamp,
    kUid,
    at_width(kPid, 6),
    kComm,
    kIp,
    kLocalAddr,
    {"LPORT", 6, false, false, with<&Columns::lport>,
     [](Cell& c, const Event& e) { c.number(e.sport); }},
    kRemoteAddr,
    kRemotePort,
    {"LAT(ms)", 8, false, false, nullptr,
     [](Cell& c, const Event& e) {
       fmt::format_to(std::back_inserter(c.buf), "{:.2f}", static_cast<double>(e.latency_ns) / 1e6);
     }},
};

std::span<const TextColumn<Event>> event_columns(Layout layout) {
  switch (layout) {
    case Layout::Tcpaccept:
      return kAcceptColumns;
    case Layout::Tcplife:
      return kLifeColumns;
    case Layout::Tcpconnlat:
      return kConnlatColumns;
    case Layout::Tcpconnect:
      break;
  }
  return kEventColumns;
}

// The -c table: bcc's LADDR RADDR RPORT CONNECTS (with --by-process, PID and COMM before them;
// with -L, libbpf-tools' LPORT before RPORT), then when the key was first and last seen (local
// time), the median gap between its connects, and whether the gaps look like a schedule
// ("periodic", with the share of gaps within 10% of the median) or not ("irregular"). LADDR
// and RADDR are widened to longest + 1 for the whole table, header included, when an address
// does not fit in 24.
constexpr TextColumn<CountRow> kCountColumns[] = {
    {"PID", 7, false, false, by_process, [](Cell& c, const CountRow& r) { c.number(r.pid); }},
    {"COMM", TC_COMM_LEN, false, false, by_process,
     [](Cell& c, const CountRow& r) { c.text(r.comm); }},
    {"LADDR", 25, true, false, nullptr,
     [](Cell& c, const CountRow& r) { c.address(r.ip, r.saddr); }},
    {"RADDR", 25, true, false, nullptr,
     [](Cell& c, const CountRow& r) { c.address(r.ip, r.daddr); }},
    {"LPORT", 20, false, false, with<&Columns::lport>,
     [](Cell& c, const CountRow& r) { c.number(r.sport); }},
    {"RPORT", 20, false, false, nullptr, [](Cell& c, const CountRow& r) { c.number(r.dport); }},
    {"CONNECTS", 10, false, false, nullptr, [](Cell& c, const CountRow& r) { c.number(r.count); }},
    {"FAILED", 8, false, false, with<&Columns::failed>,
     [](Cell& c, const CountRow& r) { c.number(r.failed); }},
    {"FIRST", 12, false, false, nullptr,
     [](Cell& c, const CountRow& r) { c.plain(clock_time(r.first_ns)); }},
    {"LAST", 12, false, false, nullptr,
     [](Cell& c, const CountRow& r) { c.plain(clock_time(r.last_ns)); }},
    {"EVERY", 7, false, false, nullptr,
     [](Cell& c, const CountRow& r) {
       c.plain(r.intervals ? format_interval(r.interval_median_s) : "-");
     }},
    {"PATTERN", 0, false, false, nullptr,
     [](Cell& c, const CountRow& r) {
       if (r.intervals >= 2) {
         fmt::format_to(std::back_inserter(c.buf), "{} ({:.0f}%)",
                        r.periodic ? "periodic" : "irregular", r.regular_fraction * 100);
       } else {
         c.plain("-");
       }
     }},
};

// The columns of `tables` that `cfg` shows, at their starting widths (none in CSV: unpadded).
template <typename Shown, typename Record>
std::vector<Shown> shown_columns(std::initializer_list<std::span<const TextColumn<Record>>> tables,
                                 const OutputConfig& cfg) {
  std::vector<Shown> out;
  for (auto table : tables) {
    for (const TextColumn<Record>& col : table) {
      if (!col.shown || col.shown(cfg)) {
        out.push_back({&col, cfg.format == Format::Csv ? 0 : col.width});
      }
    }
  }
  return out;
}

// Pads what was appended to `buf` since `from` to `width`: after it, or before it (`right`).
void pad(fmt::memory_buffer& buf, std::size_t from, std::size_t width, bool right) {
  const std::size_t len = buf.size() - from;
  if (len >= width) return;
  const std::size_t n = width - len;
  buf.resize(buf.size() + n);
  char* start = buf.data() + from;
  if (right) {
    std::copy_backward(start, start + len, start + len + n);
    std::fill(start, start + n, ' ');
  } else {
    std::fill(start + len, start + len + n, ' ');
  }
}

}  // namespace

TextSink::TextSink(const OutputConfig& cfg, std::ostream& out, std::ostream& err)
    : count_(cfg.count),
      rows_(cfg.rows),
      hist_(cfg.hist),
      csv_(cfg.format == Format::Csv),
      columns_(shown_columns<Shown<ConnectEvent>, ConnectEvent>(
          {event_columns(cfg.layout), kOwnColumns}, cfg)),
      count_columns_(shown_columns<Shown<CountRow>, CountRow>({kCountColumns}, cfg)),
      out_(out),
      err_(err) {}

void TextSink::write_line(std::ostream& os) {
  std::size_t n = buf_.size();
  while (n > 0 && (buf_[n - 1] == ' ' || buf_[n - 1] == '\t')) --n;
  buf_.resize(n);
  buf_.push_back('\n');
  os.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
}

template <typename Record>
void TextSink::append_header(const std::vector<Shown<Record>>& columns) {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) buf_.push_back(csv_ ? ',' : ' ');
    const std::size_t from = buf_.size();
    buf_.append(columns[i].column->name);
    pad(buf_, from, columns[i].width, columns[i].column->right);
  }
}

template <typename Record>
bool TextSink::append_row(std::vector<Shown<Record>>& columns, const Record& record) {
  TextCell cell{buf_, text_, addrs_, first_mono_ns_.value_or(0), csv_};
  bool grew = false;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    Shown<Record>& col = columns[i];
    if (i > 0) buf_.push_back(csv_ ? ',' : ' ');
    const std::size_t from = buf_.size();
    // A growing column's text is cut only at kMaxGrownWidth.
    cell.width = col.column->grows ? kMaxGrownWidth : col.width;
    col.column->value(cell, record);
    if (col.column->grows && !csv_ && buf_.size() - from + 1 > col.width) {
      col.width = buf_.size() - from + 1;
      grew = true;
    }
    pad(buf_, from, col.width, col.column->right);
  }
  return grew;
}

void TextSink::start(const StartInfo& /*info*/) {
  // bcc prints no header in -c mode; its count table comes at exit (so do --hist's).
  if (count_ || hist_ != HistBy::None) return;
  buf_.clear();
  append_header(columns_);
  write_line(out_);
  header_shown_ = true;
}

void TextSink::connect(const ConnectEvent& ev) {
  if (!first_mono_ns_) first_mono_ns_ = ev.mono_ns;
  buf_.clear();
  if (append_row(columns_, ev) && header_shown_) {
    // A column widened for this row: the header again, at the new widths, so that it lines up
    // with this row and the next ones.
    const std::string row(buf_.data(), buf_.size());
    buf_.clear();
    append_header(columns_);
    write_line(out_);
    buf_.clear();
    buf_.append(row);
  }
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
  if (count_) {
    buf_.clear();
    write_line(out_);  // bcc: print("\n%-25s ...")
    write_count_table(rows);
  }
  write_histograms(rows);
}

void TextSink::count_interval(const std::vector<CountRow>& rows, std::uint64_t wall_ns) {
  buf_.clear();
  write_line(out_);
  buf_.clear();
  buf_.append(format_hms(wall_ns));
  write_line(out_);
  if (count_) write_count_table(rows);
  write_histograms(rows);
  out_.flush();
}

void TextSink::write_count_table(const std::vector<CountRow>& all) {
  const std::span<const CountRow> rows(all.data(),
                                       rows_ ? std::min(rows_, all.size()) : all.size());
  // The widths of the growing columns, for the whole table: measured before the header.
  std::vector<Shown<CountRow>> columns = count_columns_;
  for (const CountRow& r : rows) {
    buf_.clear();
    append_row(columns, r);
  }
  buf_.clear();
  append_header(columns);
  write_line(out_);
  for (const CountRow& r : rows) {
    buf_.clear();
    append_row(columns, r);
    write_line(out_);
  }
}

void TextSink::write_histograms(const std::vector<CountRow>& rows) {
  if (hist_ == HistBy::None) return;
  const std::vector<HistGroup> groups = group_histograms(rows, hist_);
  if (groups.empty()) {
    out_ << "\n(no handshake or lifetime in this interval)\n";
    return;
  }
  for (const HistGroup& g : groups) {
    const std::string who = hist_ == HistBy::Port
                                ? fmt::format("dport = {}", g.port)
                                : fmt::format("pid = {}, comm = {}", g.pid, escape_text(g.comm));
    const std::uint64_t connects = g.latency_us.total(), closed = g.lifetime_ms.total();
    if (connects) {
      out_ << "\nHandshake latency, " << who << " (" << connects
           << (connects == 1 ? " connect)\n" : " connects)\n")
           << format_log2_hist(g.latency_us, "usecs");
    }
    if (closed) {
      out_ << "\nLifetime, " << who << " (" << closed
           << (closed == 1 ? " connection)\n" : " connections)\n")
           << format_log2_hist(g.lifetime_ms, "msecs");
    }
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
