#!/usr/bin/env bash
# Exec-heavy load with and without the tracer's exec hook: processes started per second
# (bench/execload: posix_spawn of /bin/true + waitpid) untraced, under plain `tcpconnect`
# (no exec hook), under `tcpconnect -j` and under `tcpconnect --cmdline --parent` (one
# record per exec through the ring buffer into the command-line cache). See bench/README.md.
# Run as root after building:
#   cmake --build build -j2 --target tcpconnect execload && sudo bench/exec.sh
#
# Environment (all optional):
#   BUILD=dir          build directory (default: <repo>/build)
#   TRACER=path        tracer binary (default: $BUILD/tcpconnect)
#   EXECLOAD=path      load generator (default: $BUILD/bench/execload)
#   ROUNDS=5           interleaved rounds; each runs every mode once
#   DURATION=5         seconds of load per run
#   THREADS=2          execload threads
#   ARGV_BYTES=64      size of each spawned command line (execload --argv-bytes)
#   WARMUP=1           seconds of unrecorded untraced load first (0 = none)
#   KEEP=0             1 = keep the raw files (tracer output, results.tsv) and print where
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
BUILD=${BUILD:-$repo/build}
TRACER=${TRACER:-$BUILD/tcpconnect}
EXECLOAD=${EXECLOAD:-$BUILD/bench/execload}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
THREADS=${THREADS:-2}
ARGV_BYTES=${ARGV_BYTES:-64}
WARMUP=${WARMUP:-1}
KEEP=${KEEP:-0}
READY_TIMEOUT=30 # seconds for the tracer's header / start record
STOP_TIMEOUT=30  # seconds for the tracer to exit after SIGINT
CHECK_PORT=9     # nothing listens there: the connect is refused, but it is traced

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_whole_numbers ROUNDS DURATION THREADS ARGV_BYTES WARMUP
((ROUNDS >= 1)) || die "ROUNDS must be >= 1"
((DURATION >= 1)) || die "DURATION must be >= 1"
((THREADS >= 1)) || die "THREADS must be >= 1"

[[ $EUID -eq 0 ]] || die "must run as root (the tracer loads BPF programs)"
[[ -x $TRACER ]] || die "tracer not found or not executable: $TRACER (build it, or set BUILD=/TRACER=)"
[[ -x $EXECLOAD ]] || die "execload not found or not executable: $EXECLOAD (build target 'execload')"

modes=(untraced default json cmdline)
tmp=$(mktemp -d /tmp/tcpconnect-exec.XXXXXX)
results=$tmp/results.tsv
TRACER_PID=

cleanup() {
  local rc=$?
  kill_job "$TRACER_PID"
  if [[ $KEEP == 1 ]]; then
    log "raw files kept in $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "exec.sh: interrupted"; exit 130' INT TERM

# Runs execload; sets EL_RATE, EL_EXECS, EL_ERRORS.
run_execload() {
  local line
  line=$("$EXECLOAD" --threads "$THREADS" --duration "$1" --argv-bytes "$ARGV_BYTES" | tail -n 1) ||
    die "execload failed: $line"
  [[ $line =~ execs=([0-9]+)\ errors=([0-9]+)\ rate=([0-9.]+) ]] ||
    die "unexpected execload output: $line"
  EL_EXECS=${BASH_REMATCH[1]}
  EL_ERRORS=${BASH_REMATCH[2]}
  EL_RATE=${BASH_REMATCH[3]}
}

# CPU time (user + system) of a process in clock ticks, from /proc/PID/stat.
cpu_ticks() {
  local stat
  stat=$(<"/proc/$1/stat") || return 1
  stat=${stat##*) } # fields after "pid (comm)": state is field 3, utime 14, stime 15
  local -a f
  read -ra f <<<"$stat"
  echo $((f[11] + f[12]))
}

# record ROUND MODE RATE EXECS ERRORS LOST_EXECS CHECK CPU_MS
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"
}

run_untraced() {
  local round=$1
  run_execload "$DURATION"
  record "$round" untraced "$EL_RATE" "$EL_EXECS" "$EL_ERRORS" - - -
  log "round $round/$ROUNDS untraced rate=$EL_RATE/s execs=$EL_EXECS errors=$EL_ERRORS"
}

TRACER_FAILED=0
# run_traced ROUND default|json|cmdline
run_traced() {
  local round=$1 mode=$2
  local out=$tmp/$mode.$round.out err=$tmp/$mode.$round.err
  # ready: the pattern on stdout that shows the tracer is attached (the text header, or
  # the JSON start record).
  local -a cmd
  local ready
  case $mode in
    default) cmd=("$TRACER") ready='^PID' ;;
    json) cmd=("$TRACER" -j) ready='^\{"type":"start"' ;;
    cmdline) cmd=("$TRACER" --cmdline --parent) ready='^PID' ;;
    *) die "internal error: unknown mode $mode" ;;
  esac
  : >"$out"
  : >"$err"
  # Background jobs of a script start with SIGINT ignored; env puts the default back.
  env --default-signal=INT "${cmd[@]}" >"$out" 2>"$err" &
  TRACER_PID=$!
  local deadline=$(($(now_us) + READY_TIMEOUT * 1000000))
  until grep -Eq "$ready" "$out"; do
    if exited "$TRACER_PID"; then
      log "--- tracer stderr:"
      head -n 20 "$err" >&2 || true
      die "tracer ($mode mode) exited before it was ready"
    fi
    (($(now_us) < deadline)) || die "tracer ($mode mode) not ready after ${READY_TIMEOUT}s"
    sleep 0.005
  done
  local cpu0
  cpu0=$(cpu_ticks "$TRACER_PID") || die "tracer ($mode mode) exited before the load"

  run_execload "$DURATION"
  exited "$TRACER_PID" && die "tracer ($mode mode) exited during the load: $(head -n 5 "$err")"
  local cpu1
  cpu1=$(cpu_ticks "$TRACER_PID") || die "tracer ($mode mode) exited during the load"
  local cpu_ms=$(((cpu1 - cpu0) * 1000 / $(getconf CLK_TCK)))

  # Is the cache still right after the load? A process started now connects to
  # 127.0.0.1:$CHECK_PORT; its line must carry its command line, which holds a marker.
  # (The default mode has no command lines: nothing to check.)
  local check=-
  if [[ $mode != default ]]; then
    local marker=execbench-check-$$-$round
    bash -c "exec 3<>/dev/tcp/127.0.0.1/$CHECK_PORT; : $marker" 2>/dev/null || true
    check=miss
    deadline=$(($(now_us) + 2000000))
    while (($(now_us) < deadline)); do
      if grep -qF -- "$marker" "$out"; then
        check=ok
        break
      fi
      sleep 0.01
    done
  fi

  stop_tracer "tracer ($mode mode)"

  # Command lines lost: text modes print "WARNING: N command lines and M DNS answers
  # lost ..." at exit (only when something was lost); JSON puts lost_execs in its end record.
  local lost
  if [[ $mode == json ]]; then
    lost=$(sed -n 's/^{"type":"end".*"lost_execs":\([0-9]*\).*/\1/p' "$out" | tail -n 1)
    [[ -n $lost ]] || {
      log "warning: no end record with lost_execs in the JSON output (round $round)"
      lost=NA
    }
  else
    lost=$(awk '$1 == "WARNING:" && $2 ~ /^[0-9]+$/ && $3 == "command" && $4 == "lines" {n = $2}
                END {print n + 0}' "$err")
  fi
  grep '^WARNING' "$err" | sed "s/^/round $round $mode: /" >>"$tmp/warnings" || true
  record "$round" "$mode" "$EL_RATE" "$EL_EXECS" "$EL_ERRORS" "$lost" "$check" "$cpu_ms"
  log "round $round/$ROUNDS $(printf '%-8s' "$mode") rate=$EL_RATE/s execs=$EL_EXECS" \
    "errors=$EL_ERRORS lost_execs=$lost cmdline_check=$check tracer_cpu=${cpu_ms}ms"
}

log "tcpconnect exec bench: tracer=$TRACER execload=$EXECLOAD"
log "rounds=$ROUNDS duration=${DURATION}s threads=$THREADS argv_bytes=$ARGV_BYTES cpus=$(nproc)" \
  "kernel=$(uname -r)"
if ((WARMUP > 0)); then
  run_execload "$WARMUP"
  log "warm-up: rate=$EL_RATE/s"
fi

: >"$results"
: >"$tmp/warnings"
nmodes=${#modes[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  # Rotate the order each round so no mode always runs first (or right after another).
  for ((k = 0; k < nmodes; k++)); do
    m=${modes[$(((r - 1 + k) % nmodes))]}
    case $m in
      untraced) run_untraced "$r" ;;
      *) run_traced "$r" "$m" ;;
    esac
  done
done

awk -F'\t' -v rounds="$ROUNDS" -v dur="$DURATION" -v threads="$THREADS" -v argvb="$ARGV_BYTES" \
  -v modes="${modes[*]}" '
function median(list,    a, n, i, j, t) {
  n = split(list, a, " ")
  if (n == 0) return "NA"
  for (i = 2; i <= n; i++) {
    t = a[i] + 0
    for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
    a[j + 1] = t
  }
  return (n % 2) ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
function num(v) { return v ~ /^[0-9]+(\.[0-9]+)?$/ }
function ratio(a, b) { return (a == "NA" || b == "NA" || b + 0 == 0) ? "NA" : sprintf("%.3f", a / b) }
function label(m) { return m == "default" ? "tcpconnect" : m == "json" ? "-j" : m == "cmdline" ? "--cmdline --parent" : m }
{
  L[$2] = L[$2] " " $3; X[$2] += $4; E[$2] += $5
  if (num($6)) LOST[$2] += $6; else if ($6 == "NA") LOSTNA[$2] = 1
  if ($7 != "-") { CHK[$2, $7]++; HASCHK[$2] = 1 }
  if (num($8)) CPU[$2] = CPU[$2] " " $8
  R[$1, $2] = $3
}
END {
  nm = split(modes, M, " ")
  u = median(L["untraced"])
  printf "\nexec load under tcpconnect: %d rounds x %ds, execload %d threads (posix_spawn /bin/true + waitpid, argv ~%d bytes) (execs/s, tracer_cpu_ms: medians over rounds; counts: sums)\n\n", rounds, dur, threads, argvb
  printf "%-20s %9s %8s %10s %7s %10s %14s %12s\n", "mode", "execs/s", "vs_untr", "execs", "errors", "lost_execs", "cmdline_check", "tracer_cpu_ms"
  for (i = 1; i <= nm; i++) {
    m = M[i]
    rate = median(L[m])
    if (m == "untraced") {
      printf "%-20s %9.0f %8s %10d %7d %10s %14s %12s\n", m, rate, "1.000", X[m], E[m], "-", "-", "-"
      continue
    }
    chk = HASCHK[m] ? sprintf("%d/%d ok", CHK[m, "ok"], rounds) : "-"
    printf "%-20s %9.0f %8s %10d %7d %10s %14s %12s\n", label(m), rate, ratio(rate, u), X[m], E[m],
      LOSTNA[m] ? "NA" : LOST[m] + 0, chk, median(CPU[m])
  }
  printf "\nper round (execs/s; run order rotates each round):\n%-6s", "round"
  for (i = 1; i <= nm; i++) printf " %20s", label(M[i])
  printf "\n"
  for (r = 1; r <= rounds; r++) {
    printf "%-6d", r
    for (i = 1; i <= nm; i++) printf " %20.0f", R[r, M[i]]
    printf "\n"
  }
}' "$results"

if [[ -s $tmp/warnings ]]; then
  printf '\ntracer warnings:\n'
  cat "$tmp/warnings"
fi
((TRACER_FAILED == 0)) || die "the tracer exited non-zero after SIGINT in at least one round"
