# shellcheck shell=bash
# Helpers shared by the bench scripts (sourced, not run).

die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}
log() { echo "$*" >&2; }
# For bad settings (usage errors): exit status 2, as the tools use.
die_usage() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}

# Fails unless every named variable holds a whole number.
require_whole_numbers() {
  local v
  for v in "$@"; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
  done
}

# Microseconds since the epoch, without forking (bash 5).
now_us() { echo "${EPOCHREALTIME/./}"; }

# True once the process has exited (gone, or a zombie not yet reaped).
exited() {
  local st
  st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null || true)
  [[ -z $st || $st == Z ]]
}

# Kills and reaps a background job if it is still running.
kill_job() {
  if [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; then
    kill "-${2:-KILL}" "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}

# Stops the tracer whose PID is in TRACER_PID with SIGINT, as Ctrl-C would, and reaps
# it; dies if it has not exited within STOP_TIMEOUT seconds. Sets TRACER_RC to its exit
# status (and TRACER_FAILED=1 with a warning when it is not 0) and clears TRACER_PID.
# $1 names the tracer in the messages.
stop_tracer() {
  kill -INT "$TRACER_PID"
  local deadline=$(($(now_us) + STOP_TIMEOUT * 1000000))
  while ! exited "$TRACER_PID"; do
    if (($(now_us) >= deadline)); then
      kill_job "$TRACER_PID"
      TRACER_PID=
      die "$1 did not exit within ${STOP_TIMEOUT}s of SIGINT (killed)"
    fi
    sleep 0.01
  done
  TRACER_RC=0
  wait "$TRACER_PID" || TRACER_RC=$?
  TRACER_PID=
  if ((TRACER_RC != 0)); then
    log "warning: $1 exited with status $TRACER_RC after SIGINT"
    # shellcheck disable=SC2034  # read by the scripts that source this file
    TRACER_FAILED=1
  fi
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
  die "no free TCP port in 20000-29999"
}
