#include "sink/sink.h"

#include "sink/json_sink.h"
#include "sink/text_sink.h"

namespace tcpconnect {

std::unique_ptr<Sink> make_sink(const Options& opts, std::ostream& out, std::ostream& err) {
  if (opts.json && !opts.quiet)  // --quiet: only warnings, on stderr
    return std::make_unique<JsonSink>(opts, out);
  return std::make_unique<TextSink>(opts, out, err);
}

}  // namespace tcpconnect
