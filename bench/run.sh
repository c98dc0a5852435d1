#!/usr/bin/env bash
# Overhead benchmark for tcpconnect: loopback connect storm, untraced vs traced (several
# tracer modes, Prometheus metrics, plus bpftrace and libbpf-tools' tcplife as references,
# when installed). Besides throughput it reports the cost per event: BPF run time per
# connect (kernel.bpf_stats_enabled, per program) and the tracer's CPU time per event.
# See bench/README.md.
# Run as root after building:
#   cmake -S . -B build && make -C build -j2 tcpconnect loadgen latency && sudo bench/run.sh
#
# Environment (all optional):
#   BUILD=dir          build directory (default: <repo>/build)
#   TRACER=path        tracer binary (default: $BUILD/tcpconnect)
#   LOADGEN=path       load generator (default: $BUILD/bench/loadgen)
#   MODES="untraced output count top metrics lifetime accept dns bpftrace tcplife"
#                      modes to run (default: all; bpftrace and tcplife only when
#                      installed); untraced always runs as the baseline. A peer mode
#                      asked for but not installed is skipped with one line
#   ROUNDS=5           interleaved rounds; each runs every selected mode once
#   DURATION=5         seconds of load per run
#   THREADS=2          loadgen client threads
#   WARMUP=1           seconds of unrecorded untraced load first (0 = none)
#   READY_TIMEOUT=30   seconds to wait for the tracer to become ready
#   STOP_TIMEOUT=30    seconds to wait for the tracer to exit after SIGINT
#   KEEP=0             1 = keep the raw files (tracer output, results.tsv) and print where
#   LATENCY=1          0 = skip the delivery-latency measurement after the throughput rounds
#   LATENCY_BIN=path   latency tool (default: $BUILD/bench/latency)
#   TCPLIFE=path       tcplife binary for the tcplife mode (default: /usr/sbin/tcplife,
#                      Debian package libbpf-tools)
#   TCPLIFE_WAIT=2     seconds to wait after starting tcplife before the load (it prints
#                      nothing to a file until its stdio buffer is flushed, so there is no
#                      readiness signal to wait for)
#   BPFTRACE=path      bpftrace binary for the bpftrace mode (default: bpftrace in PATH,
#                      Debian package bpftrace)
#   BPFTRACE_SETTLE_MS=200  milliseconds to wait after bpftrace's "Attaching" line
#   SCRAPE_WAIT_MS=200 milliseconds between the end of the load and the reading of the
#                      tracer's CPU time and BPF run times (and, in metrics mode, the
#                      scrape), so the tracer has consumed the last records
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
TCPLIFE=${TCPLIFE:-/usr/sbin/tcplife}
TCPLIFE_WAIT=${TCPLIFE_WAIT:-2}
BPFTRACE=${BPFTRACE:-$(command -v bpftrace || echo /usr/bin/bpftrace)}
BPFTRACE_SETTLE_MS=${BPFTRACE_SETTLE_MS:-200}
SCRAPE_WAIT_MS=${SCRAPE_WAIT_MS:-200}
# The peers (bpftrace, tcplife) are in the default modes only when installed.
default_modes="untraced output count top metrics lifetime accept dns"
[[ ! -x $BPFTRACE ]] || default_modes+=" bpftrace"
[[ ! -x $TCPLIFE ]] || default_modes+=" tcplife"
MODES=${MODES:-$default_modes}
# The bpftrace mode's program: one line per connect attempt (TCP_SYN_SENT is 2).
BT_PROG='tracepoint:sock:inet_sock_set_state /args->newstate == 2/ { printf("%d %s %d\n", pid, comm, args->dport); }'

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_whole_numbers ROUNDS DURATION THREADS WARMUP READY_TIMEOUT STOP_TIMEOUT TCPLIFE_WAIT \
  SCRAPE_WAIT_MS BPFTRACE_SETTLE_MS
((ROUNDS >= 1)) || die "ROUNDS must be >= 1"
((DURATION >= 1)) || die "DURATION must be >= 1"
((THREADS >= 1)) || die "THREADS must be >= 1"
((READY_TIMEOUT >= 1 && STOP_TIMEOUT >= 1)) || die "timeouts must be >= 1"
[[ $LATENCY == 0 || $LATENCY == 1 ]] || die "LATENCY must be 0 or 1, got '$LATENCY'"
# Selected modes, in canonical order, untraced always included.
all_modes=(untraced output count top metrics lifetime accept dns bpftrace tcplife)
declare -A want=([untraced]=1)
for m in $MODES; do
  case $m in
    untraced | output | count | metrics | lifetime | accept | dns) want[$m]=1 ;;
    top)
      if command -v script >/dev/null; then want[$m]=1; else
        log "skipping mode top: script(1) not installed (apt-get install -y bsdutils)"
      fi
      ;;
    bpftrace)
      if [[ -x $BPFTRACE ]]; then want[$m]=1; else
        log "skipping mode bpftrace: $BPFTRACE not installed (apt-get install -y bpftrace, or set BPFTRACE=)"
      fi
      ;;
    tcplife)
      if [[ -x $TCPLIFE ]]; then want[$m]=1; else
        log "skipping mode tcplife: $TCPLIFE not installed (apt-get install -y libbpf-tools, or set TCPLIFE=)"
      fi
      ;;
    *) die "unknown mode '$m' in MODES (known: ${all_modes[*]})" ;;
  esac
done
modes=()
for m in "${all_modes[@]}"; do [[ -z ${want[$m]:-} ]] || modes+=("$m"); done
uses_tracer=0
for m in "${modes[@]}"; do [[ $m == untraced || $m == bpftrace || $m == tcplife ]] || uses_tracer=1; done

[[ $EUID -eq 0 ]] || die "must run as root (the tracer loads BPF programs)"
[[ $uses_tracer == 0 && $LATENCY == 0 ]] || [[ -x $TRACER ]] ||
  die "tracer not found or not executable: $TRACER (build it, or set BUILD=/TRACER=)"
[[ -x $LOADGEN ]] || die "loadgen not found or not executable: $LOADGEN (build target 'loadgen')"
[[ $LATENCY == 0 || -x $LATENCY_BIN ]] ||
  die "latency tool not found or not executable: $LATENCY_BIN (build target 'latency', or LATENCY=0)"
[[ -z ${want[metrics]:-} ]] || command -v curl >/dev/null ||
  die "curl not found (apt-get install -y curl, or leave metrics out of MODES)"

[[ -r /proc/sys/kernel/bpf_stats_enabled ]] ||
  die "/proc/sys/kernel/bpf_stats_enabled missing: the kernel cannot count BPF run time"
CLK_TCK=$(getconf CLK_TCK)
[[ $CLK_TCK =~ ^[0-9]+$ && $CLK_TCK -gt 0 ]] || die "getconf CLK_TCK failed: '$CLK_TCK'"

tmp=$(mktemp -d /tmp/tcpconnect-bench.XXXXXX)
results=$tmp/results.tsv
hooks=$tmp/hooks.tsv
TRACER_PID=
BPF_STATS_PREV=

cleanup() {
  local rc=$?
  kill_job "$TRACER_PID"
  if [[ -n $BPF_STATS_PREV ]]; then
    sysctl -qw "kernel.bpf_stats_enabled=$BPF_STATS_PREV" ||
      log "warning: could not restore kernel.bpf_stats_enabled=$BPF_STATS_PREV"
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

# BPF run-time statistics (run_time_ns, run_cnt per program) are only kept while
# kernel.bpf_stats_enabled is 1. Switched on for the run; cleanup puts the old value back.
if ((${#modes[@]} > 1)); then
  BPF_STATS_PREV=$(</proc/sys/kernel/bpf_stats_enabled)
  sysctl -qw kernel.bpf_stats_enabled=1 || die "could not set kernel.bpf_stats_enabled=1"
fi

# Prints "prog_id run_time_ns run_cnt" for every BPF program process $1 holds a
# descriptor for (from /proc/PID/fdinfo; each program once).
bpf_snapshot() {
  awk 'FNR == 1 {id = ""}
       $1 == "prog_id:" {id = $2}
       $1 == "run_time_ns:" {t = $2}
       $1 == "run_cnt:" && id != "" && !(id in seen) {seen[id] = 1; print id, t, $2}' \
    "/proc/$1/fdinfo/"* 2>/dev/null || true
}

# Prints "prog_id name" for the program IDs given as arguments (bpftool's listing; the
# kernel keeps the first 15 characters of a name). Without bpftool: "id<N>".
prog_names() {
  local ids="$*"
  if command -v bpftool >/dev/null; then
    bpftool prog show 2>/dev/null | awk -v ids="$ids" '
      BEGIN { n = split(ids, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
      /^[0-9]+: / {
        id = $1; sub(":", "", id)
        if (!(id in want)) next
        name = "id" id
        for (i = 2; i < NF; i++) if ($i == "name") name = $(i + 1)
        print id, name
      }' || true
  else
    local id
    for id in $ids; do echo "$id id$id"; done
  fi
}

# Prints the CPU time (utime + stime, in clock ticks, all threads) of process $1.
cpu_ticks() {
  local s
  s=$(<"/proc/$1/stat")
  s=${s##*) } # the fields after "(comm) ": field 3 (state) onwards
  local -a f
  read -ra f <<<"$s"
  echo $((f[11] + f[12]))
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

# Prints a TCP port that no IPv4 or IPv6 socket uses, below the ephemeral range (so a
# connect's source port cannot take it meanwhile).
free_port() {
  local -A used=()
  local p
  while read -r p; do
    used[$((16#$p))]=1
  done < <(awk 'FNR > 1 && split($2, a, ":") == 2 {print a[2]}' /proc/net/tcp{,6} 2>/dev/null)
  local base=$((20000 + RANDOM % 10000)) i
  for ((i = 0; i < 10000; i++)); do
    p=$((20000 + (base - 20000 + i) % 10000))
    [[ -n ${used[$p]:-} ]] || {
      echo "$p"
      return
    }
  done
  die "no free TCP port in 20000-29999 for --metrics"
}

# record ROUND MODE RATE CONNECTS ERRORS EVENTS LOST READY_MS RSS_KIB EXPECTED BPF_NS CPU_TICKS
#        CPU_EVENTS
# (EXPECTED: output lines expected for that run, i.e. connects x lines-per-connect.
# BPF_NS: run time of all the tracer's BPF programs during the run. CPU_TICKS: the tracer's
# utime + stime during the run. CPU_EVENTS: what CPU_TICKS is divided by: lines, or
# connects in the count and metrics modes.)
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"
}

run_untraced() {
  local round=$1
  run_loadgen "$DURATION"
  record "$round" untraced "$LG_RATE" "$LG_CONNECTS" "$LG_ERRORS" - - - - - - - -
  log "round $round/$ROUNDS untraced  rate=$LG_RATE/s connects=$LG_CONNECTS errors=$LG_ERRORS"
}

# run_traced ROUND output|count|metrics|lifetime|accept|dns|bpftrace|tcplife
run_traced() {
  local round=$1 mode=$2
  local out=$tmp/$mode.$round.out err=$tmp/$mode.$round.err
  # cmd: what to run. ready: how readiness shows (header = a line starting with PID on
  # stdout, stderr = 'Tracing connect' on stderr, attach = bpftrace's 'Attaching N probe'
  # line plus BPFTRACE_SETTLE_MS, fixed = a fixed wait). per_conn: output
  # lines expected per loadgen connect.
  local -a cmd
  local ready per_conn port=
  case $mode in
    output) cmd=("$TRACER") ready=header per_conn=1 ;;
    count) cmd=("$TRACER" -c) ready=stderr per_conn=1 ;;
    # --top draws on a terminal: script(1) gives it one (a pseudo-terminal, 80x24); its
    # screen is script's output. The tracer is script's descendant, found once it is ready.
    top) cmd=(env TERM=xterm script -qfec "$TRACER --top" /dev/null) ready=stderr per_conn=1 ;;
    metrics)
      port=$(free_port)
      cmd=("$TRACER" --metrics "127.0.0.1:$port" --quiet) ready=stderr per_conn=1
      ;;
    lifetime) cmd=("$TRACER" --lifetime) ready=header per_conn=1 ;;
    accept) cmd=("$TRACER" --accept) ready=header per_conn=2 ;;
    dns) cmd=("$TRACER" -d) ready=header per_conn=1 ;;
    bpftrace) cmd=("$BPFTRACE" -e "$BT_PROG") ready=attach per_conn=1 ;;
    tcplife) cmd=("$TCPLIFE") ready=fixed per_conn=2 ;;
    *) die "internal error: unknown mode $mode" ;;
  esac

  # A background job of a non-interactive shell starts with SIGINT ignored; env puts the
  # default back so SIGINT stops the tracer as Ctrl-C would.
  local t0 t_ready
  : >"$out"
  : >"$err" # exist before the first poll (the job's redirections may come later)
  t0=$(now_us)
  env --default-signal=INT "${cmd[@]}" >"$out" 2>"$err" &
  TRACER_PID=$!

  local deadline=$((t0 + READY_TIMEOUT * 1000000))
  # tcplife writes its header through stdio, fully buffered on a file, so nothing shows
  # until 4 KiB of output or exit: wait a fixed time instead (it attaches in ~0.1 s here).
  local fixed_until=$((t0 + TCPLIFE_WAIT * 1000000))
  [[ $ready == fixed ]] && ((fixed_until >= deadline)) && deadline=$((fixed_until + 1000000))
  while :; do
    case $ready in
      header) grep -q '^PID' "$out" && break ;;
      stderr) grep -q 'Tracing connect' "$err" "$out" && break ;;
      attach) grep -q '^Attaching [0-9]* probe' "$out" "$err" && break ;;
      fixed) (($(now_us) >= fixed_until)) && break ;;
    esac
    if exited "$TRACER_PID"; then
      log "--- tracer stderr:"
      head -n 20 "$err" >&2 || true
      die "tracer ($mode mode) exited before it was ready"
    fi
    (($(now_us) < deadline)) || die "tracer ($mode mode) not ready after ${READY_TIMEOUT}s" \
      "(text mode must flush its PID header line; -c and --metrics modes must print" \
      "'Tracing connect' on stderr; bpftrace its 'Attaching' line)"
    sleep 0.005
  done
  t_ready=$(now_us)
  local ready_ms=$(((t_ready - t0 + 500) / 1000))
  [[ $ready == fixed ]] && ready_ms=fixed
  # bpftrace prints "Attaching" just before it attaches: give it a moment to finish.
  [[ $ready != attach ]] || sleep "$((BPFTRACE_SETTLE_MS / 1000)).$(printf '%03d' $((BPFTRACE_SETTLE_MS % 1000)))"

  # --top: measure the tracer itself, and stop it (script follows) rather than script.
  local wrapper=
  if [[ $mode == top ]]; then
    wrapper=$TRACER_PID
    TRACER_PID=$(pgrep -n -f "^$TRACER --top") || die "tracer (top mode): not found under script"
  fi

  # Start of the measured window: CPU time and BPF run times so far (startup excluded).
  local cpu0 bpf0=$tmp/$mode.$round.bpf0 bpf1=$tmp/$mode.$round.bpf1
  cpu0=$(cpu_ticks "$TRACER_PID") || die "tracer ($mode mode): cannot read /proc/$TRACER_PID/stat"
  bpf_snapshot "$TRACER_PID" >"$bpf0"

  run_loadgen "$DURATION"

  exited "$TRACER_PID" && die "tracer ($mode mode) exited during the load: $(head -n 5 "$err")"
  local rss
  rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$TRACER_PID/status" 2>/dev/null || true)
  [[ -n $rss ]] || rss=NA

  # Give the tracer time to consume the records of the last connects (tcpconnect polls
  # its ring buffer at least every 50 ms), then scrape (metrics mode) while it still
  # runs, and end the measured window: CPU time and BPF run times.
  sleep "$((SCRAPE_WAIT_MS / 1000)).$(printf '%03d' $((SCRAPE_WAIT_MS % 1000)))"
  local scrape=$tmp/$mode.$round.metrics
  if [[ $mode == metrics ]]; then
    curl -sS --max-time 10 -o "$scrape" "http://127.0.0.1:$port/metrics" ||
      die "could not scrape http://127.0.0.1:$port/metrics (metrics mode)"
  fi
  local cpu1
  cpu1=$(cpu_ticks "$TRACER_PID") || die "tracer ($mode mode): cannot read /proc/$TRACER_PID/stat"
  bpf_snapshot "$TRACER_PID" >"$bpf1"
  local cpu_ticks=$((cpu1 - cpu0))
  # Per program: the run time and run count of this window, appended to the hooks file
  # as ROUND MODE NAME NS RUNS; prints the total ns.
  local bpf_ns
  # shellcheck disable=SC2046  # one word per program ID
  bpf_ns=$(prog_names $(awk '{print $1}' "$bpf1") |
    awk -v round="$round" -v mode="$mode" -v hooks="$hooks" '
      FILENAME == "-" { name[$1] = $2; next }
      FILENAME ~ /bpf0$/ { t0[$1] = $2; c0[$1] = $3; next }
      {
        n = ($1 in name) ? name[$1] : "id" $1
        dt = $2 - t0[$1]; dc = $3 - c0[$1]
        printf "%s\t%s\t%s\t%.0f\t%.0f\n", round, mode, n, dt, dc >> hooks
        tot += dt; np++
      }
      END { if (np) printf "%.0f\n", tot; else print "NA" }' - "$bpf0" "$bpf1")
  [[ $bpf_ns != NA ]] || log "warning: no BPF programs found in /proc/$TRACER_PID/fdinfo ($mode mode)"

  if [[ -n $wrapper ]]; then
    kill -INT "$TRACER_PID"
    TRACER_PID=$wrapper
  fi
  stop_tracer "tracer ($mode mode)"

  local lost
  if [[ $mode == tcplife ]]; then
    # libbpf-tools: "lost N events on CPU #C" on stderr (perf buffer).
    lost=$(awk '$1 == "lost" && $2 ~ /^[0-9]+$/ && $3 == "events" {s += $2} END {print s + 0}' "$err")
  elif [[ $mode == bpftrace ]]; then
    # bpftrace: "Lost N events" (perf buffer), in its output.
    lost=$(awk '$1 == "Lost" && $2 ~ /^[0-9]+$/ && $3 == "events" {s += $2} END {print s + 0}' "$out" "$err")
  else
    # tcpconnect: "WARNING: N events lost (total M)" while running and, if any were lost,
    # "WARNING: M events lost in total" at exit. Use the exit total when it is there (it
    # repeats the running lines), else the sum of the running deltas.
    lost=$(awk '$1 == "WARNING:" && $2 ~ /^[0-9]+$/ && $3 == "events" && $4 == "lost" {
                  if ($5 == "in" && $6 == "total") { fin = $2; hasfin = 1 } else s += $2 }
                END {print hasfin ? fin + 0 : s + 0}' "$err")
  fi
  if [[ $mode == metrics ]]; then
    # The scrape's counter, if larger (it is read before SIGINT, the warnings after).
    local mlost
    mlost=$(awk '$1 == "tcpconnect_lost_events_total" {print $2 + 0}' "$scrape")
    [[ -n $mlost ]] || log "warning: no tcpconnect_lost_events_total in the scrape (metrics mode)"
    ((${mlost:-0} <= lost)) || lost=$mlost
    [[ ! -s $out ]] ||
      log "warning: --quiet printed $(wc -l <"$out") lines on stdout (metrics mode)"
  fi

  local events
  if [[ $mode == metrics ]]; then
    # Sum tcpconnect_connects_total over loadgen's series (every outcome and port).
    events=$(awk '/^tcpconnect_connects_total\{/ && /comm="loadgen"/ {s += $NF; n++}
                  END {print (n ? s + 0 : "NA")}' "$scrape")
    [[ $events != NA ]] ||
      log "warning: no tcpconnect_connects_total series with comm=\"loadgen\" (metrics mode)"
  elif [[ $mode == bpftrace ]]; then
    # Every non-empty line except "Attaching N probe(s)..." and "Lost N events".
    events=$(awk 'NF && !/^Attaching [0-9]+ probe/ && !/^Lost [0-9]+ events/ {n++} END {print n + 0}' "$out")
  elif [[ $mode == top ]]; then
    # A screen, not a table to add up: the counts are those of -c, whose run checks them.
    events=$LG_CONNECTS
  elif [[ $mode != count ]]; then
    # Every non-empty stdout line except the header (starts with PID) is one event.
    events=$(awk 'NF && !/^PID/ {n++} END {print n + 0}' "$out")
  else
    # Sum the CONNECTS column of the table rows after the header (found by name: the
    # table may have more columns after it).
    events=$(awk 'col && $col ~ /^[0-9]+$/ {s += $col}
                  !col {for (i = 1; i <= NF; i++) if ($i == "CONNECTS") {col = i; hdr = 1}}
                  END {print (hdr ? s + 0 : "NA")}' "$out")
    [[ $events != NA ]] || log "warning: no CONNECTS table found on the tracer's stdout (-c mode)"
  fi

  local expected=$((LG_CONNECTS * per_conn))
  # CPU per event: per output line, or per connect where there are no lines (count, metrics).
  local cpu_events=$events
  [[ $mode != count && $mode != metrics && $mode != top ]] || cpu_events=$LG_CONNECTS
  record "$round" "$mode" "$LG_RATE" "$LG_CONNECTS" "$LG_ERRORS" "$events" "$lost" "$ready_ms" "$rss" \
    "$expected" "$bpf_ns" "$cpu_ticks" "$cpu_events"
  local label=$mode what=lines
  [[ $mode == count ]] && label="count(-c)" && what=counted
  [[ $mode == metrics ]] && what=counted
  local rdy="${ready_ms}ms"
  [[ $ready == fixed ]] && rdy="fixed ${TCPLIFE_WAIT}s"
  log "round $round/$ROUNDS $(printf '%-9s' "$label") rate=$LG_RATE/s connects=$LG_CONNECTS" \
    "errors=$LG_ERRORS $what=$events expected=$expected lost=$lost ready=$rdy rss=${rss}KiB" \
    "bpf_ns=$bpf_ns cpu_ticks=$cpu_ticks"
}

log "tcpconnect bench: tracer=$TRACER loadgen=$LOADGEN"
log "rounds=$ROUNDS duration=${DURATION}s threads=$THREADS cpus=$(nproc) kernel=$(uname -r)"
log "modes: ${modes[*]}"
if ((WARMUP > 0)); then
  run_loadgen "$WARMUP"
  log "warm-up: rate=$LG_RATE/s"
fi

: >"$results"
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

# Summary: medians over rounds per mode, plus per-round event accounting for every mode.
awk -F'\t' -v rounds="$ROUNDS" -v dur="$DURATION" -v threads="$THREADS" -v modes="${modes[*]}" \
  -v tlwait="$TCPLIFE_WAIT" -v clk="$CLK_TCK" -v hooks="$hooks" '
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
function add(key, v) { if (num(v)) L[key] = L[key] " " v }
function ratio(a, b) { return (a == "NA" || b == "NA" || b + 0 == 0) ? "NA" : sprintf("%.3f", a / b) }
function pct(a, b) { return (a == "NA" || b == "NA" || b + 0 == 0) ? "NA" : sprintf("%.2f%%", 100 * a / b) }
function label(m) { return m == "count" ? "count(-c)" : m }
# BPF ns per connect and tracer CPU microseconds per event, from sums (NA if unknown).
function nsper(ns, c) { return (ns == "NA" || c + 0 == 0) ? "NA" : sprintf("%.0f", ns / c) }
function usper(t, ev) { return (t == "NA" || ev == "NA" || ev + 0 == 0) ? "NA" : sprintf("%.2f", t * 1e6 / clk / ev) }
{
  round = $1; mode = $2
  add(mode ",rate", $3); add(mode ",ready", $8); add(mode ",rss", $9)
  if ($8 == "fixed") FIXED[mode] = 1
  C[mode] += $4; E[mode] += $5
  if (num($6)) EV[mode] += $6; else if ($6 == "NA") EVNA[mode] = 1
  if (num($7)) LOST[mode] += $7
  if (num($10)) X[mode] += $10
  if (num($11)) BNS[mode] += $11; else if ($11 == "NA") BNSNA[mode] = 1
  if (num($12) && num($13)) { CT[mode] += $12; CE[mode] += $13 } else if ($12 != "-") CTNA[mode] = 1
  k = round SUBSEP mode
  R[k] = $3; RC[k] = $4; RE[k] = $6; RL[k] = $7; RX[k] = $10
  RB[k] = nsper($11, $4); RU[k] = (num($12) && num($13)) ? usper($12, $13) : "NA"
}
END {
  nm = split(modes, M, " ")
  u = median(L["untraced,rate"])
  fmt_h = "%-10s %11s %8s %10s %10s %10s %8s %9s %7s %9s %8s %11s %9s\n"
  printf "\ntcpconnect overhead: %d rounds x %ds, loadgen %d threads (rates, ready_ms, rss_KiB: medians over rounds; counts: sums; bpf_ns/conn, cpu_us/ev: over all rounds)\n\n", rounds, dur, threads
  printf fmt_h, "mode", "connects/s", "vs_untr", "connects", "expected", "lines", "per_conn", "captured", "lost", "ready_ms", "rss_KiB", "bpf_ns/conn", "cpu_us/ev"
  errs = ""
  for (i = 1; i <= nm; i++) {
    m = M[i]
    rate = median(L[m ",rate"])
    errs = errs sprintf(" %s=%d", m, E[m])
    if (m == "untraced") {
      printf "%-10s %11.0f %8s %10d %10s %10s %8s %9s %7s %9s %8s %11s %9s\n", m, rate, "1.000", C[m], "-", "-", "-", "-", "-", "-", "-", "-", "-"
      continue
    }
    ev = EVNA[m] ? "NA" : EV[m] + 0
    rdy = FIXED[m] ? sprintf("(%d)", tlwait * 1000) : median(L[m ",ready"])
    if (FIXED[m]) anyfixed = 1
    printf "%-10s %11.0f %8s %10d %10d %10s %8s %9s %7d %9s %8s %11s %9s\n", label(m), rate, ratio(rate, u), C[m], X[m], ev,
      ratio(ev, C[m]), pct(ev, X[m]), LOST[m], rdy, median(L[m ",rss"]),
      nsper(BNSNA[m] ? "NA" : BNS[m], C[m]), usper(CTNA[m] ? "NA" : CT[m], CE[m])
  }
  if (anyfixed)
    printf "(ready_ms in parentheses: a fixed wait after starting, not measured; tcplife prints nothing to a file before its first flush)\n"

  # Per BPF program (by name, summed over the rounds): runs and run time per loadgen
  # connect, and time per run. Programs that never ran in a mode are left out.
  while ((getline line < hooks) > 0) {
    split(line, h, "\t")
    hk = h[2] SUBSEP h[3]
    if (!(hk in HNS)) { HN[h[2]]++; HNAME[h[2], HN[h[2]]] = h[3] }
    HNS[hk] += h[4]; HRUN[hk] += h[5]
  }
  if (nm > 1) printf "\nBPF programs per mode (sums over the rounds; per connect = per loadgen connect):\n"
  if (nm > 1) printf "%-10s %-20s %10s %11s %9s\n", "mode", "program", "runs/conn", "ns/conn", "ns/run"
  for (i = 1; i <= nm; i++) {
    m = M[i]; idle = 0
    if (m == "untraced") continue
    for (j = 1; j <= HN[m]; j++) {
      hk = m SUBSEP HNAME[m, j]
      if (HRUN[hk] <= 0) { idle++; continue }
      printf "%-10s %-20s %10s %11s %9s\n", label(m), HNAME[m, j], ratio(HRUN[hk], C[m]), nsper(HNS[hk], C[m]),
        nsper(HNS[hk], HRUN[hk])
    }
    if (idle) printf "%-10s (%d loaded program%s that never ran)\n", label(m), idle, (idle > 1 ? "s" : "")
  }
  tot = 0
  for (i = 1; i <= nm; i++) tot += E[M[i]]
  if (tot > 0) printf "\nloadgen connect errors:%s\n", errs
  printf "\nper round (run order rotates each round):\n"
  printf "%-6s %-10s %11s %10s %10s %10s %8s %9s %7s %11s %9s\n", "round", "mode", "connects/s", "connects", "expected", "lines", "per_conn", "captured", "lost", "bpf_ns/conn", "cpu_us/ev"
  for (r = 1; r <= rounds; r++)
    for (i = 1; i <= nm; i++) {
      k = r SUBSEP M[i]
      if (!(k in R)) continue
      if (M[i] == "untraced")
        printf "%-6d %-10s %11.0f %10d %10s %10s %8s %9s %7s %11s %9s\n", r, M[i], R[k], RC[k], "-", "-", "-", "-", "-", "-", "-"
      else
        printf "%-6d %-10s %11.0f %10d %10d %10s %8s %9s %7s %11s %9s\n", r, label(M[i]), R[k], RC[k], RX[k], RE[k],
          ratio(RE[k], RC[k]), pct(RE[k], RX[k]), RL[k], RB[k], RU[k]
    }
}' "$results"

if [[ $LATENCY == 1 ]]; then
  printf '\ndelivery latency at low rate (connect() return -> line readable):\n'
  [[ -z $lat_out ]] || printf '%s\n' "$lat_out"
  if ((lat_rc != 0)); then
    printf 'latency measurement failed (exit status %d)\n' "$lat_rc"
    exit 1
  fi
fi
