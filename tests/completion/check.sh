#!/bin/bash
# Completion test: completion/tcpconnect.bash registers every name the binary
# answers to and offers each name its own options and option values. No root,
# no bash-completion package: the script is sourced as that package would.
#
# Usage: tests/completion/check.sh SOURCE_DIR
set -euo pipefail

(($# == 1)) || {
  echo "usage: $0 SOURCE_DIR" >&2
  exit 2
}
readonly SCRIPT=$1/completion/tcpconnect.bash

failed=0
# complete WORD... : what the script offers for the last word of a command line.
complete_line() {
  bash -c 'source "$1"; shift
    complete -p "${1##*/}" >/dev/null || { echo "NOT REGISTERED"; exit 0; }
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _tcpconnect
    echo "${COMPREPLY[*]}"' _ "$SCRIPT" "$@"
}
# expect WANT WORD...
expect() {
  local want=$1 got
  shift
  got=$(complete_line "$@")
  if [[ $got != "$want" ]]; then
    printf 'completion: FAIL: %s -> "%s", want "%s"\n' "$*" "$got" "$want" >&2
    failed=$((failed + 1))
  fi
}

# Each name's own options; a path to the command works as well as its name.
expect '--time --timestamp' tcpaccept --t
expect '--remoteport --ringbuf-size --runtime-socket' /usr/sbin/tcplife --r
expect '--wide' tcplife --w
expect '--lport' tcpconnlat --lp
expect '--lport --lifetime' tcpconnect --l
# Options of the bcc tool of another name are not offered.
expect '' tcpaccept --lif
expect '' tcpconnlat --csv
# Ours are offered to every name.
expect '--csv --cgroup --cgroupmap --container --container-name --cmdline' tcplife --c
expect '--mntnsmap --metrics --metrics-top --metrics-container' tcpconnlat --m
# Values: tcplife's -L and -D take ports (nothing to offer), tcpconnlat's -L
# takes none (the next word is an option again).
expect '' tcplife -L --l
expect '' tcplife -D --l
expect '--lport' tcpconnlat -L --l
expect '' tcpaccept -P --l
expect 'auto tp_btf raw_tp tracepoint' tcpaccept --attach ''
expect '--attach=raw_tp' tcpconnlat --attach=r
# tcpconnlat's min_ms: nothing to offer.
expect '' tcpconnlat 1

if ((failed)); then
  echo "completion: $failed failed" >&2
  exit 1
fi
echo "completion: ok"
