// JSON lines: one compact object per line, keys in a fixed order
// (nlohmann::ordered_json keeps insertion order).
//
// Connect records are the hot path (tens of thousands per second), and
// building an ordered_json costs ~2 us, so they are written with fmt instead.
// That is safe because every value but `comm` is a number, an inet_ntop()
// string (hex digits, ':' and '.') or a time stamp, and the text from outside
// the tool (`comm`, `cgroup`, `pcomm`, `cmdline`, `argv`, `query`) is still
// serialised by nlohmann. The unit tests check the output is byte-identical to
// ordered_json::dump(). The rare records (start, lost, lost_enrichment, count, end) are built
// as ordered_json.
#include "sink/json_sink.h"

#include <ctime>
#include <iterator>
#include <nlohmann/json.hpp>

namespace tcpconnect {
namespace {

using Json = nlohmann::ordered_json;

// Serialises `j` as one line. error_handler_t::replace turns invalid UTF-8
// (task names are raw kernel bytes) into U+FFFD; control characters are
// escaped by the serializer, so every line is valid JSON.
void write_record(std::string& line, std::ostream& out, const Json& j) {
  line = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  line.push_back('\n');
  out.write(line.data(), static_cast<std::streamsize>(line.size()));
}

}  // namespace

JsonSink::JsonSink(const OutputConfig& cfg, std::ostream& out)
    : count_(cfg.count),
      rows_(cfg.rows),
      hist_(cfg.hist),
      by_process_(cfg.by_process),
      lport_(cfg.columns.lport),
      cumulative_(cfg.cumulative),
      dns_(cfg.columns.dns),
      out_(out) {}

void JsonSink::start(const StartInfo& info) {
  Json j;
  j["type"] = "start";
  j["version"] = kJsonSchemaVersion;
  j["tool_version"] = info.version;
  j["attach"] = info.attach_method;
  j["ts_ns"] = info.ts_ns;
  j["time"] = time_.get(info.ts_ns);
  j["mode"] = count_ ? "count" : hist_ != HistBy::None ? "hist" : "connect";
  write_record(line_, out_, j);
}

std::string JsonSink::string_json(std::string_view s) {
  return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string JsonSink::argv_json(std::string_view args, bool truncated) {
  if (args.empty()) return "null";
  Json array = Json::array();
  std::size_t from = 0;
  while (from < args.size()) {
    std::size_t nul = args.find('\0', from);
    if (nul == std::string_view::npos) nul = args.size();
    std::string arg(args.substr(from, nul - from));
    from = nul + 1;
    if (truncated && from >= args.size()) arg += "...";
    array.push_back(std::move(arg));
  }
  return array.dump(-1, ' ', false, Json::error_handler_t::replace);
}

const std::string& JsonSink::LocalTime::get(std::uint64_t ns) {
  const auto secs = static_cast<std::int64_t>(ns / 1'000'000'000);
  if (secs != secs_) {
    // The offset of local time at that instant, whole minutes (RFC 3339 has no seconds in
    // it); the time shown is UTC plus that offset, so it always names the same instant.
    const auto t = static_cast<std::time_t>(secs);
    std::tm local{};
    localtime_r(&t, &local);
    const long offset_min = local.tm_gmtoff / 60;
    const std::time_t shifted = t + offset_min * 60;
    std::tm tm{};
    gmtime_r(&shifted, &tm);
    date_ = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.", tm.tm_year + 1900, tm.tm_mon + 1,
                        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    const long abs_min = offset_min < 0 ? -offset_min : offset_min;
    offset_ = fmt::format("{}{:02}:{:02}", offset_min < 0 ? '-' : '+', abs_min / 60, abs_min % 60);
    secs_ = secs;
  }
  text_.clear();
  text_.append(date_);
  fmt::format_to(std::back_inserter(text_), "{:06}", (ns / 1000) % 1'000'000);
  text_.append(offset_);
  return text_;
}

const std::string& JsonSink::LastString::get(std::string_view raw) {
  if (!have_ || raw != raw_) {
    raw_ = raw;
    json_ = string_json(raw);
    have_ = true;
  }
  return json_;
}

void JsonSink::connect(const ConnectEvent& ev) {
  buf_.clear();
  auto it = std::back_inserter(buf_);
  static constexpr const char* kTypes[] = {"", "connect", "outcome", "close", "accept"};
  // "time" is digits, '-', ':', 'T', '.' and '+': no escaping needed.
  fmt::format_to(it, R"({{"type":"{}","ts_ns":{},"time":"{}","pid":{},"tid":{},"uid":{},"comm":)",
                 kTypes[static_cast<int>(ev.kind)], ev.ts_ns, time_.get(ev.ts_ns), ev.pid, ev.tid,
                 ev.uid);
  buf_.append(comm_.get(ev.comm));
  fmt::format_to(it, R"(,"af":{},"saddr":")", ev.ip);
  buf_.append(addrs_.get(ev.ip, ev.saddr));  // appended before the next lookup
  fmt::format_to(it, R"(","sport":{},"daddr":")", ev.sport);
  buf_.append(addrs_.get(ev.ip, ev.daddr));
  fmt::format_to(it, R"(","dport":{},"dir":"{}")", ev.dport, ev.inbound ? "in" : "out");
  if (ev.kind != EventKind::Connect) {
    // Outcome names and errno names are plain ASCII: no escaping needed.
    fmt::format_to(it, R"(,"outcome":"{}","error":"{}","latency_ns":{})",
                   outcome_name(ev.outcome, ev.err), errno_name(ev.err), ev.latency_ns);
  }
  if (ev.kind == EventKind::Close) {
    fmt::format_to(it, R"(,"duration_ns":{},"tx_bytes":{},"rx_bytes":{})", ev.duration_ns,
                   ev.tx_bytes, ev.rx_bytes);
  }
  // Container IDs are hex digits; cgroup paths and DNS names are escaped.
  fmt::format_to(it, R"(,"netns":{},"mntns":{},"cgroup_id":{},"cgroup":)", ev.netns, ev.mntns,
                 ev.cgroup_id);
  buf_.append(cgroup_.get(ev.cgroup));
  fmt::format_to(it, R"(,"container":"{}")", ev.container);
  // What the container's runtime calls it: null where it was not asked or did not answer.
  const ContainerInfo* info = ev.container_info;
  for (const auto& [key, value] :
       {std::pair{R"(,"container_name":)", info ? &info->name : nullptr},
        std::pair{R"(,"image":)", info ? &info->image : nullptr},
        std::pair{R"(,"pod":)", info ? &info->pod : nullptr},
        std::pair{R"(,"pod_namespace":)", info ? &info->pod_namespace : nullptr},
        std::pair{R"(,"container_k8s":)", info ? &info->k8s_container : nullptr}}) {
    buf_.append(std::string_view(key));
    if (value && !value->empty()) {
      buf_.append(string_json(*value));
    } else {
      buf_.append(std::string_view("null"));
    }
  }
  fmt::format_to(it, R"(,"ppid":{},"pcomm":)", ev.ppid);
  buf_.append(pcomm_.get(ev.pcomm));
  buf_.append(std::string_view(R"(,"cmdline":)"));
  buf_.append(cmdline_.get(ev.cmdline.empty() ? std::string_view("?") : ev.cmdline));
  if (ev.argv != argv_raw_ || ev.argv_truncated != argv_truncated_) {
    argv_raw_ = ev.argv;
    argv_truncated_ = ev.argv_truncated;
    argv_text_ = argv_json(ev.argv, ev.argv_truncated);
  }
  buf_.append(std::string_view(R"(,"argv":)"));
  buf_.append(argv_text_);
  if (dns_) {
    buf_.append(std::string_view(R"(,"query":)"));
    if (ev.query_name.empty()) {
      buf_.append(std::string_view(R"(null,"query_age_ms":null)"));
    } else {
      buf_.append(string_json(ev.query_name));
      if (ev.query_age_ns) {
        fmt::format_to(it, R"(,"query_age_ms":{})", *ev.query_age_ns / 1'000'000);
      } else {
        buf_.append(std::string_view(R"(,"query_age_ms":null)"));
      }
    }
  }
  buf_.push_back('}');
  buf_.push_back('\n');
  out_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
}

void JsonSink::lost(std::uint64_t delta, std::uint64_t total) {
  Json j;
  j["type"] = "lost";
  j["count"] = delta;
  j["total"] = total;
  write_record(line_, out_, j);
}

void JsonSink::lost_enrichment(Enrichment kind, std::uint64_t delta, std::uint64_t total) {
  Json j;
  j["type"] = "lost_enrichment";
  j["kind"] = kind == Enrichment::Exec ? "exec" : "dns";
  j["count"] = delta;
  j["total"] = total;
  write_record(line_, out_, j);
}

void JsonSink::counts(std::vector<CountRow> rows) {
  sort_count_rows(rows);
  if (count_)
    for (std::size_t i = 0; i < rows.size() && (!rows_ || i < rows_); ++i)
      write_count(rows[i], nullptr);
  write_histograms(rows, nullptr);
}

void JsonSink::count_interval(const std::vector<CountRow>& rows, std::uint64_t wall_ns) {
  if (count_)
    for (std::size_t i = 0; i < rows.size() && (!rows_ || i < rows_); ++i)
      write_count(rows[i], &wall_ns);
  write_histograms(rows, &wall_ns);
  out_.flush();
}

void JsonSink::write_histograms(const std::vector<CountRow>& rows,
                                const std::uint64_t* interval_end) {
  if (hist_ == HistBy::None) return;
  for (const HistGroup& g : group_histograms(rows, hist_)) {
    for (const bool latency : {true, false}) {
      const Log2Hist& h = latency ? g.latency_us : g.lifetime_ms;
      if (!h.total()) continue;
      Json j;
      j["type"] = "hist";
      if (interval_end) {
        j["ts_ns"] = *interval_end;
        j["time"] = time_.get(*interval_end);
        j["cumulative"] = cumulative_;
      }
      j["metric"] = latency ? "handshake_latency" : "lifetime";
      j["unit"] = latency ? "us" : "ms";
      if (hist_ == HistBy::Port) {
        j["dport"] = g.port;
      } else {
        j["pid"] = g.pid;
        j["comm"] = g.comm;
      }
      j["total"] = h.total();
      Json buckets = Json::array();
      for (std::size_t b = 0; b < h.buckets.size(); ++b) {
        if (!h.buckets[b]) continue;
        const std::uint64_t low = b == 0 ? 0 : std::uint64_t{1} << b;
        buckets.push_back(
            {{"low", low}, {"high", (std::uint64_t{1} << (b + 1)) - 1}, {"count", h.buckets[b]}});
      }
      j["buckets"] = std::move(buckets);
      write_record(line_, out_, j);
    }
  }
}

// A count record; with `interval_end` (-c --interval), of the interval ending then.
void JsonSink::write_count(const CountRow& r, const std::uint64_t* interval_end) {
  Json j;
  j["type"] = "count";
  if (interval_end) {
    j["ts_ns"] = *interval_end;
    j["time"] = time_.get(*interval_end);
    j["cumulative"] = cumulative_;
  }
  j["af"] = r.ip;
  j["saddr"] = format_address(r.ip, r.saddr);
  j["daddr"] = format_address(r.ip, r.daddr);
  if (by_process_) {
    j["pid"] = r.pid;
    j["comm"] = r.comm;
  }
  if (lport_) j["sport"] = r.sport;
  j["dport"] = r.dport;
  j["connects"] = r.count;
  if (interval_end) j["failed"] = r.failed;
  j["first_ns"] = r.first_ns;
  j["last_ns"] = r.last_ns;
  j["intervals"] = r.intervals;
  j["interval_median_s"] = r.interval_median_s;
  j["regular_fraction"] = r.regular_fraction;
  j["periodic"] = r.periodic;
  write_record(line_, out_, j);
}

void JsonSink::finish(const FinishInfo& info) {
  Json j;
  j["type"] = "end";
  j["events"] = info.events;
  j["lost"] = info.lost_total;
  j["skipped"] = info.skipped;
  j["lost_execs"] = info.lost_execs;
  j["lost_dns"] = info.lost_dns;
  j["execs"] = info.execs;
  j["dns_answers"] = info.dns_answers;
  j["untracked"] = info.untracked;
  write_record(line_, out_, j);
  out_.flush();
}

}  // namespace tcpconnect
