// bcc tcpconnect-compatible column output.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "model/event.h"
#include "sink/address_cache.h"
#include "sink/sink.h"

namespace tcpconnect {

// One column of the text output: its name, width, value and when it is shown (text_sink.cpp).
template <typename Record>
struct TextColumn;

class TextSink final : public Sink {
 public:
  TextSink(const OutputConfig& cfg, std::ostream& out, std::ostream& err);

  void start(const StartInfo& info) override;
  void connect(const ConnectEvent& ev) override;
  void lost(std::uint64_t delta, std::uint64_t total) override;
  void lost_enrichment(Enrichment kind, std::uint64_t delta, std::uint64_t total) override;
  void counts(std::vector<CountRow> rows) override;
  void count_interval(const std::vector<CountRow>& rows, std::uint64_t wall_ns) override;
  void finish(const FinishInfo& info) override;

 private:
  // A column of a table (text_sink.cpp) as this output prints it: SADDR, DADDR, LADDR and
  // RADDR widen.
  template <typename Record>
  struct Shown {
    const TextColumn<Record>* column;
    std::size_t width;
  };

  // Strips the trailing padding from buf_, appends '\n' and writes it out.
  void write_line(std::ostream& os);
  template <typename Record>
  void append_header(const std::vector<Shown<Record>>& columns);
  // A count table: its header and rows, its address columns as wide as its longest address.
  void write_count_table(const std::vector<CountRow>& all);
  // --hist: the histograms of the rows, one per port or process.
  void write_histograms(const std::vector<CountRow>& rows);
  // Whether a column grew for this row.
  template <typename Record>
  bool append_row(std::vector<Shown<Record>>& columns, const Record& record);

  bool count_;        // -c: the count table at exit, no per-event lines
  std::size_t rows_;  // --rows: at most this many rows per table (0: all)
  HistBy hist_;       // --hist
  bool csv_;          // comma-separated values (tcplife -s)
  std::vector<Shown<ConnectEvent>> columns_;
  std::vector<Shown<CountRow>> count_columns_;
  std::ostream& out_;
  std::ostream& err_;
  // start() printed the header: it is printed again when a column grows.
  bool header_shown_ = false;
  // Monotonic stamp of the first event: the TIME(s) origin.
  std::optional<std::uint64_t> first_mono_ns_;
  AddressCache addrs_;
  fmt::memory_buffer buf_;  // reused for every line
  std::string text_;        // reused for every escaped field
};

}  // namespace tcpconnect
