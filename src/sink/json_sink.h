// JSON lines output: one compact object per line.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "model/event.h"
#include "sink/address_cache.h"
#include "sink/sink.h"

namespace tcpconnect {

// Schema version written in the "start" record.
inline constexpr int kJsonSchemaVersion = 5;

class JsonSink final : public Sink {
 public:
  JsonSink(const OutputConfig& cfg, std::ostream& out);

  void start(const StartInfo& info) override;
  void connect(const ConnectEvent& ev) override;
  void lost(std::uint64_t delta, std::uint64_t total) override;
  void lost_enrichment(Enrichment kind, std::uint64_t delta, std::uint64_t total) override;
  void counts(std::vector<CountRow> rows) override;
  void count_interval(const std::vector<CountRow>& rows, std::uint64_t wall_ns) override;
  void finish(const FinishInfo& info) override;

 private:
  void write_count(const CountRow& r, const std::uint64_t* interval_end);
  // --hist: one record per histogram of the rows (per port or process, latency and lifetime).
  void write_histograms(const std::vector<CountRow>& rows, const std::uint64_t* interval_end);
  // JSON text (quoted, escaped) of a task name; the last one is cached.
  // The JSON string literal of the last value seen in one field: events
  // come in runs from the same process, so most lookups are hits.
  class LastString {
   public:
    const std::string& get(std::string_view raw);

   private:
    bool have_ = false;
    std::string raw_, json_;
  };
  // A JSON string literal of `s` (escaped, invalid UTF-8 replaced).
  static std::string string_json(std::string_view s);
  // The JSON array of the arguments in `args` (each followed by one NUL; the last one gets
  // "..." when `truncated`), each escaped as string_json does; "null" when `args` is empty.
  static std::string argv_json(std::string_view args, bool truncated);

  // "time": RFC 3339 local time with microseconds and the UTC offset of that instant, of a
  // wall-clock stamp in ns since the epoch. The part up to the seconds is kept per second.
  class LocalTime {
   public:
    const std::string& get(std::uint64_t ns);

   private:
    std::int64_t secs_ = -1;
    std::string date_, offset_, text_;
  };

  bool count_;
  std::size_t rows_ = 0;  // --rows
  HistBy hist_ = HistBy::None;
  bool by_process_ = false;
  bool lport_ = false;       // -c -L/-s: "sport" in count records (the source port is in the key)
  bool cumulative_ = false;  // -c --interval --cumulative
  bool dns_ = false;         // -d: "query" and "query_age_ms" fields
  std::ostream& out_;
  std::string line_;        // reused for the rare records
  fmt::memory_buffer buf_;  // reused for connect records
  AddressCache addrs_;
  LastString comm_, cgroup_, pcomm_, cmdline_;
  // The last argv seen, and its JSON array.
  std::string argv_raw_, argv_text_ = "null";
  bool argv_truncated_ = false;
  LocalTime time_;
};

}  // namespace tcpconnect
