#!/bin/sh
# Inside a guest (run-suite.sh starts it): checks what the runtime tests need,
# finds which attach mechanisms the kernel offers and which one tcpconnect
# picks, then runs runtime_tests once per mode. Results go to OUT (the host's
# build/vm/<kernel>/): env.txt, mechanisms.txt, <mode>.xml (gtest), status.
#   guest-suite.sh run BUILD OUT       (settings in OUT/config, see run-suite.sh)
#   guest-suite.sh probe BUILD OUT     (only mechanisms.txt; also used on the host)
set -u
cmd=$1 BUILD=$2 OUT=$3
TC=$BUILD/tcpconnect
MECH=${MECH:-$BUILD/vm/mechanisms}

# mechanisms.txt: "<mechanism> yes|no [(why)]" per line, then "auto <choice>".
probe() {
  : >"$OUT/mechanisms.txt"
  for m in tp_btf raw_tp tracepoint; do
    if timeout 120 "$TC" -v --attach "$m" --duration 1 >/dev/null 2>"$OUT/attach-$m.err"; then
      echo "$m yes" >>"$OUT/mechanisms.txt"
    else
      why=$(grep -m1 "unavailable" "$OUT/attach-$m.err" || tail -n1 "$OUT/attach-$m.err")
      echo "$m no ($why)" >>"$OUT/mechanisms.txt"
    fi
  done
  # kprobe and fentry: tcpconnect does not use them; recorded for the table.
  if [ -x "$MECH" ]; then "$MECH" "$MECH.bpf.o" kprobe fentry >>"$OUT/mechanisms.txt"; fi
  # What the tool picks by itself, and why (its -v lines).
  timeout 120 "$TC" -v --duration 1 >/dev/null 2>"$OUT/attach-auto.err"
  chosen=$(sed -n 's/.*attach: \([a-z_]*\) for sock:inet_sock_set_state.*/\1/p' "$OUT/attach-auto.err")
  echo "auto ${chosen:-none}" >>"$OUT/mechanisms.txt"
  sed 's/^/  /' "$OUT/attach-auto.err"
}

# env.txt: "<requirement> ok|FAIL" for what the runtime tests use; "missing" for one this
# guest is known not to have (ENV_OPTIONAL in OUT/config: the tests that need it are left out).
check() {
  name=$1
  shift
  if "$@" >/dev/null 2>&1; then
    echo "$name ok"
  else
    case " ${ENV_OPTIONAL:-} " in
      *" $name "*) echo "$name missing" ;;
      *) echo "$name FAIL" ;;
    esac
  fi >>"$OUT/env.txt"
}
env_checks() {
  : >"$OUT/env.txt"
  check tmp-writable sh -c 'd=$(mktemp -d) && touch "$d/f" && rm -r "$d"'
  check bpffs sh -c '[ "$(stat -f -c %T /sys/fs/bpf)" = bpf_fs ]'
  check cgroup2 sh -c '[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] && mkdir /sys/fs/cgroup/vmcheck && rmdir /sys/fs/cgroup/vmcheck'
  check netns sh -c 'ip netns add vmcheck && ip netns exec vmcheck ip link set lo up && ip netns del vmcheck'
  check veth sh -c 'ip link add vmc0 type veth peer name vmc1 && ip link del vmc0'
  check loopback-ipv6 sh -c 'ip -6 addr show dev lo | grep -q "inet6 ::1/128"'
  check dnsmasq dnsmasq --version
  check prometheus promtool --version
  check bpftool bpftool prog show
  check tracefs test -e /sys/kernel/tracing/events/sock/inet_sock_set_state
  cat "$OUT/env.txt"
}

case $cmd in
  probe)
    probe
    exit 0
    ;;
  run) ;;
  *)
    echo "usage: guest-suite.sh run|probe BUILD OUT" >&2
    exit 2
    ;;
esac

# MODES, AUTO_FILTER, CORE_FILTER, TRACEPOINT_FILTER, MODE_TIMEOUT, MECH, CI
. "$OUT/config"
# Under CI a missing requirement fails a runtime test instead of skipping it.
if [ -n "${CI:-}" ]; then export CI; else unset CI; fi
echo "=== kernel $(uname -r)"
env_checks
echo "=== mechanisms"
probe
cat "$OUT/mechanisms.txt"
# Debian's kernels default to kernel.perf_event_paranoid=3 (a Debian patch),
# where perf_event_open() needs CAP_SYS_ADMIN: the non-root service of
# packaging/ (CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH) cannot attach the
# syscalls:* tracepoints there. Its test runs as deployed on such a kernel:
# with the level lowered to 2, the upstream default.
paranoid=$(cat /proc/sys/kernel/perf_event_paranoid)
echo "perf_event_paranoid $paranoid" >>"$OUT/env.txt"
[ "$paranoid" -le 2 ] || echo 2 >/proc/sys/kernel/perf_event_paranoid
rc=0
for mode in $MODES; do
  if [ "$mode" = auto ]; then
    filter=$AUTO_FILTER
  else
    filter=$CORE_FILTER
    [ "$mode" != tracepoint ] || filter=$TRACEPOINT_FILTER
    if ! grep -q "^$mode yes" "$OUT/mechanisms.txt"; then
      echo "=== $mode: not available on this kernel, not run"
      echo "$mode n/a" >>"$OUT/status"
      continue
    fi
  fi
  echo "=== $mode: runtime_tests --gtest_filter=$filter"
  start=$(date +%s)
  if [ "$mode" = auto ]; then unset TCPCONNECT_TEST_ATTACH; else export TCPCONNECT_TEST_ATTACH="$mode"; fi
  timeout -k 10 "$MODE_TIMEOUT" "$BUILD/tests/runtime_tests" --gtest_filter="$filter" \
    --gtest_output="xml:$OUT/$mode.xml"
  st=$?
  echo "=== $mode: exit $st after $(($(date +%s) - start)) s"
  echo "$mode $st $(($(date +%s) - start))" >>"$OUT/status"
  [ $st -eq 0 ] || rc=1
done
grep -q " FAIL$" "$OUT/env.txt" && rc=1
exit $rc
