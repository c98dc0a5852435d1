// Whether --top can draw: apart from top_sink.cpp, because <term.h> defines macros (lines,
// columns, ...) that collide with ordinary names.
#include "sink/terminal.h"

#include <curses.h>
#include <term.h>
#include <unistd.h>

#include <cstdlib>

namespace tcpconnect {

bool top_screen_available(std::string& why) {
  int err = 0;
  if (setupterm(nullptr, STDOUT_FILENO, &err) == OK) {
    del_curterm(cur_term);
    return true;
  }
  const char* term = std::getenv("TERM");
  why = err == 0 ? "no terminfo entry for TERM=" + std::string(term ? term : "")
                 : std::string("no terminfo database");
  return false;
}

}  // namespace tcpconnect
