#!/bin/bash
# Package test: builds the Debian package from a configured build directory,
# installs it with dpkg, checks what it installed (binary, its other names
# tcpaccept, tcplife and tcpconnlat, man pages, bash completion, systemd unit,
# docs) and that the installed binary traces a real connection, then removes it
# and checks that nothing of it is left and that the libbpf-tools programs it
# diverted are back.
#
# Usage (as root): tests/package/test_deb.sh BUILD_DIR
#
# The package is removed on every exit path, failures and interrupts included.
# If a package named tcpconnect is already installed, the test refuses to run
# rather than replace it. Needs cpack, dpkg-dev (dpkg-shlibdeps), man-db.
set -euo pipefail

readonly PKG=tcpconnect
readonly BIN=/usr/sbin/tcpconnect
readonly MAN=/usr/share/man/man8/tcpconnect.8.gz
readonly COMPLETION=/usr/share/bash-completion/completions/tcpconnect
readonly UNIT=/usr/lib/systemd/system/tcpconnect-metrics.service
readonly DOCDIR=/usr/share/doc/tcpconnect
# The bcc tools the binary also answers to by name: symlinks to it in
# /usr/sbin, each with its man page and a completion symlink.
readonly NAMES=(tcpaccept tcplife tcpconnlat)
NAME_LIST=$(IFS=,; echo "${NAMES[*]}")
readonly NAME_LIST
readonly COMPLETION_DIR=${COMPLETION%/*}
man_of() { echo "/usr/share/man/man8/$1.8.gz"; }

passed=0
started_ns=$(date +%s%N)
log() { printf 'test_deb: %s\n' "$*" >&2; }
fail() {
  log "FAIL: $*"
  printf 'test_deb: %d passed, 1 failed\n' "$passed"
  exit 1
}
ok() {
  passed=$((passed + 1))
  log "ok: $*"
}

(($# == 1)) || {
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
}
[[ -f $1/CPackConfig.cmake ]] || {
  echo "$0: $1 is not a configured build directory (no CPackConfig.cmake)" >&2
  exit 2
}
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

((EUID == 0)) || fail "needs root (dpkg -i, BPF)"
for tool in cpack dpkg dpkg-deb dpkg-divert dpkg-shlibdeps man bash; do
  command -v "$tool" >/dev/null || fail "$tool not found (apt-get install -y cmake dpkg-dev man-db)"
done

pkg_status() { dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null || true; }
case $(pkg_status) in
  "" | not-installed) ;;
  *) fail "a package named $PKG is already on this machine ($(pkg_status)); remove it first" ;;
esac

work=$(mktemp -d /tmp/test_deb.XXXXXX)
tracer_pid=
touched_dpkg=0
cleanup() {
  local rc=$?
  if [[ -n $tracer_pid ]]; then
    kill "$tracer_pid" 2>/dev/null || true
    wait "$tracer_pid" 2>/dev/null || true
  fi
  if ((touched_dpkg)); then
    case $(pkg_status) in
      "" | not-installed) ;;
      *)
        log "removing $PKG (cleanup)"
        dpkg --purge "$PKG" >/dev/null 2>&1 || log "could not purge $PKG: run dpkg --purge $PKG"
        ;;
    esac
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---- the man page renders without warnings (source tree) -------------------
man_warnings() { # FILE -> stderr of man and groff, empty when clean
  {
    { LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$1" >/dev/null; } 2>&1
    if command -v groff >/dev/null && [[ $1 != *.gz ]]; then groff -ww -man -z "$1" 2>&1; fi
  } || true
}
for name in tcpconnect "${NAMES[@]}"; do
  w=$(man_warnings "$SRC/man/$name.8")
  [[ -z $w ]] || fail "man --warnings on man/$name.8: $w"
done
ok "man/{tcpconnect,$NAME_LIST}.8 render without warnings"

# ---- build the package -----------------------------------------------------
(cd "$BUILD" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$work/pkg") \
  >"$work/cpack.log" 2>&1 || fail "cpack failed: $(tail -n 20 "$work/cpack.log")"
deb=$(find "$work/pkg" -maxdepth 1 -name "${PKG}_*.deb" | head -n 1)
[[ -n $deb ]] || fail "cpack made no ${PKG}_*.deb: $(tail -n 5 "$work/cpack.log")"
ok "built $(basename "$deb")"

# The sixth field is the path (a symlink's line goes on with "-> TARGET").
dpkg-deb -c "$deb" >"$work/listing"
awk '{print $6}' "$work/listing" | sed 's|^\./|/|' >"$work/contents"
for f in "$BIN" "$MAN" "$COMPLETION" "$UNIT" "$DOCDIR/README.md"; do
  grep -qx "$f" "$work/contents" || fail "$f missing from the package: $(cat "$work/contents")"
done
for name in "${NAMES[@]}"; do
  for f in "/usr/sbin/$name" "$(man_of "$name")" "$COMPLETION_DIR/$name"; do
    grep -qx "$f" "$work/contents" || fail "$f missing from the package: $(cat "$work/contents")"
  done
  grep -q " \./usr/sbin/$name -> tcpconnect\$" "$work/listing" ||
    fail "/usr/sbin/$name is not packed as a symlink to tcpconnect: $(grep "/sbin/$name" "$work/listing")"
done
if grep -Ev '^/(usr/?|usr/(sbin|lib|share)(/.*)?)?$' "$work/contents" | grep -q .; then
  fail "unexpected paths in the package: $(grep -Ev '^/(usr/?|usr/(sbin|lib|share)(/.*)?)?$' "$work/contents")"
fi
if grep -Eq 'conn_helper|listen_helper|dns_helper|runtime_tests|unit_tests|loadgen|dnsload' "$work/contents"; then
  fail "test or benchmark programs in the package"
fi
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libbpf1 libstdc++6; do
  [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
ok "package contents and dependencies ($depends)"

# ---- install -----------------------------------------------------------------
# libbpf-tools ships its own /usr/sbin/tcpconnect, tcplife and tcpconnlat,
# which the package diverts: their checksums, to check they come back.
declare -A before_sums
for name in tcpconnect "${NAMES[@]}"; do
  before_sums[$name]=absent
  [[ -e /usr/sbin/$name ]] && before_sums[$name]=$(sha256sum <"/usr/sbin/$name")
done
touched_dpkg=1
if ! dpkg -i "$deb" >"$work/dpkg.log" 2>&1; then
  if grep -q 'dependency problems' "$work/dpkg.log"; then
    log "installing missing dependencies"
    apt-get install -f -y >>"$work/dpkg.log" 2>&1 || fail "apt-get install -f failed: $(tail -n 20 "$work/dpkg.log")"
  else
    fail "dpkg -i failed: $(tail -n 20 "$work/dpkg.log")"
  fi
fi
[[ $(pkg_status) == installed ]] || fail "package not installed after dpkg -i ($(pkg_status))"
ok "dpkg -i"

for f in "$BIN" "$MAN" "$COMPLETION" "$UNIT" "$DOCDIR/README.md"; do
  [[ -e $f ]] || fail "$f not installed"
done
dpkg-query -L "$PKG" | grep -qx "$BIN" || fail "$BIN is not in $PKG's file list"
for name in "${NAMES[@]}"; do
  for f in "$(man_of "$name")" "$COMPLETION_DIR/$name"; do
    [[ -e $f ]] || fail "$f not installed"
  done
  link=/usr/sbin/$name
  [[ -L $link && $(readlink "$link") == tcpconnect ]] ||
    fail "$link is not a symlink to tcpconnect: $(ls -l "$link" 2>&1)"
  dpkg-query -L "$PKG" | grep -qx "$link" || fail "$link is not in $PKG's file list"
done
for name in tcpconnect "${NAMES[@]}"; do
  if [[ ${before_sums[$name]} != absent ]]; then
    [[ -e /usr/sbin/$name.libbpf-tools ]] ||
      fail "the previous /usr/sbin/$name was not kept as /usr/sbin/$name.libbpf-tools"
  fi
done
ok "files installed, /usr/sbin/{$NAME_LIST} -> tcpconnect"

"$BIN" --help >"$work/help" 2>&1 || fail "$BIN --help exited with $?"
grep -q '^Usage: tcpconnect' "$work/help" || fail "$BIN --help: $(head -n 3 "$work/help")"
ok "$BIN --help"

# The binary picks its command line by the name it is called by.
for name in "${NAMES[@]}"; do
  "/usr/sbin/$name" --help >"$work/help" 2>&1 || fail "/usr/sbin/$name --help exited with $?"
  [[ $(head -n 1 "$work/help") == "Usage: $name "* ]] || fail "/usr/sbin/$name --help: $(head -n 3 "$work/help")"
done
ok "/usr/sbin/{$NAME_LIST} --help"

# The binary and the package take their version from the same project() line.
v=$("$BIN" --version 2>&1) || fail "$BIN --version exited with $?"
deb_version=$(dpkg-query -W -f='${Version}' "$PKG")
[[ $v == tcpconnect\ * && $deb_version == "${v#tcpconnect }"* ]] ||
  fail "$BIN --version: '$v', package version $deb_version"
ok "$BIN --version: $v"

[[ $(man -w tcpconnect 2>/dev/null) == "$MAN" ]] || fail "man -w tcpconnect: $(man -w tcpconnect 2>&1)"
w=$(man_warnings "$MAN")
[[ -z $w ]] || fail "man --warnings on $MAN: $w"
LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$MAN" 2>/dev/null | grep -q '^SYNOPSIS' || fail "man -l $MAN shows no SYNOPSIS"
for name in "${NAMES[@]}"; do
  man=$(man_of "$name")
  [[ $(man -w "$name" 2>/dev/null) == "$man" ]] || fail "man -w $name: $(man -w "$name" 2>&1)"
  w=$(man_warnings "$man")
  [[ -z $w ]] || fail "man --warnings on $man: $w"
  LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$man" 2>/dev/null | grep -q '^SYNOPSIS' || fail "man -l $man shows no SYNOPSIS"
done
ok "man pages installed and render"

reply=$(bash -c 'source "$1"; COMP_WORDS=(tcpconnect --attach ""); COMP_CWORD=2; _tcpconnect; echo "${COMPREPLY[*]}"' _ "$COMPLETION")
[[ $reply == "auto tp_btf raw_tp tracepoint" ]] || fail "completion of --attach: '$reply'"
# bash-completion sources the file named like the command; each name's file
# must register it, with that tool's options. Per name: a prefix and what it
# completes to.
declare -A completes=(
  [tcpaccept]="--t|--time --timestamp"
  [tcplife]="--r|--remoteport --ringbuf-size --runtime-socket"
  [tcpconnlat]="-L|-L"
)
for name in "${NAMES[@]}"; do
  reply=$(bash -c 'source "$1"; complete -p "$2" >/dev/null || exit 1
    COMP_WORDS=("/usr/sbin/$2" "$3"); COMP_CWORD=1; _tcpconnect; echo "${COMPREPLY[*]}"' \
    _ "$COMPLETION_DIR/$name" "$name" "${completes[$name]%%|*}") ||
    fail "$COMPLETION_DIR/$name does not register a completion for $name"
  [[ $reply == "${completes[$name]#*|}" ]] || fail "completion of $name ${completes[$name]%%|*}: '$reply'"
done
ok "bash completion"

if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify --man=no "$UNIT" >"$work/verify" 2>&1 || fail "systemd-analyze verify: $(cat "$work/verify")"
  ok "systemd unit verifies"
  # The unit's sandbox scores 2.3 ("OK"; 3.4 before MemoryMax=, TasksMax= and
  # the system call deny list): a directive lost in an edit shows here.
  if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
    systemd-analyze security --offline=yes --threshold=25 --no-pager "$UNIT" >"$work/security" 2>&1 ||
      fail "systemd-analyze security: exposure over 2.5: $(grep -i 'overall' "$work/security")"
    ok "systemd unit sandbox: exposure $(grep -io 'overall exposure level[^:]*: [0-9.]* [a-z]*' "$work/security" | sed 's/.*: //')"
  fi
fi

# ---- trace a connection with the installed binary -------------------------
# A connect to a closed loopback port: refused, but traced like any other.
port=$((20000 + RANDOM % 20000))
timeout 30 "$BIN" -j --duration 3 >"$work/trace.json" 2>"$work/trace.err" &
tracer_pid=$!
for _ in $(seq 200); do
  grep -q '"type":"start"' "$work/trace.json" 2>/dev/null && break
  kill -0 "$tracer_pid" 2>/dev/null || break
  sleep 0.05
done
grep -q '"type":"start"' "$work/trace.json" || fail "tracer not ready: $(cat "$work/trace.err")"
client_pid=$(bash -c 'echo $$; exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$port" 2>/dev/null || true)
rc=0
wait "$tracer_pid" || rc=$?
tracer_pid=
((rc == 0)) || fail "tracer exited with $rc: $(cat "$work/trace.err")"
grep -q '"type":"end"' "$work/trace.json" || fail "no end record: $(tail -n 3 "$work/trace.json")"
grep '"type":"connect"' "$work/trace.json" | grep "\"pid\":$client_pid," | grep -q "\"dport\":$port," ||
  fail "no connect record for pid $client_pid to port $port in: $(cat "$work/trace.json")"
ok "installed binary traced pid $client_pid -> 127.0.0.1:$port"

# ---- remove ----------------------------------------------------------------
dpkg -r "$PKG" >"$work/dpkg-r.log" 2>&1 || fail "dpkg -r failed: $(tail -n 20 "$work/dpkg-r.log")"
case $(pkg_status) in
  "" | not-installed | config-files) ;;
  *) fail "package still installed after dpkg -r ($(pkg_status))" ;;
esac
dpkg --purge "$PKG" >/dev/null 2>&1 || true
touched_dpkg=0
for f in "$MAN" "$COMPLETION" "$UNIT" "$DOCDIR/README.md"; do
  [[ ! -e $f ]] || fail "$f left after dpkg -r"
done
restored=()
for name in tcpconnect "${NAMES[@]}"; do
  for f in "$(man_of "$name")" "$COMPLETION_DIR/$name" "/usr/sbin/$name.libbpf-tools"; do
    [[ ! -e $f && ! -L $f ]] || fail "$f left after dpkg -r"
  done
  bin=/usr/sbin/$name
  if [[ ${before_sums[$name]} == absent ]]; then
    [[ ! -e $bin && ! -L $bin ]] || fail "$bin left after dpkg -r"
  else
    [[ -f $bin && ! -L $bin && $(sha256sum <"$bin") == "${before_sums[$name]}" ]] ||
      fail "the previous $bin was not put back"
    restored+=("$bin")
  fi
  ! dpkg-divert --list "$bin" | grep -q "by $PKG" || fail "diversion left: $(dpkg-divert --list "$bin")"
done
ok "dpkg -r removed everything${restored[*]:+, previous ${restored[*]} restored}"

elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
printf 'test_deb: %d passed, 0 failed (%d.%01d s)\n' "$passed" $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100))
