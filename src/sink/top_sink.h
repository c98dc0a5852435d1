// --top on a terminal: the count rows of each interval drawn full-screen with ncurses
// (top_table.h says what is drawn). Keys are read after every poll: q quits (through `quit`),
// s cycles the sort column, p pauses the display (the counting goes on). A resized terminal is
// redrawn; finish() and the destructor give the terminal back as it was.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/event.h"
#include "sink/config.h"
#include "sink/sink.h"
#include "sink/top_table.h"

namespace tcpconnect {

class TopSink final : public Sink {
 public:
  TopSink(const OutputConfig& cfg, std::function<void()> quit);
  ~TopSink() override;
  TopSink(const TopSink&) = delete;
  TopSink& operator=(const TopSink&) = delete;

  void start(const StartInfo& info) override;
  void connect(const ConnectEvent&) override {}
  void lost(std::uint64_t /*delta*/, std::uint64_t total) override { view_.lost = total; }
  void lost_enrichment(Enrichment, std::uint64_t, std::uint64_t) override {}
  void polled(std::uint64_t wall_ns) override;
  void counts(std::vector<CountRow>) override {}  // --top always has an interval
  void count_interval(const std::vector<CountRow>& rows, std::uint64_t wall_ns) override;
  void finish(const FinishInfo& info) override;

 private:
  void draw();
  void leave();

  std::function<void()> quit_;
  std::size_t max_rows_;
  TopView view_;
  std::vector<CountRow> rows_;  // the last interval's
  std::uint64_t last_ns_ = 0;   // wall clock of the last table (or of the start)
  bool on_ = false;             // the screen is ours
};

}  // namespace tcpconnect
