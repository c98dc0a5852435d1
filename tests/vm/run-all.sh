#!/usr/bin/env bash
# run-all.sh: the runtime suite on each Debian kernel under QEMU (run-suite.sh),
# then the kernel support table (also in build/vm/summary.md). Exits non-zero
# if any guest run failed. VM_TESTS=0 skips everything (quick local runs; CI
# runs it). VM_KERNELS picks kernels (default "6.1 6.12 6.1-rt 6.1-cloud arm64";
# what each runs is in run-suite.sh).
# arm64 runs the cross build in VM_BUILD_ARM64 (default build-arm64/, made by
# scripts/cross-arm64 build), after the x86 kernels.
# VM_JOBS guests run at once (default 1): each guest's QEMU runs its vCPUs on
# one host thread (run-in-guest.sh), so a guest keeps one CPU busy. Two at a
# time on the 2-CPU build machine slowed the guests enough to fail the tests
# that keep a 200 ms cadence (Count.IntervalTablesCountEachInterval), so CI
# runs one. A guest's console goes to build/vm/<kernel>.suite.log, and its last
# lines to the terminal when it ends.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [[ ${VM_TESTS:-1} == 0 ]]; then
  echo "vm: guest runs skipped (VM_TESTS=0)"
  exit 0
fi
mkdir -p "$VM_OUT"
KERNELS=${VM_KERNELS:-6.1 6.12 6.1-rt 6.1-cloud arm64}
# x86 guests first, then arm64 (the slowest to emulate).
ordered=()
for k in $KERNELS; do [[ $(vm_arch "$k") == arm64 ]] || ordered+=("$k"); done
for k in $KERNELS; do [[ $(vm_arch "$k") != arm64 ]] || ordered+=("$k"); done
# Packages and kernels first, one at a time (apt and dpkg take locks).
arm64_packages=()
[[ " ${ordered[*]} " != *" arm64 "* ]] || arm64_packages=("${VM_HOST_PACKAGES_ARM64[@]}")
vm_install_host_packages "${arm64_packages[@]}"
for k in "${ordered[@]}"; do vm_fetch_kernel "$k"; done
fail=0
dirs=()
declare -A running=()
jobs_max=${VM_JOBS:-1}
# Waits for one guest run to end; says how it went.
reap() {
  local pid rc=0 k
  wait -n -p pid "${!running[@]}" || rc=$?
  k=${running[$pid]}
  unset "running[$pid]"
  echo "=== vm: $k: exit $rc (console: $VM_OUT/$k.suite.log)"
  tail -n 25 "$VM_OUT/$k.suite.log"
  ((rc == 0)) || fail=1
}
for k in "${ordered[@]}"; do
  while ((${#running[@]} >= jobs_max)); do reap; done
  dirs+=("$VM_OUT/$k")
  build=$VM_BUILD
  [[ $(vm_arch "$k") != arm64 ]] || build=${VM_BUILD_ARM64:-$VM_ROOT/build-arm64}
  echo "=== vm: $k: started"
  BUILD=$build VM_OUT=$VM_OUT "$VM_HERE/run-suite.sh" "$k" >"$VM_OUT/$k.suite.log" 2>&1 &
  running[$!]=$k
done
while ((${#running[@]})); do reap; done
# This host's row: the same probe the guests run (the suite itself runs under ctest).
mkdir -p "$VM_OUT/host"
MECH=$VM_OUT/mechanisms "$VM_HERE/guest-suite.sh" probe "$VM_BUILD" "$VM_OUT/host" >/dev/null 2>&1 || true
echo "vm: kernel support ($VM_OUT/summary.md)"
python3 "$VM_HERE/report.py" summary "$VM_OUT/summary.md" "$VM_OUT/host/mechanisms.txt" "${dirs[@]}" || fail=1
exit $fail
