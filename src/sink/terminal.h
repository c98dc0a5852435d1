// Whether --top can draw on the terminal on stdout.
#pragma once

#include <string>

namespace tcpconnect {

// True when the terminal on stdout has a terminfo entry (its TERM is known); `why` says why not.
bool top_screen_available(std::string& why);

}  // namespace tcpconnect
