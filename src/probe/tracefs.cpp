#include "probe/tracefs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace tcpconnect {

namespace {
constexpr const char* kTracefs = "/sys/kernel/tracing";
constexpr const char* kDebugfsTracing = "/sys/kernel/debug/tracing";

// 0 when dir/events is there, else why it cannot be seen (errno).
int events_error(const std::string& dir) {
  // AT_EACCESS: effective IDs and capabilities (CAP_DAC_READ_SEARCH) count.
  return faccessat(AT_FDCWD, (dir + "/events").c_str(), F_OK, AT_EACCESS) == 0 ? 0 : errno;
}
}  // namespace

TracefsMount::~TracefsMount() {
  // MNT_DETACH: a second tracer that found this mount may still be reading it.
  if (mounted_) umount2(kTracefs, MNT_DETACH);
}

std::string TracefsMount::ensure() {
  const int err = events_error(kTracefs);
  if (err == 0 || events_error(kDebugfsTracing) == 0) return {};
  // Mounted but closed to this user (tracefs is root-only): mounting again
  // would fail with a misleading EPERM.
  if (err == EACCES) {
    return std::string(kTracefs) + " is not accessible to this user: " + std::strerror(err);
  }
  if (mount("nodev", kTracefs, "tracefs", 0, nullptr) != 0) {
    return std::string("failed to mount tracefs at ") + kTracefs + ": " + std::strerror(errno);
  }
  mounted_ = true;
  if (events_error(kTracefs) != 0)
    return std::string("tracefs mounted at ") + kTracefs + " has no events/";
  return {};
}

}  // namespace tcpconnect
