// tracefs: classic tracepoints are attached by id, read from tracefs, which
// may be unmounted at boot.
#pragma once

#include <string>

namespace tcpconnect {

// Makes sure tracefs is reachable while tracepoints are attached, mounting
// it at /sys/kernel/tracing if needed, and unmounts what it mounted when it
// goes out of scope: attached tracepoints keep no reference to the mount, so
// nothing the tool mounted outlives its start.
class TracefsMount {
 public:
  TracefsMount() = default;
  ~TracefsMount();
  TracefsMount(const TracefsMount&) = delete;
  TracefsMount& operator=(const TracefsMount&) = delete;
  // Empty on success, else why tracefs cannot be reached.
  std::string ensure();
  // Whether ensure() mounted it.
  bool mounted() const { return mounted_; }

 private:
  bool mounted_ = false;
};

}  // namespace tcpconnect
