// The tracing session: wires the probe to the sinks and runs the poll loop.
#pragma once

#include <ostream>

#include "plan/plan.h"
#include "sink/fd_stream.h"

namespace tcpconnect {

// Returns the process exit status. `out` writes through `outbuf`, whose
// errors (EPIPE) end the session quietly.
int run(const Plan& plan, std::ostream& out, FdStreamBuf& outbuf, std::ostream& err);

// Set by SIGINT/SIGTERM; the loop exits cleanly when it is non-zero.
void request_stop();

}  // namespace tcpconnect
