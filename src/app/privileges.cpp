#include "app/privileges.h"

#include <cap-ng.h>
#include <linux/capability.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace tcpconnect {

namespace {

// Sets or clears `caps` in the effective set only (permitted is untouched, so
// this can be undone).
bool set_effective(std::initializer_list<int> caps, bool on) {
  if (capng_get_caps_process() != 0) return false;
  for (int c : caps) {
    if (on && !capng_have_capability(CAPNG_PERMITTED, static_cast<unsigned>(c))) continue;
    capng_update(on ? CAPNG_ADD : CAPNG_DROP, CAPNG_EFFECTIVE, static_cast<unsigned>(c));
  }
  return capng_apply(CAPNG_SELECT_CAPS) == 0;
}

}  // namespace

bool bpf_calls_need_capability(const std::function<int()>& op) {
  if (!set_effective({CAP_BPF, CAP_SYS_ADMIN}, false)) return true;  // cannot tell: keep it
  const int r = op();
  set_effective({CAP_BPF, CAP_SYS_ADMIN}, true);
  return r == -EPERM;
}

bool drop_capabilities(std::vector<KeptCapability>& keep, std::string& err) {
  if (capng_get_caps_process() != 0) {
    err = "cannot read this process's capabilities";
    return false;
  }
  // Only what the process holds can be kept (a container given CAP_BPF and CAP_PERFMON alone
  // has no CAP_DAC_READ_SEARCH): asking for more would make the whole change fail.
  std::erase_if(keep, [](const KeptCapability& k) {
    return !capng_have_capability(CAPNG_PERMITTED, static_cast<unsigned>(k.cap));
  });
  // The bounding set can only shrink with CAP_SETPCAP (root has it; a
  // service given a few capabilities does not, and its bounding set is
  // already what its manager allowed).
  const bool bounds = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
  capng_clear(bounds ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS);
  for (const auto& k : keep) {
    const auto c = static_cast<unsigned>(k.cap);
    capng_update(CAPNG_ADD, static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED), c);
    if (bounds) capng_update(CAPNG_ADD, CAPNG_BOUNDING_SET, c);
  }
  if (int r = capng_apply(bounds ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS); r != 0) {
    err = "cannot drop capabilities (capng_apply " + std::to_string(r) + ")";
    return false;
  }
  // Ambient capabilities would survive an exec; none are wanted.
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    err = std::string("cannot clear ambient capabilities: ") + std::strerror(errno);
    return false;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    err = std::string("cannot set no_new_privs: ") + std::strerror(errno);
    return false;
  }
  return true;
}

std::string capability_name(int cap) {
  const char* name = capng_capability_to_name(static_cast<unsigned>(cap));
  if (!name) return "cap_" + std::to_string(cap);
  std::string s = "cap_";
  s += name;
  return s;
}

}  // namespace tcpconnect
