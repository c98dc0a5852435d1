#!/usr/bin/env bash
# run-all.sh: the runtime suite on each Debian kernel under QEMU (run-suite.sh),
# then the kernel support table (also in build/vm/summary.md). Exits non-zero
# if any guest run failed. VM_TESTS=0 skips everything (quick local runs; CI
# runs it). VM_KERNELS picks kernels (default "6.1 6.12").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [[ ${VM_TESTS:-1} == 0 ]]; then
  echo "vm: guest runs skipped (VM_TESTS=0)"
  exit 0
fi
mkdir -p "$VM_OUT"
fail=0
dirs=()
for k in ${VM_KERNELS:-6.1 6.12}; do
  "$VM_HERE/run-suite.sh" "$k" || fail=1
  dirs+=("$VM_OUT/$k")
done
# This host's row: the same probe the guests run (the suite itself runs under ctest).
mkdir -p "$VM_OUT/host"
MECH=$VM_OUT/mechanisms "$VM_HERE/guest-suite.sh" probe "$VM_BUILD" "$VM_OUT/host" >/dev/null 2>&1 || true
echo "vm: kernel support ($VM_OUT/summary.md)"
python3 "$VM_HERE/report.py" summary "$VM_OUT/summary.md" "$VM_OUT/host/mechanisms.txt" "${dirs[@]}" || fail=1
exit $fail
