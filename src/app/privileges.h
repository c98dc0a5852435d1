// Least privilege after attach: once the BPF programs are loaded and
// attached, the session needs almost none of root's capabilities.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace tcpconnect {

struct KeptCapability {
  int cap;          // CAP_* number
  std::string why;  // shown under --verbose
};

// Whether bpf() calls on descriptors we already hold (map lookups, program
// info) still need CAP_BPF: kernels before 6.5 check it on every bpf()
// command while unprivileged BPF is disabled. Found out by running `op`
// (returns 0 or -errno) with CAP_BPF and CAP_SYS_ADMIN out of the effective
// set; the effective set is restored before returning.
bool bpf_calls_need_capability(const std::function<int()>& op);

// Keeps only `keep` in the permitted and effective sets (those of them the process holds: the
// others are removed from `keep`), clears the
// inheritable and ambient sets, drops the rest from the bounding set when
// allowed to (CAP_SETPCAP) and sets no_new_privs. Applies to the calling
// thread: call it before starting any other thread. False with a reason in
// `err` on failure.
bool drop_capabilities(std::vector<KeptCapability>& keep, std::string& err);

// "cap_bpf" etc.
std::string capability_name(int cap);

}  // namespace tcpconnect
