#include "sink/top_sink.h"

#include <curses.h>

#include <cstdio>
#include <utility>

namespace tcpconnect {

TopSink::TopSink(const OutputConfig& cfg, std::function<void()> quit)
    : quit_(std::move(quit)), max_rows_(cfg.rows) {
  view_.bytes = cfg.columns.lifetime;
  view_.interval_s = static_cast<double>(cfg.interval_ns) / 1e9;
}

TopSink::~TopSink() { leave(); }

void TopSink::start(const StartInfo& info) {
  last_ns_ = info.ts_ns;
  view_.wall_ns = info.ts_ns;
  // The terminal on stdout; keys from stdin. ncurses leaves SIGINT and SIGTERM to the
  // handlers already installed and takes SIGWINCH (KEY_RESIZE).
  if (newterm(nullptr, stdout, stdin) == nullptr) return;
  on_ = true;
  cbreak();
  noecho();
  nodelay(stdscr, TRUE);
  keypad(stdscr, TRUE);
  curs_set(0);
  draw();
}

void TopSink::polled(std::uint64_t /*wall_ns*/) {
  if (!on_) return;
  bool redraw = false;
  for (int ch = getch(); ch != ERR; ch = getch()) {
    switch (ch) {
      case 'q':
      case 'Q':
        quit_();
        return;
      case 's':
      case 'S':
        view_.sort = next_sort(view_.sort, view_.bytes);
        redraw = true;
        break;
      case 'p':
      case 'P':
      case ' ':
        view_.paused = !view_.paused;
        redraw = true;
        break;
      case KEY_RESIZE:
        redraw = true;
        break;
      default:
        break;
    }
  }
  if (redraw) draw();
}

void TopSink::count_interval(const std::vector<CountRow>& rows, std::uint64_t wall_ns) {
  if (view_.paused) return;  // the screen keeps what it shows; the next table is fresh
  view_.interval_s = static_cast<double>(wall_ns - last_ns_) / 1e9;
  view_.wall_ns = wall_ns;
  last_ns_ = wall_ns;
  rows_ = rows;
  draw();
}

void TopSink::draw() {
  if (!on_) return;
  const auto height = static_cast<std::size_t>(std::max(LINES, 0));
  const auto width = static_cast<std::size_t>(std::max(COLS, 1));
  // The lines above the rows: title, keys, blank, header.
  constexpr std::size_t kAbove = 4;
  std::size_t fit = height > kAbove ? height - kAbove : 0;
  if (max_rows_ && max_rows_ < fit) fit = max_rows_;
  const std::vector<std::string> lines = top_lines(rows_, view_, width, fit ? fit : 1);
  erase();
  for (std::size_t i = 0; i < lines.size() && i < height; ++i) {
    if (i == 3) attron(A_REVERSE);
    mvaddnstr(static_cast<int>(i), 0, lines[i].c_str(), static_cast<int>(width));
    if (i == 3) attroff(A_REVERSE);
  }
  refresh();
}

void TopSink::finish(const FinishInfo& /*info*/) { leave(); }

void TopSink::leave() {
  if (!on_) return;
  on_ = false;
  endwin();
  std::fflush(stdout);
}

}  // namespace tcpconnect
