#!/usr/bin/env bash
# Overhead benchmark for tcpconnect: loopback connect storm, untraced vs traced.
# See bench/README.md. Run as root after building:
#   cmake -S . -B build && make -C build -j2 tcpconnect loadgen latency && sudo bench/run.sh
#
# Environment (all optional):
#   BUILD=dir          build directory (default: <repo>/build)
#   TRACER=path        tracer binary (default: $BUILD/tcpconnect)
#   LOADGEN=path       load generator (default: $BUILD/bench/loadgen)
#   ROUNDS=5           interleaved rounds of (untraced, traced output, traced -c)
#   DURATION=5         seconds of load per run
#   THREADS=2          loadgen client threads
#   WARMUP=1           seconds of unrecorded untraced load first (0 = none)
#   READY_TIMEOUT=30   seconds to wait for the tracer to become ready
#   STOP_TIMEOUT=30    seconds to wait for the tracer to exit after SIGINT
#   KEEP=0             1 = keep the raw files (tracer output, results.tsv) and print where
#   LATENCY=1          0 = skip the delivery-latency measurement after the throughput rounds
#   LATENCY_BIN=path   latency tool (default: $BUILD/bench/latency)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
BUILD=${BUILD:-$repo/build}
TRACER=${TRACER:-$BUILD/tcpconnect}
LOADGEN=${LOADGEN:-$BUILD/bench/loadgen}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-1}
READY_TIMEOUT=${READY_TIMEOUT:-30}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}
KEEP=${KEEP:-0}
LATENCY=${LATENCY:-1}
LATENCY_BIN=${LATENCY_BIN:-$BUILD/bench/latency}

die() {
  echo "run.sh: $*" >&2
  exit 1
}
log() { echo "$*" >&2; }

for v in ROUNDS DURATION THREADS WARMUP READY_TIMEOUT STOP_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((ROUNDS >= 1)) || die "ROUNDS must be >= 1"
((DURATION >= 1)) || die "DURATION must be >= 1"
((THREADS >= 1)) || die "THREADS must be >= 1"
((READY_TIMEOUT >= 1 && STOP_TIMEOUT >= 1)) || die "timeouts must be >= 1"
[[ $LATENCY == 0 || $LATENCY == 1 ]] || die "LATENCY must be 0 or 1, got '$LATENCY'"
[[ $EUID -eq 0 ]] || die "must run as root (the tracer loads BPF programs)"
[[ -x $TRACER ]] || die "tracer not found or not executable: $TRACER (build it, or set BUILD=/TRACER=)"
[[ -x $LOADGEN ]] || die "loadgen not found or not executable: $LOADGEN (build target 'loadgen')"
[[ $LATENCY == 0 || -x $LATENCY_BIN ]] ||
  die "latency tool not found or not executable: $LATENCY_BIN (build target 'latency', or LATENCY=0)"

tmp=$(mktemp -d /tmp/tcpconnect-bench.XXXXXX)
results=$tmp/results.tsv
TRACER_PID=

cleanup() {
  local rc=$?
  if [[ -n $TRACER_PID ]] && kill -0 "$TRACER_PID" 2>/dev/null; then
    kill -KILL "$TRACER_PID" 2>/dev/null || true
    wait "$TRACER_PID" 2>/dev/null || true
  fi
  if [[ $KEEP == 1 ]]; then
    log "raw files kept in $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "run.sh: interrupted"; exit 130' INT TERM

# Microseconds since the epoch, without forking (bash 5).
now_us() { echo "${EPOCHREALTIME/./}"; }

# True once the process has exited (gone, or a zombie not yet reaped).
exited() {
  local st
  st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null || true)
  [[ -z $st || $st == Z ]]
}

# Runs loadgen; sets LG_RATE, LG_CONNECTS, LG_ERRORS.
run_loadgen() {
  local line
  line=$("$LOADGEN" --threads "$THREADS" --duration "$1" | tail -n 1) ||
    die "loadgen failed: $line"
  [[ $line =~ connects=([0-9]+)\ .*rate=([0-9.]+) ]] || die "unexpected loadgen output: $line"
  LG_CONNECTS=${BASH_REMATCH[1]}
  LG_RATE=${BASH_REMATCH[2]}
  LG_ERRORS=0
  if [[ $line =~ errors=([0-9]+) ]]; then LG_ERRORS=${BASH_REMATCH[1]}; fi
}

# record ROUND MODE RATE CONNECTS ERRORS EVENTS LOST READY_MS RSS_KIB
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"
}

run_untraced() {
  local round=$1
  run_loadgen "$DURATION"
  record "$round" untraced "$LG_RATE" "$LG_CONNECTS" "$LG_ERRORS" - - - -
  log "round $round/$ROUNDS untraced  rate=$LG_RATE/s connects=$LG_CONNECTS errors=$LG_ERRORS"
}

# run_traced ROUND output|count
run_traced() {
  local round=$1 mode=$2
  local out=$tmp/$mode.$round.out err=$tmp/$mode.$round.err
  local -a args=()
  [[ $mode == count ]] && args=(-c)

  # A background job of a non-interactive shell starts with SIGINT ignored; env puts the
  # default back so SIGINT stops the tracer as Ctrl-C would.
  local t0 t_ready
  : >"$out"
  : >"$err" # exist before the first poll (the job's redirections may come later)
  t0=$(now_us)
  env --default-signal=INT "$TRACER" "${args[@]}" >"$out" 2>"$err" &
  TRACER_PID=$!

  local deadline=$((t0 + READY_TIMEOUT * 1000000))
  while :; do
    if [[ $mode == output ]]; then
      grep -q '^PID' "$out" && break
    else
      grep -q 'Tracing connect' "$err" "$out" && break
    fi
    if exited "$TRACER_PID"; then
      log "--- tracer stderr:"
      head -n 20 "$err" >&2 || true
      die "tracer ($mode mode) exited before it was ready"
    fi
    (($(now_us) < deadline)) || die "tracer ($mode mode) not ready after ${READY_TIMEOUT}s" \
      "(text mode must flush its PID header line; -c mode must print 'Tracing connect' on stderr)"
    sleep 0.005
  done
  t_ready=$(now_us)
  local ready_ms=$(((t_ready - t0 + 500) / 1000))

  run_loadgen "$DURATION"

  exited "$TRACER_PID" && die "tracer ($mode mode) exited during the load: $(head -n 5 "$err")"
  local rss
  rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$TRACER_PID/status" 2>/dev/null || true)
  [[ -n $rss ]] || rss=NA

  kill -INT "$TRACER_PID"
  local stop_deadline=$(($(now_us) + STOP_TIMEOUT * 1000000))
  while ! exited "$TRACER_PID"; do
    if (($(now_us) >= stop_deadline)); then
      kill -KILL "$TRACER_PID" 2>/dev/null || true
      wait "$TRACER_PID" 2>/dev/null || true
      TRACER_PID=
      die "tracer ($mode mode) did not exit within ${STOP_TIMEOUT}s of SIGINT (killed)"
    fi
    sleep 0.01
  done
  local trc=0
  wait "$TRACER_PID" || trc=$?
  TRACER_PID=
  ((trc == 0)) || log "warning: tracer ($mode mode) exited with status $trc after SIGINT"

  # "WARNING: N events lost ..." lines on stderr.
  local lost
  lost=$(awk '$1 == "WARNING:" && $2 ~ /^[0-9]+$/ && $3 == "events" && $4 == "lost" {s += $2}
              END {print s + 0}' "$err")

  local events
  if [[ $mode == output ]]; then
    # Every non-empty stdout line except the header is one event.
    events=$(awk 'NF && !/^PID/ {n++} END {print n + 0}' "$out")
  else
    # Sum the last column (CONNECTS) of the table rows after the header.
    events=$(awk 'hdr && $NF ~ /^[0-9]+$/ {s += $NF} $NF == "CONNECTS" {hdr = 1}
                  END {print (hdr ? s + 0 : "NA")}' "$out")
    [[ $events != NA ]] || log "warning: no CONNECTS table found on the tracer's stdout (-c mode)"
  fi

  record "$round" "$mode" "$LG_RATE" "$LG_CONNECTS" "$LG_ERRORS" "$events" "$lost" "$ready_ms" "$rss"
  local label=output what=events
  [[ $mode == count ]] && label="count(-c)" && what=counted
  log "round $round/$ROUNDS $(printf '%-9s' "$label") rate=$LG_RATE/s connects=$LG_CONNECTS" \
    "errors=$LG_ERRORS $what=$events lost=$lost ready=${ready_ms}ms rss=${rss}KiB"
}

log "tcpconnect bench: tracer=$TRACER loadgen=$LOADGEN"
log "rounds=$ROUNDS duration=${DURATION}s threads=$THREADS cpus=$(nproc) kernel=$(uname -r)"
if ((WARMUP > 0)); then
  run_loadgen "$WARMUP"
  log "warm-up: rate=$LG_RATE/s"
fi

: >"$results"
modes=(untraced output count)
for ((r = 1; r <= ROUNDS; r++)); do
  # Rotate the order each round so no mode always runs first (or right after another).
  for ((k = 0; k < 3; k++)); do
    m=${modes[$(((r - 1 + k) % 3))]}
    case $m in
      untraced) run_untraced "$r" ;;
      *) run_traced "$r" "$m" ;;
    esac
  done
done

# Delivery latency at a low event rate (bench/latency.cpp): its own tracer runs, one with
# stdout on a pipe and one with stdout on a file, each filtered to latency's own listener port.
lat_out=
lat_rc=0
if [[ $LATENCY == 1 ]]; then
  log "delivery latency: $LATENCY_BIN --tracer $TRACER"
  lat_out=$("$LATENCY_BIN" --tracer "$TRACER") || lat_rc=$?
  ((lat_rc != 130)) || exit 130
  ((lat_rc == 0)) || log "warning: latency exited with status $lat_rc (its stderr is above)"
fi

# Summary: medians over rounds, plus per-round event accounting for output mode.
awk -F'\t' -v rounds="$ROUNDS" -v dur="$DURATION" -v threads="$THREADS" '
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
function add(key, v) { if (v != "-" && v != "NA") L[key] = L[key] " " v }
function ratio(a, b) { return (a == "NA" || b == "NA" || b + 0 == 0) ? "NA" : sprintf("%.3f", a / b) }
function pct(a, b) { return (a == "NA" || b == "NA" || b + 0 == 0) ? "NA" : sprintf("%.2f%%", 100 * a / b) }
{
  round = $1; mode = $2
  add(mode ",rate", $3); add(mode ",ready", $8); add(mode ",rss", $9)
  C[mode] += $4; E[mode] += $5
  if ($6 != "-" && $6 != "NA") EV[mode] += $6; else if ($6 == "NA") EVNA[mode] = 1
  if ($7 != "-") LOST[mode] += $7
  if (mode == "output") { pc[round] = $4; pe[round] = $6; pl[round] = $7; pr[round] = $3 }
}
END {
  u = median(L["untraced,rate"]); o = median(L["output,rate"]); c = median(L["count,rate"])
  printf "\ntcpconnect overhead: %d rounds x %ds, loadgen %d threads (medians over rounds)\n\n", rounds, dur, threads
  printf "%-10s %12s %9s %12s %12s %9s %8s %9s %9s\n", "mode", "connects/s", "vs_untr", "connects", "events", "captured", "lost", "ready_ms", "rss_KiB"
  printf "%-10s %12.0f %9s %12d %12s %9s %8s %9s %9s\n", "untraced", u, "1.000", C["untraced"], "-", "-", "-", "-", "-"
  ev = EVNA["output"] ? "NA" : EV["output"]
  printf "%-10s %12.0f %9s %12d %12s %9s %8d %9s %9s\n", "output", o, ratio(o, u), C["output"], ev, pct(ev, C["output"]), LOST["output"], median(L["output,ready"]), median(L["output,rss"])
  ev = EVNA["count"] ? "NA" : EV["count"]
  printf "%-10s %12.0f %9s %12d %12s %9s %8d %9s %9s\n", "count(-c)", c, ratio(c, u), C["count"], ev, pct(ev, C["count"]), LOST["count"], median(L["count,ready"]), median(L["count,rss"])
  if (E["untraced"] + E["output"] + E["count"] > 0)
    printf "\nloadgen connect errors: untraced=%d output=%d count=%d\n", E["untraced"], E["output"], E["count"]
  printf "\noutput mode, per round:\n%-6s %12s %12s %12s %9s %8s\n", "round", "connects/s", "connects", "events", "captured", "lost"
  for (r = 1; r <= rounds; r++)
    if (r in pc) printf "%-6d %12.0f %12d %12d %9s %8d\n", r, pr[r], pc[r], pe[r], pct(pe[r], pc[r]), pl[r]
}' "$results"

if [[ $LATENCY == 1 ]]; then
  printf '\ndelivery latency at low rate (connect() return -> line readable):\n'
  [[ -z $lat_out ]] || printf '%s\n' "$lat_out"
  if ((lat_rc != 0)); then
    printf 'latency measurement failed (exit status %d)\n' "$lat_rc"
    exit 1
  fi
fi
