#!/usr/bin/env bash
# Soak test for tcpconnect: runs `tcpconnect --lifetime --accept -d --metrics ADDR -j` for
# DURATION seconds under a loopback connect storm (loadgen), DNS answers (dnsload against
# dnsmasq in a network namespace), process starts (execload) and metrics scrapes, samples
# the tracer's memory, descriptors and BPF map fill levels, and fails unless they stay
# flat after the warm-up. See bench/README.md, "Soak".
# Run as root after building:
#   cmake --build build -j2 --target tcpconnect loadgen dnsload execload && sudo bench/soak.sh
#   sudo DURATION=120 bench/soak.sh        # the CI-sized run
#
# Environment (all optional):
#   BUILD=dir            build directory (default: <repo>/build)
#   TRACER=path          tracer binary (default: $BUILD/tcpconnect)
#   DURATION=600         seconds from the tracer's start to the last sample
#   WARMUP=              seconds not judged for flatness (default: 20% of DURATION, >= 30)
#   SAMPLE_EVERY=5       seconds between samples (the metrics endpoint is scraped every second)
#   THREADS=1            loadgen client threads (each connects as fast as it can)
#   NICE=10              niceness of the load after the cache fill (the tracer and its
#                        reader keep 0: the soak is about leaks, not about starving it)
#   DNS_EVERY=1 DNS_BURST=0.05    a dnsload burst of DNS_BURST s every DNS_EVERY s
#   DNS_NAMES=256        distinct names (and addresses) the bursts cycle through
#   EXEC_EVERY=1 EXEC_BURST=0.1   an execload burst of EXEC_BURST s every EXEC_EVERY s
#   EXEC_CACHE=2048      --exec-cache-size of the tracer: small enough to be filled
#   EXEC_FILL=           execs with 512-byte command lines before the load starts (default
#                        2 x EXEC_CACHE), so the command-line cache is at its bound, in
#                        entries and in bytes, before the warm-up ends
#   DNS_CACHE=128        --dns-cache-size of the tracer; DNS_NAMES (> DNS_CACHE) names are
#                        each resolved once before the load, so that cache is full too
#   RSS_SLACK_KIB=2048 RSS_SLACK_PCT=5  allowed RSS growth after the warm-up: the larger
#   CLIMB_KIB=512        a steady climb (each quarter's median above the last) of at
#                        least this much fails even within the slack
#   MAP_FULL_PCT=90      a hash map at or above this fill (any sample) fails
#   CSV=path             also write the samples there (default: only in the temp dir)
#   KEEP=0               1 = keep the temp dir (tracer stderr, samples, rare records)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
BUILD=${BUILD:-$repo/build}
TRACER=${TRACER:-$BUILD/tcpconnect}
LOADGEN=$BUILD/bench/loadgen
DNSLOAD=$BUILD/bench/dnsload
EXECLOAD=$BUILD/bench/execload
DNSMASQ=/usr/sbin/dnsmasq
DURATION=${DURATION:-600}
WARMUP=${WARMUP:-}
SAMPLE_EVERY=${SAMPLE_EVERY:-5}
THREADS=${THREADS:-1}
NICE=${NICE:-10}
DNS_EVERY=${DNS_EVERY:-1}
DNS_BURST=${DNS_BURST:-0.05}
DNS_NAMES=${DNS_NAMES:-256}
EXEC_EVERY=${EXEC_EVERY:-1}
EXEC_BURST=${EXEC_BURST:-0.1}
EXEC_CACHE=${EXEC_CACHE:-2048}
EXEC_FILL=${EXEC_FILL:-$((2 * EXEC_CACHE))}
DNS_CACHE=${DNS_CACHE:-128}
RSS_SLACK_KIB=${RSS_SLACK_KIB:-2048}
RSS_SLACK_PCT=${RSS_SLACK_PCT:-5}
CLIMB_KIB=${CLIMB_KIB:-512}
MAP_FULL_PCT=${MAP_FULL_PCT:-90}
CSV=${CSV:-}
KEEP=${KEEP:-0}
READY_TIMEOUT=30
STOP_TIMEOUT=30
DOMAIN=soak.test # dnsmasq synthesizes h-10-66-X-Y.soak.test -> 10.66.X.Y

# shellcheck source=bench/lib.sh
source "$here/lib.sh"

for v in DURATION SAMPLE_EVERY THREADS NICE DNS_NAMES EXEC_CACHE EXEC_FILL DNS_CACHE RSS_SLACK_KIB RSS_SLACK_PCT \
  CLIMB_KIB MAP_FULL_PCT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die_usage "$v must be a whole number, got '${!v}'"
done
for v in DNS_EVERY DNS_BURST EXEC_EVERY EXEC_BURST; do
  [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ && ! ${!v} =~ ^0+(\.0+)?$ ]] ||
    die_usage "$v must be a positive number of seconds, got '${!v}'"
done
[[ -z $WARMUP ]] || [[ $WARMUP =~ ^[0-9]+$ ]] || die_usage "WARMUP must be a whole number, got '$WARMUP'"
((DURATION >= 60)) || die_usage "DURATION must be >= 60 (a warm-up of at least 30 s, then samples)"
if [[ -z $WARMUP ]]; then
  WARMUP=$((DURATION / 5))
  ((WARMUP >= 30)) || WARMUP=30
fi
((WARMUP < DURATION)) || die_usage "WARMUP ($WARMUP) must be less than DURATION ($DURATION)"
((SAMPLE_EVERY >= 1)) || die_usage "SAMPLE_EVERY must be >= 1"
((4 * SAMPLE_EVERY <= DURATION - WARMUP)) ||
  die_usage "at least 4 samples must fall after the warm-up (SAMPLE_EVERY is too large)"
((THREADS >= 1)) || die_usage "THREADS must be >= 1"
((NICE <= 19)) || die_usage "NICE must be 0-19"
((DNS_NAMES >= 1 && DNS_NAMES <= 65000)) || die_usage "DNS_NAMES must be 1-65000"
((EXEC_CACHE >= 1 && EXEC_FILL > EXEC_CACHE)) || die_usage "EXEC_FILL must exceed EXEC_CACHE >= 1"
((DNS_CACHE >= 1 && DNS_NAMES > DNS_CACHE)) || die_usage "DNS_NAMES must exceed DNS_CACHE >= 1"
((MAP_FULL_PCT >= 1 && MAP_FULL_PCT <= 100)) || die_usage "MAP_FULL_PCT must be 1-100"
[[ $KEEP == 0 || $KEEP == 1 ]] || die_usage "KEEP must be 0 or 1, got '$KEEP'"

[[ $EUID -eq 0 ]] || die "must run as root (BPF programs, network namespace)"
[[ -x $TRACER ]] || die "tracer not found or not executable: $TRACER (build it, or set BUILD=/TRACER=)"
for b in "$LOADGEN" "$DNSLOAD" "$EXECLOAD"; do
  [[ -x $b ]] || die "not found or not executable: $b (build target '$(basename "$b")')"
done
[[ -x $DNSMASQ ]] || die "$DNSMASQ not found (apt-get install -y dnsmasq-base)"
for c in ip curl bpftool jq mawk; do
  command -v "$c" >/dev/null || die "$c not found (apt-get install -y iproute2 curl bpftool jq mawk)"
done

ns=tcsoak-$$
tmp=$(mktemp -d /tmp/tcpconnect-soak.XXXXXX)
samples=$tmp/samples.csv
TRACER_PID=
READER_PID=
LOADGEN_PID=
DNS_LOOP_PID=
EXEC_LOOP_PID=
DNSMASQ_PID=
NS_CREATED=0

cleanup() {
  local rc=$?
  # The burst loops stop by themselves at the end of their current burst once told to;
  # killing them instead could leave a dnsload or execload running on its own.
  : >"$tmp/stop"
  local p
  for p in "$DNS_LOOP_PID" "$EXEC_LOOP_PID"; do
    [[ -n $p ]] || continue
    local deadline=$(($(now_us) + 10000000))
    while ! exited "$p" && (($(now_us) < deadline)); do sleep 0.05; done
    kill_job "$p" TERM
  done
  kill_job "$LOADGEN_PID"
  kill_job "$TRACER_PID"
  kill_job "$READER_PID"
  kill_job "$DNSMASQ_PID" TERM
  ((NS_CREATED == 0)) || ip netns delete "$ns" 2>/dev/null || log "soak.sh: could not delete netns $ns"
  if [[ -n $CSV && -s $samples ]]; then
    cp "$samples" "$CSV" || log "soak.sh: could not write $CSV"
  fi
  if [[ $KEEP == 1 ]]; then
    log "raw files kept in $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "soak.sh: interrupted"; exit 130' INT TERM

elapsed_s() { echo $((($(now_us) - T0) / 1000000)); }
fail_now() { die "FAIL: $* (t=$(elapsed_s)s)"; }

# --- DNS server: dnsmasq in a namespace of its own, answering every h-10-66-X-Y.soak.test
# with 10.66.X.Y (no config file, no upstream, no cache).
ip netns add "$ns" || die "could not create network namespace $ns"
NS_CREATED=1
ip -n "$ns" link set lo up
ip netns exec "$ns" "$DNSMASQ" -k --conf-file=/dev/null --no-resolv --no-hosts \
  --bind-interfaces --listen-address=127.0.0.1 --port=53 --pid-file= \
  --synth-domain="$DOMAIN,10.66.0.0/16,h-" --cache-size=0 >"$tmp/dnsmasq.log" 2>&1 &
DNSMASQ_PID=$!
deadline=$(($(now_us) + READY_TIMEOUT * 1000000))
until ip netns exec "$ns" "$DNSLOAD" --server 127.0.0.1 --name "h-10-66-0-1.$DOMAIN" \
  --threads 1 --duration 0.05 >/dev/null 2>&1; do
  exited "$DNSMASQ_PID" && die "dnsmasq exited: $(head -n 3 "$tmp/dnsmasq.log")"
  (($(now_us) < deadline)) || die "dnsmasq not answering after ${READY_TIMEOUT}s"
  sleep 0.1
done

# --- Tracer, its stdout consumed through a FIFO by a counting reader (so the soak is about
# the tracer, not a disk): every line is counted; lines other than close records (start,
# lost, lost_enrichment, end, and anything unexpected) are kept, at most 1000 per type.
port=$(free_port)
metrics_url=http://127.0.0.1:$port/metrics
mkfifo "$tmp/out"
mawk -v rare="$tmp/rare.jsonl" -v counts="$tmp/counts" '
  /^\{"type":"close"/ {
    n++
    if (index($0, "\"comm\":\"loadgen\"")) { if (index($0, "\"dir\":\"in\"")) lin++; else lout++ }
    next
  }
  {
    n++
    t = "other"
    if (match($0, /^\{"type":"[a-z_]+"/)) t = substr($0, 10, RLENGTH - 10)
    if (++types[t] <= 1000) { print > rare; fflush(rare) }
  }
  END {
    other = 0
    for (t in types) { printf "type %s %.0f\n", t, types[t] > counts; other += types[t] }
    printf "type close %.0f\nlines %.0f\nloadgen_out %.0f\nloadgen_in %.0f\n", n - other, n, lout, lin > counts
  }' <"$tmp/out" &
READER_PID=$!
# Background jobs of a script start with SIGINT ignored; env puts the default back.
env --default-signal=INT "$TRACER" --lifetime --accept -d --metrics "127.0.0.1:$port" -j \
  --exec-cache-size "$EXEC_CACHE" --dns-cache-size "$DNS_CACHE" >"$tmp/out" 2>"$tmp/err" &
TRACER_PID=$!
T0=$(now_us)
deadline=$((T0 + READY_TIMEOUT * 1000000))
until grep -q 'Tracing connect' "$tmp/err" && curl -s --max-time 2 -o /dev/null "$metrics_url"; do
  if exited "$TRACER_PID"; then
    log "--- tracer stderr:"
    head -n 20 "$tmp/err" >&2 || true
    die "tracer exited before it was ready"
  fi
  (($(now_us) < deadline)) || die "tracer not ready after ${READY_TIMEOUT}s"
  sleep 0.02
done
log "soak: tracer pid $TRACER_PID ready in $((($(now_us) - T0) / 1000)) ms: $TRACER --lifetime" \
  "--accept -d --metrics 127.0.0.1:$port -j"
log "soak: duration ${DURATION}s, warm-up ${WARMUP}s, sample every ${SAMPLE_EVERY}s," \
  "cpus=$(nproc) kernel=$(uname -r)"

# --- The tracer's BPF maps (IDs from its descriptors): name, type, max_entries. Entries
# are counted for hash-type maps; arrays are always "full", a ring buffer's fill cannot be
# counted this way (its losses show in the lost counters instead).
declare -a map_ids=() map_names=() map_types=() map_max=()
declare -a hash_ids=() hash_names=()
BSS_ID=
while read -r id; do
  info=$(bpftool -j map show id "$id") || continue
  read -r name type max < <(jq -r '"\(.name) \(.type) \(.max_entries)"' <<<"$info")
  map_ids+=("$id") map_names+=("$name") map_types+=("$type") map_max+=("$max")
  case $type in
    hash | lru_hash | percpu_hash | lru_percpu_hash)
      hash_ids+=("$id")
      hash_names+=("$name")
      ;;
  esac
  [[ $name != *.bss ]] || BSS_ID=$id
done < <(cat "/proc/$TRACER_PID"/fdinfo/* 2>/dev/null | awk '$1 == "map_id:" {print $2}' | sort -un)
((${#hash_ids[@]} > 0)) || die "no hash maps found among the tracer's descriptors"
[[ -n $BSS_ID ]] || die "the tracer's .bss map (kernel lost/insert counters) not found"
log "soak: maps: $(for i in "${!map_ids[@]}"; do printf '%s(%s,%s) ' "${map_names[$i]}" \
  "${map_types[$i]}" "${map_max[$i]}"; done)"

# Kernel counters from .bss: lost_events lost_execs lost_dns conns_inserted conns_deleted.
read_bss() {
  bpftool -j map dump id "$BSS_ID" 2>/dev/null | jq -r '.[0].formatted.value[".bss"] | add |
    "\(.lost_events) \(.lost_execs) \(.lost_dns) \(.conns_inserted) \(.conns_deleted)"' \
    2>/dev/null || echo "NA NA NA NA NA"
}
map_entries() { bpftool -j map dump id "$1" 2>/dev/null | jq length 2>/dev/null || echo NA; }

# Scrapes the metrics endpoint into $tmp/scrape; counts failures.
SCRAPES=0
SCRAPE_FAILS=0
scrape() {
  SCRAPES=$((SCRAPES + 1))
  curl -sS --max-time 5 -o "$tmp/scrape" "$metrics_url" 2>>"$tmp/curl.err" || {
    SCRAPE_FAILS=$((SCRAPE_FAILS + 1))
    : >"$tmp/scrape"
  }
}

{
  printf 't_s,rss_kib,hwm_kib,fds,threads,cpu_ticks,connects,accepts,metrics_lost,'
  printf 'lost_events,lost_execs,lost_dns,conns_inserted,conns_deleted'
  printf ',map_%s' "${hash_names[@]}"
  printf '\n'
} >"$samples"

# One sample row. Descriptors are counted before the scrape, so the scrape's own
# connection (accepted by the tracer's HTTP server) is never in the count.
sample() {
  local t=$1 pid=$TRACER_PID
  local fdl=("/proc/$pid/fd/"*)
  local rss hwm thr cpu stat
  read -r rss hwm thr < <(awk '$1 == "VmRSS:" {r = $2} $1 == "VmHWM:" {h = $2}
    $1 == "Threads:" {t = $2} END {print r + 0, h + 0, t + 0}' "/proc/$pid/status")
  stat=$(<"/proc/$pid/stat")
  stat=${stat##*) }
  local -a f
  read -ra f <<<"$stat"
  cpu=$((f[11] + f[12]))
  scrape
  local m
  m=$(awk '/^tcpconnect_connects_total[{ ]/ {c += $NF; hc = 1}
           /^tcpconnect_accepts_total[{ ]/ {a += $NF}
           /^tcpconnect_lost[a-z_]*[{ ]/ {l += $NF; hl = 1}
           END {printf "%s,%.0f,%s\n", hc ? sprintf("%.0f", c) : "NA", a, hl ? sprintf("%.0f", l) : "NA"}' \
    "$tmp/scrape")
  local bss
  bss=$(read_bss)
  local row="$t,$rss,$hwm,${#fdl[@]},$thr,$cpu,$m,${bss// /,}" id
  for id in "${hash_ids[@]}"; do row+=,$(map_entries "$id"); done
  echo "$row" >>"$samples"
}

# --- Phase 1 (part of the warm-up): fill every bounded cache to its bound, so that RSS is
# judged on full caches only: a cache still filling grows RSS as a leak would. The
# command-line cache is filled with lines of the most it keeps (512 bytes; longer ones are
# cut), so later execs (any process on the host) cannot grow it in bytes either.
filled=0
while ((filled < EXEC_FILL)); do
  ((($(now_us) - T0) / 1000000 < WARMUP / 2)) ||
    fail_now "the command-line cache ($EXEC_CACHE entries) was not filled in the first half of" \
      "the warm-up: $filled of EXEC_FILL=$EXEC_FILL execs (lower EXEC_CACHE, or raise WARMUP)"
  line=$("$EXECLOAD" --threads 2 --duration 1 --argv-bytes 1024 | tail -n 1) ||
    die "execload failed: $line"
  [[ $line =~ execs=([0-9]+) ]] || die "unexpected execload output: $line"
  filled=$((filled + BASH_REMATCH[1]))
done
log "soak: $filled execs to fill the command-line cache ($EXEC_CACHE entries), t=$(elapsed_s)s"
# The DNS cache: every name once (one answer per name and per process, DNS_NAMES > DNS_CACHE).
for ((a = 1; a <= DNS_NAMES; a++)); do
  ((($(now_us) - T0) / 1000000 < WARMUP * 3 / 4)) ||
    fail_now "the DNS cache ($DNS_CACHE entries) was not filled in the first 3/4 of the" \
      "warm-up: $a of $DNS_NAMES names (lower DNS_NAMES, or raise WARMUP)"
  # dnsload fails when its time ran out before one answer came: a second, longer try.
  name="h-10-66-$((a / 256))-$((a % 256)).$DOMAIN"
  ip netns exec "$ns" "$DNSLOAD" --server 127.0.0.1 --threads 1 --duration 0.01 \
    --name "$name" >/dev/null 2>&1 ||
    ip netns exec "$ns" "$DNSLOAD" --server 127.0.0.1 --threads 1 --duration 0.5 \
      --name "$name" >/dev/null 2>&1 ||
    fail_now "dnsload got no answer for $name while filling the DNS cache"
done
log "soak: $DNS_NAMES names resolved to fill the DNS cache ($DNS_CACHE entries), t=$(elapsed_s)s"
exited "$TRACER_PID" && fail_now "tracer exited: $(head -n 3 "$tmp/err")"

# --- Phase 2: the load, until DURATION. loadgen runs one second past the last sample, so
# the connect counter grows up to it.
lg_seconds=$((DURATION - $(elapsed_s) + 1))
nice -n "$NICE" "$LOADGEN" --threads "$THREADS" --duration "$lg_seconds" >"$tmp/loadgen.out" \
  2>"$tmp/loadgen.err" &
LOADGEN_PID=$!

dns_loop() {
  local i=0 a line
  while [[ ! -e $tmp/stop ]]; do
    a=$((i % DNS_NAMES + 1))
    line=$(ip netns exec "$ns" nice -n "$NICE" "$DNSLOAD" --server 127.0.0.1 --threads 1 \
      --duration "$DNS_BURST" \
      --name "h-10-66-$((a / 256))-$((a % 256)).$DOMAIN" 2>/dev/null | tail -n 1) || true
    echo "${line:-failed}" >>"$tmp/dns.log"
    i=$((i + 1))
    sleep "$DNS_EVERY"
  done
}
exec_loop() {
  local line
  while [[ ! -e $tmp/stop ]]; do
    line=$(nice -n "$NICE" "$EXECLOAD" --threads 1 --duration "$EXEC_BURST" 2>/dev/null |
      tail -n 1) || true
    echo "${line:-failed}" >>"$tmp/exec.log"
    sleep "$EXEC_EVERY"
  done
}
dns_loop &
DNS_LOOP_PID=$!
exec_loop &
EXEC_LOOP_PID=$!

# Every second: scrape (or, every SAMPLE_EVERY seconds, a full sample, which scrapes too).
for ((k = $(elapsed_s) + 1; k <= DURATION; k++)); do
  wait_us=$((T0 + k * 1000000 - $(now_us)))
  ((wait_us <= 0)) || sleep "$((wait_us / 1000000)).$(printf '%06d' $((wait_us % 1000000)))"
  exited "$TRACER_PID" && fail_now "tracer exited during the soak: $(head -n 3 "$tmp/err")"
  if ((k % SAMPLE_EVERY == 0 || k == DURATION)); then
    sample "$k"
    ((k % 60 != 0)) || log "soak: t=${k}s $(tail -n 1 "$samples")"
  else
    scrape
  fi
done

# --- Stop the load, then a last look at the quiet kernel side.
wait "$LOADGEN_PID" || die "loadgen failed: $(cat "$tmp/loadgen.err")"
LOADGEN_PID=
lg_line=$(tail -n 1 "$tmp/loadgen.out")
: >"$tmp/stop"
for p in "$DNS_LOOP_PID" "$EXEC_LOOP_PID"; do wait "$p" || true; done
DNS_LOOP_PID=
EXEC_LOOP_PID=
exited "$TRACER_PID" && fail_now "tracer exited after the load: $(head -n 3 "$tmp/err")"
sleep 1
# conns entries gone without a delete (LRU evictions, or overwritten) = inserted - deleted
# - live. The reads are not atomic, so a connection opened or closed between them skews one
# reading by one: the smallest of three is kept (the real count only ever adds up).
conns_id=
for i in "${!map_names[@]}"; do [[ ${map_names[$i]} != conns ]] || conns_id=${map_ids[$i]}; done
evicted=NA
for _ in 1 2 3; do
  l1=$(map_entries "$conns_id")
  read -r _ _ _ ins del < <(read_bss)
  l2=$(map_entries "$conns_id")
  [[ $l1$l2$ins$del =~ ^[0-9]+$ ]] || continue
  live=$((l1 > l2 ? l1 : l2))
  e=$((ins - del - live))
  ((e >= 0)) || e=0
  [[ $evicted != NA ]] && ((evicted <= e)) || evicted=$e
done
final_fds=("/proc/$TRACER_PID/fd/"*)
final_rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$TRACER_PID/status")
stop_tracer "tracer"
wait "$READER_PID" || true
READER_PID=
T_END=$(now_us)

# --- Figures and verdict.
[[ $lg_line =~ connects=([0-9]+)\ seconds=([0-9.]+)\ rate=([0-9.]+)\ errors=([0-9]+) ]] ||
  die "unexpected loadgen output: $lg_line"
lg_connects=${BASH_REMATCH[1]} lg_seconds=${BASH_REMATCH[2]} lg_rate=${BASH_REMATCH[3]}
lg_errors=${BASH_REMATCH[4]}
read -r dns_bursts dns_queries dns_errors dns_failed < <(awk '
  /queries=/ {n++; for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] += kv[2]}}
  $0 == "failed" {f++}
  END {printf "%d %.0f %.0f %d\n", n, v["queries"], v["errors"], f}' "$tmp/dns.log")
read -r exec_bursts exec_execs exec_errors exec_failed < <(awk '
  /execs=/ {n++; for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] += kv[2]}}
  $0 == "failed" {f++}
  END {printf "%d %.0f %.0f %d\n", n, v["execs"], v["errors"], f}' "$tmp/exec.log")
lines=$(awk '$1 == "lines" {print $2}' "$tmp/counts" 2>/dev/null || true)
lg_out=$(awk '$1 == "loadgen_out" {print $2}' "$tmp/counts" 2>/dev/null || true)
lg_in=$(awk '$1 == "loadgen_in" {print $2}' "$tmp/counts" 2>/dev/null || true)
types=$(awk '$1 == "type" {printf "%s%s=%s", sep, $2, $3; sep = " "}' "$tmp/counts" 2>/dev/null || true)
end_rec=$(grep '^{"type":"end"' "$tmp/rare.jsonl" 2>/dev/null | tail -n 1 || true)
end_lost=NA
[[ -z $end_rec ]] || end_lost=$(jq -r '"\(.lost) \(.lost_execs) \(.lost_dns)"' <<<"$end_rec")
lost_recs=$(grep -c '^{"type":"lost' "$tmp/rare.jsonl" 2>/dev/null || true)

maps_arg=
for i in "${!map_ids[@]}"; do maps_arg+="${map_names[$i]}:${map_types[$i]}:${map_max[$i]} "; done

verdict=$(awk -F, -v warm="$WARMUP" -v slack_kib="$RSS_SLACK_KIB" -v slack_pct="$RSS_SLACK_PCT" \
  -v climb_kib="$CLIMB_KIB" -v full_pct="$MAP_FULL_PCT" -v maps="$maps_arg" \
  -v clk="$(getconf CLK_TCK)" '
function median(lo, hi,    a, n, i, j, t) {
  n = 0
  for (i = lo; i <= hi; i++) a[++n] = rss[i]
  for (i = 2; i <= n; i++) {
    t = a[i]
    for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
    a[j + 1] = t
  }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function fail(msg) { reasons = reasons (reasons == "" ? "" : "; ") msg }
NR == 1 {
  for (i = 1; i <= NF; i++) {
    col[$i] = i
    if ($i ~ /^lost_|^metrics_lost$/) lost[$i] = 0
  }
  ncol = NF
  next
}
{
  split($0, v, ",")
  for (i = col["conns_deleted"] + 1; i <= ncol; i++) {
    if (v[i] != "NA" && (!(i in mx) || v[i] + 0 > mx[i])) { mx[i] = v[i] + 0; mxt[i] = v[1] }
  }
  for (c in lost) if (v[col[c]] != "NA" && v[col[c]] + 0 > lost[c]) lost[c] = v[col[c]] + 0
  nall++
  if (v[1] + 0 < warm) next
  n++
  t[n] = v[1]; rss[n] = v[2]; hwm[n] = v[3]; fds[n] = v[4]; thr[n] = v[5]; cpu[n] = v[6]; con[n] = v[7]
}
END {
  if (n < 4) { print "FAIL: only " n " samples after the warm-up"; exit }
  # RSS: growth from the first sample after the warm-up to the last, and a steady climb.
  rmax = rss[1]; for (i = 2; i <= n; i++) if (rss[i] > rmax) rmax = rss[i]
  growth = rss[n] - rss[1]
  limit = slack_kib; if (rss[1] * slack_pct / 100 > limit) limit = rss[1] * slack_pct / 100
  if (growth > limit) fail(sprintf("RSS grew %d KiB after the warm-up (%d -> %d KiB, limit %d KiB)", growth, rss[1], rss[n], limit))
  q = int(n / 4)
  for (k = 1; k <= 4; k++) qm[k] = median((k - 1) * q + 1, k == 4 ? n : k * q)
  if (qm[1] < qm[2] && qm[2] < qm[3] && qm[3] < qm[4] && qm[4] - qm[1] >= climb_kib)
    fail(sprintf("RSS climbs steadily after the warm-up (quarter medians %d %d %d %d KiB)", qm[1], qm[2], qm[3], qm[4]))
  fmin = fds[1]; fmax = fds[1]; tmin = thr[1]; tmax = thr[1]
  for (i = 2; i <= n; i++) {
    if (fds[i] < fmin) fmin = fds[i]; if (fds[i] > fmax) fmax = fds[i]
    if (thr[i] < tmin) tmin = thr[i]; if (thr[i] > tmax) tmax = thr[i]
  }
  if (fmin != fmax) fail(sprintf("open fds changed after the warm-up (%d-%d)", fmin, fmax))
  if (tmin != tmax) fail(sprintf("thread count changed after the warm-up (%d-%d)", tmin, tmax))
  # Connects counted by the metrics endpoint: > 0 and growing at every sample.
  stall = 0
  for (i = 1; i <= n; i++) {
    if (con[i] == "NA") { fail("no tcpconnect_connects_total at t=" t[i] "s"); break }
    if (i > 1 && con[i] + 0 <= con[i - 1] + 0) { stall = t[i]; break }
  }
  if (con[1] + 0 <= 0) fail("metrics counted no connects")
  if (stall) fail("connects counted by metrics did not grow at t=" stall "s")
  for (c in lost) if (lost[c] > 0) fail(c " = " lost[c])
  # Map fill: hash maps only (their entries are counted); max over every sample.
  nm = split(maps, M, " ")
  mapline = ""
  for (i = 1; i <= nm; i++) {
    split(M[i], p, ":")
    c = col["map_" p[1]]
    if (c) {
      pct = p[3] > 0 ? 100 * mx[c] / p[3] : 0
      fill = sprintf("%d (%.1f%%, t=%ss)", mx[c], pct, mxt[c])
      if (pct >= full_pct) fail(sprintf("map %s reached %d of %d entries (%.1f%%) at t=%ss", p[1], mx[c], p[3], pct, mxt[c]))
    } else fill = p[2] == "ringbuf" ? "- (ring buffer: see lost)" : "- (" p[2] ": not counted)"
    mapline = mapline sprintf("  %-16s %-16s %10d  %s\n", p[1], p[2], p[3], fill)
  }
  cpu_pct = (t[n] > t[1]) ? 100 * (cpu[n] - cpu[1]) / clk / (t[n] - t[1]) : 0
  rate = (t[n] > t[1]) ? (con[n] - con[1]) / (t[n] - t[1]) : 0
  printf "samples: %d (%d after the warm-up of %ds)\n", nall, n, warm
  printf "RSS after warm-up (KiB): first %d  last %d  max %d  growth %+d (limit %d)  quarter medians %d %d %d %d\n", rss[1], rss[n], rmax, growth, limit, qm[1], qm[2], qm[3], qm[4]
  printf "VmHWM at the end: %d KiB\n", hwm[n]
  printf "open fds after warm-up: %d-%d   threads: %d-%d\n", fmin, fmax, tmin, tmax
  printf "tracer CPU after warm-up: %.1f%% of one CPU\n", cpu_pct
  printf "connects counted by metrics: %.0f at the end, %.0f/s after the warm-up\n", con[n], rate
  printf "lost (max over samples):"
  for (c in lost) printf " %s=%d", c, lost[c]
  printf "\nmap fill (max over all samples):\n  %-16s %-16s %10s  %s\n%s", "map", "type", "max_entries", "max entries", mapline
  print (reasons == "" ? "PASS" : "FAIL: " reasons)
}' "$samples")

elapsed=$(((T_END - T0) / 1000000))
printf '\ntcpconnect soak: %ds (warm-up %ds), %s --lifetime --accept -d --metrics 127.0.0.1:PORT -j\n' \
  "$DURATION" "$WARMUP" "$TRACER"
printf 'kernel %s, %s cpus, finished in %ds\n\n' "$(uname -r)" "$(nproc)" "$elapsed"
printf 'load: loadgen %d thread(s): %s connects in %ss = %s/s, %s errors\n' "$THREADS" \
  "$lg_connects" "$lg_seconds" "$lg_rate" "$lg_errors"
printf '      dnsload: %s bursts, %s queries, %s errors, %s failed bursts (%s names)\n' \
  "$dns_bursts" "$dns_queries" "$dns_errors" "$dns_failed" "$DNS_NAMES"
printf '      execload: %s execs to fill the cache, then %s bursts, %s execs, %s errors, %s failed bursts\n' \
  "$filled" "$exec_bursts" "$exec_execs" "$exec_errors" "$exec_failed"
printf 'caches filled before judging: command lines %s entries (%s execs), DNS %s entries (%s names)\n' \
  "$EXEC_CACHE" "$filled" "$DNS_CACHE" "$DNS_NAMES"
printf '      metrics scrapes: %d, failed %d\n' "$SCRAPES" "$SCRAPE_FAILS"
printf 'output: %s lines (%s)\n' "${lines:-NA}" "${types:-none}"
printf 'end record lost/lost_execs/lost_dns: %s; lost records: %s\n' "${end_lost}" "${lost_recs:-0}"
printf 'loadgen close records: out %s, in %s, for %s connects\n' "$lg_out" "$lg_in" "$lg_connects"
printf 'conns entries gone without a delete (load stopped): %s; at the end: rss %s KiB, %d fds;' \
  "$evicted" "$final_rss" "${#final_fds[@]}"
printf ' tracer exit status %d\n' "$TRACER_RC"
printf '%s\n' "$verdict" | sed '$d'
result=$(printf '%s\n' "$verdict" | tail -n 1)
# Checks outside the samples.
extra=
add_reason() { extra+="${extra:+; }$*"; }
((TRACER_RC == 0)) || add_reason "tracer exited with status $TRACER_RC after SIGINT"
[[ -n $end_rec ]] || add_reason "no end record on the tracer's output"
[[ $end_lost == NA || $end_lost == "0 0 0" ]] || add_reason "end record lost/lost_execs/lost_dns: $end_lost"
((${lost_recs:-0} == 0)) || add_reason "$lost_recs lost records on the tracer's output"
((SCRAPE_FAILS == 0)) || add_reason "$SCRAPE_FAILS of $SCRAPES metrics scrapes failed"
((dns_queries > 0)) || add_reason "the DNS load got no answers"
((exec_execs > 0)) || add_reason "the exec load started no processes"
if [[ -n $extra ]]; then
  if [[ $result == PASS ]]; then result="FAIL: $extra"; else result+="; $extra"; fi
fi
# Reported, not judged: both come from a rare race on the kernel side (an accepted
# connection's close record missing; see bench/README.md, Soak), not from growth.
[[ $evicted == 0 ]] || printf 'note: %s conns entries went without a delete\n' "$evicted"
if [[ $lg_out =~ ^[0-9]+$ && $lg_in =~ ^[0-9]+$ ]] && ((lg_out < lg_connects || lg_in < lg_connects)); then
  printf 'note: close records missing for loadgen connections: %d outbound, %d inbound\n' \
    $((lg_out < lg_connects ? lg_connects - lg_out : 0)) $((lg_in < lg_connects ? lg_connects - lg_in : 0))
fi
[[ -z $CSV ]] || printf 'samples: %s\n' "$CSV"
if [[ $result != PASS ]]; then
  printf '%s\n' "$result"
  grep '^WARNING' "$tmp/err" | head -n 5 >&2 || true
  die "$result"
fi
printf 'PASS\n'
