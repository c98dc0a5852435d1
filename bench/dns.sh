#!/usr/bin/env bash
# DNS-heavy load with and without `tcpconnect -d`: resolver queries/s through glibc's
# res_nquery (bench/dnsload) against dnsmasq, both in a network namespace of their own,
# while the tracer (if any) runs on the host. See bench/README.md.
# Run as root after building:
#   cmake --build build -j2 --target tcpconnect dnsload && sudo bench/dns.sh
#
# Environment (all optional):
#   BUILD=dir          build directory (default: <repo>/build)
#   TRACER=path        tracer binary (default: $BUILD/tcpconnect)
#   ROUNDS=5           interleaved rounds; each runs dnsload once untraced and once traced
#   DURATION=5         seconds of load per run
#   THREADS=2          dnsload threads
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
BUILD=${BUILD:-$repo/build}
TRACER=${TRACER:-$BUILD/tcpconnect}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
THREADS=${THREADS:-2}
DNSLOAD=$BUILD/bench/dnsload
DNSMASQ=/usr/sbin/dnsmasq
READY_TIMEOUT=30 # seconds for the tracer's header / dnsmasq's first answer
STOP_TIMEOUT=30  # seconds for the tracer to exit after SIGINT
# The name dnsmasq answers, and its address. The address is put on the namespace's lo so
# a TCP connect to it shows up in the tracer with the name in its QUERY column.
NAME=bench.test
ADDR=10.66.0.1
CHECK_PORT=9 # nothing listens there: the connect is refused, but it is traced

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_whole_numbers ROUNDS DURATION THREADS
((ROUNDS >= 1)) || die "ROUNDS must be >= 1"
((DURATION >= 1)) || die "DURATION must be >= 1"
((THREADS >= 1)) || die "THREADS must be >= 1"

[[ $EUID -eq 0 ]] || die "must run as root (network namespace, BPF programs)"
[[ -x $TRACER ]] || die "tracer not found or not executable: $TRACER (build it, or set BUILD=/TRACER=)"
[[ -x $DNSLOAD ]] || die "dnsload not found or not executable: $DNSLOAD (build target 'dnsload')"
[[ -x $DNSMASQ ]] || die "$DNSMASQ not found (apt-get install -y dnsmasq-base)"
command -v ip >/dev/null || die "ip not found (apt-get install -y iproute2)"

ns=tcbench-dns-$$
tmp=$(mktemp -d /tmp/tcpconnect-dns.XXXXXX)
results=$tmp/results.tsv
TRACER_PID=
DNSMASQ_PID=
NS_CREATED=0

cleanup() {
  local rc=$?
  kill_job "$TRACER_PID"
  kill_job "$DNSMASQ_PID" TERM
  ((NS_CREATED == 0)) || ip netns delete "$ns" 2>/dev/null || log "dns.sh: could not delete netns $ns"
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "dns.sh: interrupted"; exit 130' INT TERM

# Runs dnsload in the namespace; sets DL_RATE, DL_QUERIES, DL_ERRORS.
run_dnsload() {
  local line
  line=$(ip netns exec "$ns" "$DNSLOAD" --server 127.0.0.1 --port 53 --name "$NAME" \
    --threads "$THREADS" --duration "$1" | tail -n 1) || die "dnsload failed: $line"
  [[ $line =~ queries=([0-9]+)\ errors=([0-9]+)\ rate=([0-9.]+) ]] ||
    die "unexpected dnsload output: $line"
  DL_QUERIES=${BASH_REMATCH[1]}
  DL_ERRORS=${BASH_REMATCH[2]}
  DL_RATE=${BASH_REMATCH[3]}
}

# record ROUND MODE RATE QUERIES ERRORS LOST CHECK
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"
}

run_untraced() {
  local round=$1
  run_dnsload "$DURATION"
  record "$round" untraced "$DL_RATE" "$DL_QUERIES" "$DL_ERRORS" - -
  log "round $round/$ROUNDS untraced rate=$DL_RATE/s queries=$DL_QUERIES errors=$DL_ERRORS"
}

TRACER_FAILED=0
run_traced() {
  local round=$1
  local out=$tmp/traced.$round.out err=$tmp/traced.$round.err
  : >"$out"
  : >"$err"
  # Background jobs of a script start with SIGINT ignored; env puts the default back.
  env --default-signal=INT "$TRACER" -d >"$out" 2>"$err" &
  TRACER_PID=$!
  local deadline=$(($(now_us) + READY_TIMEOUT * 1000000))
  until grep -q '^PID' "$out"; do
    if exited "$TRACER_PID"; then
      log "--- tracer stderr:"
      head -n 20 "$err" >&2 || true
      die "tracer exited before it was ready"
    fi
    (($(now_us) < deadline)) || die "tracer not ready after ${READY_TIMEOUT}s"
    sleep 0.005
  done

  run_dnsload "$DURATION"
  exited "$TRACER_PID" && die "tracer exited during the load: $(head -n 5 "$err")"

  # Were the answers captured? A connect to $ADDR must show $NAME in the QUERY column.
  ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$ADDR/$CHECK_PORT" 2>/dev/null || true
  local check=miss
  deadline=$(($(now_us) + 2000000))
  while (($(now_us) < deadline)); do
    if awk -v a="$ADDR" -v p="$CHECK_PORT" -v n="$NAME" '
         /^PID/ {for (i = 1; i <= NF; i++) {if ($i == "DADDR") d = i; if ($i == "DPORT") dp = i; if ($i == "QUERY") q = i}; next}
         d && $d == a && $dp == p {found = 1; ok = (q && $q == n)}
         END {exit found ? !ok * 2 : 1}' "$out"; then
      check=ok
      break
    elif (($? == 2)); then
      check=wrong
      break
    fi
    sleep 0.01
  done

  stop_tracer "tracer"

  # Same accounting as run.sh: the exit total if there is one, else the running deltas.
  local lost
  lost=$(awk '$1 == "WARNING:" && $2 ~ /^[0-9]+$/ && $3 == "events" && $4 == "lost" {
                if ($5 == "in" && $6 == "total") { fin = $2; hasfin = 1 } else s += $2 }
              END {print hasfin ? fin + 0 : s + 0}' "$err")
  grep '^WARNING' "$err" | sed "s/^/round $round: /" >>"$tmp/warnings" || true
  record "$round" traced "$DL_RATE" "$DL_QUERIES" "$DL_ERRORS" "$lost" "$check"
  log "round $round/$ROUNDS traced   rate=$DL_RATE/s queries=$DL_QUERIES errors=$DL_ERRORS" \
    "lost=$lost query_check=$check"
}

log "tcpconnect -d DNS bench: tracer=$TRACER dnsload=$DNSLOAD netns=$ns"
log "rounds=$ROUNDS duration=${DURATION}s threads=$THREADS cpus=$(nproc) kernel=$(uname -r)"

ip netns add "$ns" || die "could not create network namespace $ns"
NS_CREATED=1
ip -n "$ns" link set lo up
ip -n "$ns" addr add "$ADDR/32" dev lo
# No config file, no upstream, no cache: every query is answered from --host-record.
ip netns exec "$ns" "$DNSMASQ" -k --conf-file=/dev/null --no-resolv --no-hosts \
  --bind-interfaces --listen-address=127.0.0.1 --port=53 --pid-file= \
  --host-record="$NAME,$ADDR" --cache-size=0 >"$tmp/dnsmasq.log" 2>&1 &
DNSMASQ_PID=$!

# Ready once it answers; this doubles as a short warm-up.
deadline=$(($(now_us) + READY_TIMEOUT * 1000000))
until ip netns exec "$ns" "$DNSLOAD" --server 127.0.0.1 --name "$NAME" --threads 1 \
  --duration 0.2 >/dev/null 2>&1; do
  if exited "$DNSMASQ_PID"; then
    head -n 20 "$tmp/dnsmasq.log" >&2 || true
    die "dnsmasq exited"
  fi
  (($(now_us) < deadline)) || die "dnsmasq not answering after ${READY_TIMEOUT}s"
  sleep 0.1
done
run_dnsload 1
log "warm-up: rate=$DL_RATE/s"

: >"$results"
: >"$tmp/warnings"
for ((r = 1; r <= ROUNDS; r++)); do
  # Alternate which run goes first.
  if ((r % 2)); then
    run_untraced "$r"
    run_traced "$r"
  else
    run_traced "$r"
    run_untraced "$r"
  fi
done

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
{
  L[$2] = L[$2] " " $3; Q[$2] += $4; E[$2] += $5
  if ($6 ~ /^[0-9]+$/) LOST += $6
  if ($2 == "traced") { CHK[$7]++ }
  R[$1, $2] = $3
}
END {
  u = median(L["untraced"]); t = median(L["traced"])
  printf "\ntcpconnect -d under DNS load: %d rounds x %ds, dnsload %d threads (glibc res_nquery, one UDP socket per query) against dnsmasq (queries/s: medians over rounds; counts: sums)\n\n", rounds, dur, threads
  printf "%-14s %10s %8s %10s %8s %6s\n", "mode", "queries/s", "vs_untr", "queries", "errors", "lost"
  printf "%-14s %10.0f %8s %10d %8d %6s\n", "untraced", u, "1.000", Q["untraced"], E["untraced"], "-"
  printf "%-14s %10.0f %8s %10d %8d %6d\n", "traced (-d)", t, (u > 0 ? sprintf("%.3f", t / u) : "NA"), Q["traced"], E["traced"], LOST
  printf "\nquery check (connect to the answered address shows its name in QUERY): ok=%d wrong=%d miss=%d of %d\n", CHK["ok"], CHK["wrong"], CHK["miss"], rounds
  printf "\nper round:\n%-6s %10s %10s %8s\n", "round", "untraced", "traced", "ratio"
  for (r = 1; r <= rounds; r++)
    printf "%-6d %10.0f %10.0f %8s\n", r, R[r, "untraced"], R[r, "traced"], (R[r, "untraced"] > 0 ? sprintf("%.3f", R[r, "traced"] / R[r, "untraced"]) : "NA")
}' "$results"

if [[ -s $tmp/warnings ]]; then
  printf '\ntracer warnings:\n'
  cat "$tmp/warnings"
fi
((TRACER_FAILED == 0)) || die "the tracer exited non-zero after SIGINT in at least one round"
