// tracefs: classic tracepoints are attached by id, read from tracefs, which
// may be unmounted at boot.
#pragma once

#include <string>

namespace tcpconnect {

// Makes sure tracefs is reachable, mounting it at /sys/kernel/tracing if
// needed. Returns an empty string on success, else why it is not.
// `mounted` tells whether this call mounted it.
std::string ensure_tracefs(bool& mounted);

}  // namespace tcpconnect
