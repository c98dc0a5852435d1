#!/usr/bin/env bash
# run-suite.sh KERNEL [GTEST_FILTER]
# Runs the host-built runtime suite ($BUILD/tests/runtime_tests, default
# build/) inside Debian kernel KERNEL (6.1 or 6.12) under QEMU: the suite (or
# GTEST_FILTER) with the tool's own attach choice, then the core tests with
# each mechanism forced (TCPCONNECT_TEST_ATTACH) where the kernel has it.
# Installs what the guest needs on first use. Output: the guest console in
# build/vm/KERNEL.log (terminal: all but the per-test RUN/OK lines), results
# in build/vm/KERNEL/ (env.txt, mechanisms.txt, <mode>.xml, result.json).
# Exit 0 only if every mode ran tests and none failed.
#
# Environment: VM_MODES (default "auto tp_btf raw_tp tracepoint"),
# VM_CORE_FILTER (tests run with each forced mode), VM_TIMEOUT (whole guest,
# s), VM_MEM, VM_SMP, BUILD, VM_OUT, VM_CACHE (see lib.sh).
set -euo pipefail
OWN_VM_OUT=${VM_OUT:-}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 KERNEL [GTEST_FILTER]" >&2; exit 2; }
NAME=$1

# Left out in guests by default (the host runs them all under ctest). Under
# software emulation each tracer start costs about a second and bursts run
# 10-30x slower. What stays takes about 3.5 minutes per kernel.
# What stays is everything that loads BPF and depends on the kernel; what goes:
excluded=(
  # no BPF program is loaded, or the logic under test is in user space only
  # (argument checks, DNS cache ageing and sizing, HTTP clients, prometheus, the metrics HTTP
  # server facing hostile clients)
  'BadInput.*' 'DnsCli.*' 'Containers.BadArguments' 'Metrics.QuietNeedsMetrics'
  'Metrics.BadMetricsAddress' 'Metrics.PrometheusScrapes' '*FaultsNoTracefs.SyscallOptionsFailCleanly*'
  'MetricsAttack.*'
  'Faults.MetricsKeepCountingAfterClientsHangUpMidResponse' 'Faults.ClosedStdoutMidBurstExitsQuietly'
  'Dns.MaxAgeForgetsOldAnswers' 'Dns.CacheSizeBoundsTheAnswersKept' 'Dns.TextModeShowsTheAgeOfAnOldAnswer'
  'Dns.JsonHasTheAgeOfAnOldAnswer' 'Dns.OwnProcessAnswerIsPreferred' 'Dns.LoopbackWithoutAnswerIsLocalhost'
  'Dns.AnswerForLoopbackBeatsLocalhost' 'Dns.NoAnswerMeansNoQuery' 'Dns.TextModeEndsWithTheQueryColumn'
  'Dns.SameAddressNamedPerNamespace'
  # tests of the test fixtures (namespaces, dnsmasq), not of the tool
  'NetNsFixture.*' 'DnsFixture.*'
  # minutes under emulation (10,000 execs: 574 s on 6.12 alone; stalled
  # readers, 5,000-connect bursts per signal); the kernel paths they load are
  # covered by the Loss and Faults tests that stay
  'Faults.ExecStormKeepsTheCommandLineCacheBounded' 'Loss.DnsRecords' 'Loss.ExecRecords'
  'Loss.SlowConsumer*' 'Loss.StopSignalWhileStdoutIsStalled' 'Loss.MetricsShowTheExactLoss'
  '*FaultsSignal.StopsCleanlyMidBurst/TERM' '*FaultsSignal.StopsCleanlyMidBurst/HUP'
  # an exec flood of 1,500 execs: about 470 in 20 s on 6.1 under emulation; the exec program
  # and the enrichment ring it fills stay covered by Process.* and the DNS flood test
  'KernelAttack.ExecFloodLosesNoConnectRecord'
  # --top's screen is drawn by user space (ncurses in tmux); what it reads from the kernel is
  # the count table of -c --interval and the latencies of --hist, whose tests stay
  'Views.TopDrawsTheBusiestConnectorsAndQuitsCleanly'
  # compares the latency two tracers report for one handshake: in emulated 6.1 guests they were
  # apart by 6 ms and by 304 ms in 2 of 4 CI runs (tcpconnlat the lower both times), which the
  # test's 5 ms tolerance does not allow and which is not explained yet; the build machine runs
  # it (ctest, sanitizers), and what it reads from the kernel is the outcome record that
  # Lifecycle.* and Failures.* check in every guest
  'Tools.TcpconnlatShowsHandshakeLatency'
  # podman containers and containerd's pods, asked through their runtime's API: the guests
  # have no container runtime; the kernel side these tests use (cgroup ids, the
  # excluded-cgroups table) is the one of the Containers tests that stay
  'ContainerNames.*' 'CriNames.*'
)
EXCLUDED=${VM_EXCLUDED-$(IFS=:; echo "${excluded[*]}")}
# Run again with each mechanism forced: the tests whose BPF side differs per
# mechanism (the state, retransmit, destroy and exec programs, the backup
# program for skipped runs): connects of every kind, outcomes, lifetimes,
# accepts, counts, exec records, loss accounting, close attribution.
core=(
  'Runtime.Ipv4ConnectToListener' 'Runtime.Ipv6ConnectToLoopback' 'Runtime.RefusedPortIsTraced'
  'Runtime.LportIsTheGetsocknamePort' 'Runtime.CountTableHasExactlyN' 'Runtime.IoUringConnectIsTraced'
  'Runtime.FastOpenSendtoIsTraced' 'Runtime.JsonCarriesTheSameValuesAsText'
  'Runtime.NothingOfOursRemainsAfterExit' 'Lifecycle.*' 'Process.ShortLivedProcessHasItsCommandLineAndParent'
  'Failures.ClosesAreAttributedToTheOwnerNotTheCurrentTask' 'Loss.CloseRecords'
)
CORE_FILTER=${VM_CORE_FILTER:-$(IFS=:; echo "${core[*]}")}

# What each kernel runs, within the CI budget (DEVELOPERS.md: .ci/run under 60 minutes): the
# tests of the auto run (the tool's own choice of mechanism), then the mechanisms forced. Auto
# picks tp_btf on every kernel here, and a forced tp_btf runs the same programs as auto: the
# forced runs are raw_tp and the classic tracepoint, each where the kernel has it.
#   kernel     auto run                              forced               guest time in CI
#   6.1        the whole guest set (above)           raw_tp, tracepoint   372 s
#   6.12       the whole guest set                   tracepoint           397 s
#   6.1-rt     core + Runtime.* Failures.* Count.*   raw_tp, tracepoint   319 s
#   6.1-cloud  core                                  raw_tp, tracepoint   129 s
#   arm64      core                                  tracepoint           111 s
# (times from the run before MetricsAttack.* left the guest set and raw_tp left 6.12.)
# The RT and cloud kernels are Debian's 6.1 with another configuration, from the same source
# as 6.1, which runs every test: what they change is how the kernel runs our programs.
# PREEMPT_RT runs softirqs in threads and makes BPF programs preemptible, so it gets the core set
# in every mode (close attribution, lifetimes, loss accounting) and the tests of failures
# (timeouts and resets from timers), of every connect path and of the in-kernel counts. The
# cloud kernel is trimmed: the probe says which mechanisms it has, and the core set runs with
# each. Emulated arm64 runs about three times slower than an x86 guest: the core set, which
# is what the issue asks, and the classic tracepoint, whose record layout is read through
# CO-RE (raw_tp reads the same arguments as tp_btf). On 6.12 raw_tp is not forced either: its
# programs are the ones 6.1's guest and the build machine's 6.18 (Runtime.EveryForcedAttach-
# Mechanism) force on either side of it, while the classic tracepoint's records changed in
# 6.10 (tcp_retransmit_skb), so 6.12 keeps that one.
case $NAME in
  6.1-rt)
    AUTO_SET="core + Runtime.*, Failures.*, Count.*"
    auto_filter="$CORE_FILTER:Runtime.*:Failures.*:Count.*"
    ;;
  6.1-cloud | arm64)
    AUTO_SET="core"
    auto_filter=$CORE_FILTER
    ;;
  *)
    AUTO_SET="whole guest set"
    auto_filter="*${EXCLUDED:+-$EXCLUDED}"
    ;;
esac
FORCED="raw_tp tracepoint"
[[ $NAME != arm64 && $NAME != 6.12 ]] || FORCED="tracepoint"
if [[ $# -ge 2 ]]; then
  AUTO_SET="filter $2"
  auto_filter=$2
fi
AUTO_FILTER=$auto_filter
# The classic tracepoint has no backup for the runs the kernel skips while
# another BPF program runs on the CPU; emulation makes them frequent (51 of
# 2,000 closes on 6.12). Kernels from 6.7 count them per program and the tool
# reports them, so the tests that count every close accept a reported skip
# there. 6.1 counts nothing: those two tests are left out of that mode there.
TRACEPOINT_FILTER=$CORE_FILTER
[[ $NAME != 6.1 && $NAME != 6.1-* && $NAME != arm64 ]] ||
  TRACEPOINT_FILTER+="-Failures.ClosesAreAttributedToTheOwnerNotTheCurrentTask:Loss.CloseRecords"
TRACEPOINT_FILTER=${VM_TRACEPOINT_FILTER:-$TRACEPOINT_FILTER}
MODES=${VM_MODES:-auto $FORCED}

# arm64 (an arm64 guest, see lib.sh): BUILD is the cross build (scripts/cross-arm64,
# default build-arm64/). Its guest has no prometheus (promtool): that check is recorded but
# does not fail the run; the tests that scrape are excluded above.
ARCH=$(vm_arch "$NAME")
if [[ $ARCH == arm64 ]]; then
  VM_BUILD=${BUILD:-$VM_ROOT/build-arm64}
  VM_OUT=${OWN_VM_OUT:-$VM_BUILD/vm}
  export BUILD=$VM_BUILD VM_OUT  # for run-in-guest.sh
fi
[[ -x $VM_BUILD/tests/runtime_tests && -x $VM_BUILD/tcpconnect ]] ||
  vm_die "no runtime_tests/tcpconnect in $VM_BUILD: build first (scripts/dev build, scripts/cross-arm64 build)"
if [[ $ARCH == arm64 ]]; then
  vm_install_host_packages "${VM_HOST_PACKAGES_ARM64[@]}"
  BPF_ARCH=arm64 CC=aarch64-linux-gnu-gcc ENV_OPTIONAL=prometheus
else
  vm_install_host_packages
  BPF_ARCH=x86 CC=cc ENV_OPTIONAL=
fi
mkdir -p "$VM_OUT"

# The kprobe/fentry probe (mechanisms.c), built here: it is not part of the tool.
MECH=$VM_OUT/mechanisms
[[ $ARCH == amd64 ]] || MECH=$VM_OUT/mechanisms-$ARCH
if [[ ! -x $MECH || $VM_HERE/mechanisms.c -nt $MECH ||
  $VM_HERE/mechanisms.bpf.c -nt $MECH.bpf.o ]]; then
  clang -O2 -g -target bpf -I"$VM_ROOT/bpf/$BPF_ARCH" -c "$VM_HERE/mechanisms.bpf.c" \
    -o "$MECH.bpf.o"
  $CC -O2 -Wall "$VM_HERE/mechanisms.c" -lbpf -o "$MECH"
fi

RES=$VM_OUT/$NAME
rm -rf "$RES"
mkdir -p "$RES"
cat >"$RES/config" <<CFG
MODES='$MODES'
AUTO_FILTER='$AUTO_FILTER'
CORE_FILTER='$CORE_FILTER'
TRACEPOINT_FILTER='$TRACEPOINT_FILTER'
MODE_TIMEOUT=${VM_MODE_TIMEOUT:-900}
MECH='$MECH'
ENV_OPTIONAL='$ENV_OPTIONAL'
CI='${CI:-}'
CFG
# For the report: the guest's architecture and what its auto run is.
printf '%s\n' "$ARCH" "$AUTO_SET" >"$RES/about"

echo "vm: $NAME: booting (modes: $MODES)" >&2
start=$EPOCHREALTIME
set +e
"$VM_HERE/run-in-guest.sh" -m "${VM_MEM:-3G}" -s "${VM_SMP:-2}" -t "${VM_TIMEOUT:-1200}" \
  -l "$VM_OUT/$NAME.log" -S "$RES" "$NAME" -- \
  "/bin/sh $VM_HERE/guest-suite.sh run $VM_BUILD /mnt/share" |
  grep --line-buffered -vE '^\[ RUN      \]|^\[       OK \]'
rc=${PIPESTATUS[0]}
set -e
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
KVER=$(basename "$(readlink -f "$VM_CACHE/$NAME")")
python3 "$VM_HERE/report.py" kernel "$RES" "$NAME" "$KVER" "$secs" "$rc"
