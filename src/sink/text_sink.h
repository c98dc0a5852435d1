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

class TextSink final : public Sink {
 public:
  TextSink(const OutputConfig& cfg, std::ostream& out, std::ostream& err);

  void start(const StartInfo& info) override;
  void connect(const ConnectEvent& ev) override;
  void lost(std::uint64_t delta, std::uint64_t total) override;
  void lost_enrichment(Enrichment kind, std::uint64_t delta, std::uint64_t total) override;
  void counts(std::vector<CountRow> rows) override;
  void finish(const FinishInfo& info) override;

 private:
  // Strips the trailing padding from buf_, appends '\n' and writes it out.
  void write_line(std::ostream& os);
  void append_extra_header();
  void append_extra(const ConnectEvent& ev);
  void append_lifecycle_header();
  void append_lifecycle(const ConnectEvent& ev);

  bool timestamp_;
  bool print_uid_;
  bool lport_;
  bool count_;
  bool by_process_;  // -c --by-process: PID and COMM columns in the table
  bool dir_;         // --accept: DIR column (out / in)
  bool outcome_;     // --outcome / --failed / --lifetime: OUTCOME and LAT(ms)
  bool lifetime_;    // --lifetime: DUR(ms), TX and RX
  bool container_;   // --container: NETNS and CONTAINER
  bool dns_;         // -d: QUERY
  bool parent_;      // --parent: PPID and PCOMM
  bool cmdline_;     // --cmdline: CMDLINE
  std::ostream& out_;
  std::ostream& err_;
  // Widths of the SADDR / DADDR columns. They start at bcc's 16 and only
  // ever grow (see connect()).
  std::size_t saddr_width_ = 16;
  std::size_t daddr_width_ = 16;
  // Monotonic stamp of the first event: the TIME(s) origin.
  std::optional<std::uint64_t> first_mono_ns_;
  AddressCache addrs_;
  fmt::memory_buffer buf_;  // reused for every line
  std::string text_;        // reused for every escaped field
};

}  // namespace tcpconnect
