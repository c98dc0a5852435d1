#!/bin/bash
# Container image test: builds the tool's image with scripts/container-image,
# runs it with podman the way docs/deployment.md says (host PID namespace, no
# network, capabilities BPF, PERFMON and DAC_READ_SEARCH only, a seccomp
# profile that lets those two make the bpf() and perf_event_open() calls,
# tracefs and the cgroup v2 hierarchy read-only, podman's API socket), and
# checks that it traces a connection made on the host and one made from
# another container, the latter with that container's name.
#
# Usage (as root): tests/image/test_image.sh BUILD_DIR
#
# Everything it starts (the API service, a web server, containers, the busybox
# image it imports) is removed on every exit path; the tool's image
# (localhost/tcpconnect:VERSION and :latest) stays. Exits 77 (skipped) when not
# root or a tool is missing, unless CI=true, where that is a failure. Needs
# podman, runc, mmdebstrap, a static busybox, jq, curl, cpack, dpkg-dev.
set -euo pipefail

# What the CONTAINER column must show for the container's connection: "name"
# (the tool is given podman's API socket with --runtime-socket and shows the
# container's name) or "id" (the short ID taken from its cgroup; the
# socket is not passed).
CONTAINER_COLUMN=${CONTAINER_COLUMN:-name}

readonly WEB_NAME=tc-img-web
readonly SOCKET_IN=/run/podman/podman.sock
# This machine's podman needs runc (crun refuses hybrid cgroups) and explicit
# limits (the defaults are refused); both are harmless elsewhere.
readonly PODMAN_RUN=(podman run --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

passed=0
started=$SECONDS
log() { printf 'test_image: %s\n' "$*" >&2; }
fail() {
  log "FAIL: $*"
  printf 'test_image: %d passed, 1 failed\n' "$passed"
  exit 1
}
ok() {
  passed=$((passed + 1))
  log "ok: $*"
}
skip() {
  if [[ ${CI:-} == true ]]; then fail "$* (CI=true: not skipped)"; fi
  log "SKIP: $*"
  exit 77
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
case $CONTAINER_COLUMN in
  name | id) ;;
  *) fail "CONTAINER_COLUMN must be name or id, not '$CONTAINER_COLUMN'" ;;
esac

((EUID == 0)) || skip "needs root (podman's system storage, BPF)"
for tool in podman runc mmdebstrap jq curl cpack dpkg-deb flock; do
  command -v "$tool" >/dev/null || skip "$tool not found (apt-get install podman runc mmdebstrap jq curl cmake dpkg-dev)"
done
busybox=
for b in /usr/bin/busybox /bin/busybox; do
  if [[ -x $b ]] && ! ldd "$b" >/dev/null 2>&1; then
    busybox=$b
    break
  fi
done
[[ -n $busybox ]] || skip "no statically linked busybox (apt-get install busybox-static)"
readonly SECCOMP_DEFAULT=/usr/share/containers/seccomp.json
[[ -f $SECCOMP_DEFAULT ]] || skip "$SECCOMP_DEFAULT not found (podman's default seccomp profile)"
cgroup2=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
[[ -n $cgroup2 ]] || skip "no cgroup v2 hierarchy mounted"
# The tracer's container gets the host's tracefs; on the host, the tool run as
# root would mount it the same way.
[[ -d /sys/kernel/tracing/events ]] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null ||
  fail "tracefs is not mounted at /sys/kernel/tracing and cannot be"

work=$(mktemp -d /tmp/test_image.XXXXXX)
bb_image=localhost/tc-img-busybox:$$
tracer_name=tc-img-tracer-$$
service_pid=
httpd_pid=
tracer_pid=
bb_imported=0
cleanup() {
  local rc=$?
  set +e
  # Containers first (the tracer's removal ends its podman client), then
  # what they used.
  podman rm -f -i -t 0 "$tracer_name" "$WEB_NAME" >/dev/null 2>&1
  if [[ -n $tracer_pid ]]; then
    kill "$tracer_pid" 2>/dev/null
    wait "$tracer_pid" 2>/dev/null
  fi
  ((bb_imported)) && podman rmi -f "$bb_image" >/dev/null 2>&1
  for pid in $service_pid $httpd_pid; do
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# A container of that name left by an earlier run that was killed would make
# `podman run --name` fail.
if podman container exists "$WEB_NAME"; then
  log "removing a leftover container $WEB_NAME"
  podman rm -f -t 0 "$WEB_NAME" >/dev/null
fi

# ---- the image -----------------------------------------------------------------
t=$SECONDS
BUILD=$BUILD "$SRC/scripts/container-image" >"$work/image.out" 2>"$work/image.err" ||
  fail "scripts/container-image failed: $(tail -n 20 "$work/image.err")"
image=$(tail -n 1 "$work/image.out")
[[ $image == localhost/tcpconnect:* ]] || fail "scripts/container-image printed '$image', not an image name"
image_seconds=$((SECONDS - t))
podman image exists localhost/tcpconnect:latest || fail "localhost/tcpconnect:latest missing after the build"
[[ $(podman image inspect --format '{{.Config.Entrypoint}}' "$image") == "[/usr/sbin/tcpconnect]" ]] ||
  fail "entry point of $image: $(podman image inspect --format '{{.Config.Entrypoint}}' "$image")"
size=$(podman image inspect --format '{{.Size}}' "$image")
ok "built $image in ${image_seconds} s ($((size / 1000000)) MB)"

# The binary's version in the image is the tag.
v=$("${PODMAN_RUN[@]}" --rm --network none "$image" --version 2>&1) || fail "$image --version: $v"
[[ "localhost/tcpconnect:${v#tcpconnect }" == "$image" ]] || fail "$image --version says '$v'"
if [[ $CONTAINER_COLUMN == name ]]; then
  help=$("${PODMAN_RUN[@]}" --rm --network none "$image" --help 2>&1) || fail "$image --help: $help"
  [[ $help == *--runtime-socket* ]] ||
    fail "the image's tcpconnect has no --runtime-socket: run with CONTAINER_COLUMN=id to expect short IDs"
fi
ok "$image runs: $v"

# ---- what the tracer uses: API socket, seccomp profile, a server, a client image
podman system service --time=0 "unix://$work/podman.sock" >"$work/service.log" 2>&1 &
service_pid=$!
for _ in $(seq 100); do
  [[ $(curl -s --max-time 1 --unix-socket "$work/podman.sock" http://d/_ping 2>/dev/null) == OK ]] && break
  kill -0 "$service_pid" 2>/dev/null || fail "podman system service exited: $(cat "$work/service.log")"
  sleep 0.1
done
[[ $(curl -s --max-time 1 --unix-socket "$work/podman.sock" http://d/_ping) == OK ]] ||
  fail "podman's API does not answer on $work/podman.sock: $(cat "$work/service.log")"

# podman 4.3's default profile allows bpf() and perf_event_open() only with
# CAP_SYS_ADMIN; this one, as docs/deployment.md shows, also with CAP_BPF and
# CAP_PERFMON respectively (as Docker's default profile does since 23.0).
jq '.syscalls |= map(if .action == "SCMP_ACT_ERRNO" then .names -= ["bpf", "perf_event_open"] else . end)
  | .syscalls += [
      {names: ["bpf"], action: "SCMP_ACT_ALLOW", includes: {caps: ["CAP_BPF"]}},
      {names: ["perf_event_open"], action: "SCMP_ACT_ALLOW", includes: {caps: ["CAP_PERFMON"]}},
      {names: ["bpf"], action: "SCMP_ACT_ERRNO", errnoRet: 1, excludes: {caps: ["CAP_SYS_ADMIN", "CAP_BPF"]}},
      {names: ["perf_event_open"], action: "SCMP_ACT_ERRNO", errnoRet: 1, excludes: {caps: ["CAP_SYS_ADMIN", "CAP_PERFMON"]}}]' \
  "$SECCOMP_DEFAULT" >"$work/seccomp.json" || fail "cannot write the seccomp profile from $SECCOMP_DEFAULT"

mkdir -p "$work/www" "$work/bb/bin"
echo hello >"$work/www/index.html"
port=
for _ in $(seq 20); do
  p=$((20000 + RANDOM % 20000))
  "$busybox" httpd -f -p "127.0.0.1:$p" -h "$work/www" >"$work/httpd.log" 2>&1 &
  httpd_pid=$!
  for _ in $(seq 20); do
    curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$p/" 2>/dev/null && break
    kill -0 "$httpd_pid" 2>/dev/null || break
    sleep 0.05
  done
  if curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$p/" 2>/dev/null; then
    port=$p
    break
  fi
  kill "$httpd_pid" 2>/dev/null
  wait "$httpd_pid" 2>/dev/null || true
  httpd_pid=
done
[[ -n $port ]] || fail "no web server could listen on 127.0.0.1: $(cat "$work/httpd.log")"

cp "$busybox" "$work/bb/bin/busybox"
for applet in sh wget; do ln -s busybox "$work/bb/bin/$applet"; done
tar -C "$work/bb" -cf "$work/bb.tar" .
bb_imported=1
podman import --quiet "$work/bb.tar" "$bb_image" >/dev/null 2>"$work/import.err" ||
  fail "podman import of busybox: $(cat "$work/import.err")"
ok "podman API on $work/podman.sock, web server on 127.0.0.1:$port, $bb_image"

# ---- trace: one connection from the host, one from a container ----------------
# The privileges of docs/deployment.md, "Running as a container".
run_tracer=(
  "${PODMAN_RUN[@]}" --rm --name "$tracer_name"
  --pid host --network none
  --cap-drop ALL --cap-add BPF,PERFMON,DAC_READ_SEARCH
  --security-opt "seccomp=$work/seccomp.json" --security-opt no-new-privileges --read-only
  -v /sys/kernel/tracing:/sys/kernel/tracing:ro
  -v "$cgroup2:$cgroup2:ro"
  -v "$work/podman.sock:$SOCKET_IN"
  "$image" --container
)
[[ $CONTAINER_COLUMN == name ]] && run_tracer+=(--runtime-socket "$SOCKET_IN")

# Other BPF tests take this lock; the processes started under it do not keep it.
exec {lock_fd}>/tmp/rt.lock
t=$SECONDS
flock "$lock_fd"
lock_seconds=$((SECONDS - t))
((lock_seconds == 0)) || log "waited ${lock_seconds} s for /tmp/rt.lock"
t=$SECONDS
"${run_tracer[@]}" >"$work/trace.out" 2>"$work/trace.err" {lock_fd}>&- &
tracer_pid=$!
for _ in $(seq 600); do
  grep -q '^Tracing' "$work/trace.err" 2>/dev/null && break
  kill -0 "$tracer_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q '^Tracing' "$work/trace.err" || fail "no Tracing banner from the tracer: $(cat "$work/trace.err")"
ok "tracer container started in $((SECONDS - t)) s"

curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$port/" || fail "curl to 127.0.0.1:$port failed"
"${PODMAN_RUN[@]}" --name "$WEB_NAME" --network host "$bb_image" \
  wget -q -O /dev/null "http://127.0.0.1:$port/" {lock_fd}>&- >"$work/web.log" 2>&1 ||
  fail "wget in container $WEB_NAME failed: $(cat "$work/web.log")"
web_id=$(podman container inspect --format '{{.Id}}' "$WEB_NAME")
case $CONTAINER_COLUMN in
  name) want=$WEB_NAME ;;
  id) want=${web_id:0:12} ;;
esac

# Ctrl-C: the tracer prints what it has and exits 0. Events are printed as
# they come, so wait for the container's line first (at most 10 s).
for _ in $(seq 100); do
  [[ -n $(awk -v p="$port" '$2 == "wget" && $6 == p' "$work/trace.out") ]] && break
  sleep 0.1
done
podman kill --signal INT "$tracer_name" >/dev/null {lock_fd}>&- || fail "podman kill --signal INT $tracer_name failed"
rc=0
wait "$tracer_pid" || rc=$?
tracer_pid=
flock -u "$lock_fd"
exec {lock_fd}>&-
((rc == 0)) || fail "tracer exited with $rc: $(cat "$work/trace.err")"
! grep -q '^tcpconnect: warning' "$work/trace.err" || fail "tracer warned: $(grep '^tcpconnect: warning' "$work/trace.err")"
log "tracer output:"
sed 's/^/    /' "$work/trace.out" >&2

# Columns: PID COMM IP SADDR DADDR DPORT NETNS CONTAINER
read -r header <"$work/trace.out" || true
[[ $header == "PID "*" DPORT "*" NETNS "*" CONTAINER" ]] || fail "header: '$header'"
[[ -n $(awk -v p="$port" '$2 == "curl" && $5 == "127.0.0.1" && $6 == p && $8 == "-"' "$work/trace.out") ]] ||
  fail "no line for the host's curl to 127.0.0.1:$port with CONTAINER '-'"
ok "the host's connection: curl -> 127.0.0.1:$port, no container"
line=$(awk -v p="$port" '$2 == "wget" && $6 == p' "$work/trace.out")
[[ -n $line ]] || fail "no line for wget in $WEB_NAME to 127.0.0.1:$port"
got=$(awk '{print $8}' <<<"$line")
[[ $got == "$want" ]] || fail "CONTAINER of the wget line is '$got', want '$want' ($CONTAINER_COLUMN of $WEB_NAME, ID $web_id)"
ok "the container's connection: wget -> 127.0.0.1:$port in $want"

printf 'test_image: %d passed, 0 failed (image %d s, lock wait %d s, total %d s)\n' \
  "$passed" "$image_seconds" "$lock_seconds" $((SECONDS - started))
