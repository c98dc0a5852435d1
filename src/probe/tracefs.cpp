#include "probe/tracefs.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace tcpconnect {

namespace {
constexpr const char* kTracefs = "/sys/kernel/tracing";
constexpr const char* kDebugfsTracing = "/sys/kernel/debug/tracing";

bool has_events(const std::string& dir) { return access((dir + "/events").c_str(), F_OK) == 0; }
}  // namespace

std::string ensure_tracefs(bool& mounted) {
  mounted = false;
  if (has_events(kTracefs) || has_events(kDebugfsTracing)) return {};
  if (mount("nodev", kTracefs, "tracefs", 0, nullptr) != 0) {
    return std::string("failed to mount tracefs at ") + kTracefs + ": " + std::strerror(errno);
  }
  mounted = true;
  if (!has_events(kTracefs))
    return std::string("tracefs mounted at ") + kTracefs + " has no events/";
  return {};
}

}  // namespace tcpconnect
