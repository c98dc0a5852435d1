#!/usr/bin/env bash
# cri-runtime.sh start DIR | stop DIR
# A private containerd with its CRI plugin for the container-name tests, everything under DIR
# (config, root, state, socket DIR/containerd.sock), so it never meets a system containerd:
#   start: writes the config, makes the test image (a busybox-static root as an OCI layout
#          tarball, made here: no registry), starts containerd, imports the image into the CRI's
#          namespace (k8s.io) as localhost/tcpconnect-cri-busybox:1; it is also the sandbox image,
#          its default command sleeps. Prints the socket path.
#   stop:  removes every pod through the CRI, stops containerd and the shims it left (they
#          outlive it by design), unmounts what is left under DIR, removes the pods' cgroups.
# Pods run with the node's network (no CNI) under the cgroup parent DIR/cgroup-parent names.
set -euo pipefail
cmd=${1:?usage: cri-runtime.sh start|stop DIR} DIR=${2:?usage: cri-runtime.sh start|stop DIR}
HELPER=${CRI_HELPER:?CRI_HELPER: the cri_helper binary}
SOCK=$DIR/containerd.sock
IMAGE=localhost/tcpconnect-cri-busybox:1

image() {
  local w=$DIR/image r l diff ldig lsz cdig csz mdig msz arch
  rm -rf "$w"
  r=$w/root l=$w/oci
  mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/proc" "$r/sys" "$r/dev" "$l/blobs/sha256"
  cp /bin/busybox "$r/bin/busybox"
  for a in sh sleep nc wget; do ln -s busybox "$r/bin/$a"; done
  echo 'root:x:0:0:root:/:/bin/sh' >"$r/etc/passwd"
  chmod 1777 "$r/tmp"
  tar -C "$r" --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -cf "$w/layer.tar" .
  diff=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
  gzip -n "$w/layer.tar"
  ldig=$(sha256sum "$w/layer.tar.gz" | cut -d' ' -f1) lsz=$(stat -c %s "$w/layer.tar.gz")
  mv "$w/layer.tar.gz" "$l/blobs/sha256/$ldig"
  arch=$(dpkg --print-architecture)
  printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sleep","2147483647"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$arch" "$diff" >"$w/config.json"
  cdig=$(sha256sum "$w/config.json" | cut -d' ' -f1) csz=$(stat -c %s "$w/config.json")
  mv "$w/config.json" "$l/blobs/sha256/$cdig"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$cdig" "$csz" "$ldig" "$lsz" >"$w/manifest.json"
  mdig=$(sha256sum "$w/manifest.json" | cut -d' ' -f1) msz=$(stat -c %s "$w/manifest.json")
  mv "$w/manifest.json" "$l/blobs/sha256/$mdig"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$l/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s"}}]}' \
    "$mdig" "$msz" "$IMAGE" >"$l/index.json"
  tar -C "$l" -cf "$DIR/image.tar" oci-layout index.json blobs
  rm -rf "$w"
}

start() {
  mkdir -p "$DIR/root" "$DIR/state" "$DIR/cni/bin" "$DIR/cni/conf" "$DIR/logs" "$DIR/runc"
  echo "/tcpconnect-cri-$$" >"$DIR/cgroup-parent"
  # restrict_oom_score_adj: the sandbox asks for -998, which needs CAP_SYS_RESOURCE; machines
  # (and containers) without it fail every sandbox. No AppArmor here either.
  cat >"$DIR/config.toml" <<CFG
version = 2
root = "$DIR/root"
state = "$DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMAGE"
  disable_apparmor = true
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "$DIR/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$DIR/cni/bin"
    conf_dir = "$DIR/cni/conf"
CFG
  image
  setsid containerd --config "$DIR/config.toml" >"$DIR/containerd.log" 2>&1 </dev/null &
  echo $! >"$DIR/containerd.pid"
  for _ in $(seq 200); do
    ctr --address "$SOCK" version >/dev/null 2>&1 && break
    sleep 0.05
  done
  ctr --address "$SOCK" version >/dev/null 2>&1 || {
    tail -n 20 "$DIR/containerd.log" >&2
    echo "cri-runtime: containerd did not start" >&2
    exit 1
  }
  ctr --address "$SOCK" -n k8s.io images import --snapshotter overlayfs "$DIR/image.tar" >/dev/null
  echo "$SOCK"
}

stop() {
  [[ -d $DIR ]] || return 0
  if [[ -S $SOCK ]] && ctr --address "$SOCK" version >/dev/null 2>&1; then
    for sb in $(ctr --address "$SOCK" -n k8s.io containers ls -q 'labels."io.cri-containerd.kind"==sandbox'); do
      timeout 30 "$HELPER" "$SOCK" rm "$sb" || true
    done
  fi
  if [[ -f $DIR/containerd.pid ]]; then
    local p
    p=$(cat "$DIR/containerd.pid")
    kill "$p" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.05
    done
    kill -9 "$p" 2>/dev/null || true
    rm -f "$DIR/containerd.pid"
  fi
  pkill -9 -f "containerd-shim-runc-v2 .*-address $SOCK" 2>/dev/null || true
  local m
  for m in $(awk -v d="$DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
  if [[ -f $DIR/cgroup-parent ]]; then
    local parent c
    parent=$(cat "$DIR/cgroup-parent")
    # What the CRI could not stop (containerd gone): the pods' processes, by their cgroups.
    for c in /sys/fs/cgroup/*"$parent" /sys/fs/cgroup"$parent"; do
      [[ -d $c ]] || continue
      find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | xargs -r kill -9 2>/dev/null || true
    done
    sleep 0.2
    for c in /sys/fs/cgroup/*"$parent" /sys/fs/cgroup"$parent"; do
      [[ -d $c ]] || continue
      find "$c" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
      rmdir "$c" 2>/dev/null || true
    done
  fi
  # containerd keeps its shims' sockets under /run/containerd whatever its config says: removed
  # only when empty, so a system containerd's files are never touched.
  rmdir /run/containerd/s /run/containerd/fifo /run/containerd/runc/k8s.io /run/containerd/runc \
    /run/containerd 2>/dev/null || true
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: cri-runtime.sh start|stop DIR" >&2
    exit 2
    ;;
esac
