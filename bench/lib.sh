# shellcheck shell=bash
# Helpers shared by the bench scripts (sourced, not run).

die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}
log() { echo "$*" >&2; }

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
