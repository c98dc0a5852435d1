#include "sink/sink.h"

#include "sink/json_sink.h"
#include "sink/text_sink.h"

namespace tcpconnect {

std::unique_ptr<Sink> make_sink(const OutputConfig& cfg, std::ostream& out, std::ostream& err) {
  if (cfg.format == Format::Json) return std::make_unique<JsonSink>(cfg, out);
  return std::make_unique<TextSink>(cfg, out, err);
}

}  // namespace tcpconnect
