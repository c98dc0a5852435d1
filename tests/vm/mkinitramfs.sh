#!/bin/sh
# mkinitramfs.sh KVER KROOT OUT [ROOTFS WORK]
# Builds a small busybox initramfs for kernel KVER (unpacked under KROOT, see
# lib.sh): it mounts the host's / (virtio-9p, or virtio-fs for kernels built
# without 9p such as Debian's cloud kernel; read-only) under a tmpfs overlay, so the guest sees this machine's files and can write anywhere
# (changes are thrown away; /tmp too, so a checkout under /tmp is visible to
# the guest), mounts what the runtime tests use (proc, sys,
# dev, tracefs, debugfs, bpffs, cgroup2, /run), puts the kernel's modules at
# /lib/modules/KVER for on-demand loading (veth, netem, ...), runs the command
# from the kernel command line (guestcmd=<base64>) as root and powers off.
# With ROOTFS (a foreign architecture's user space, lib.sh's vm_make_rootfs), the lower
# directory is that instead of the host's / (same tag, hostroot, run-in-guest.sh shares it),
# its busybox is the initramfs's, the kernel's modules are in its /lib/modules, and the
# host's directory WORK (tag work: the checkout and the cross-built binaries, at the paths
# they were built with) is mounted read-only at WORK under a tmpfs overlay of its own.
set -eu
KVER=$1 KROOT=$2 OUT=$3 ROOTFS=${4:-} WORK=${5:-}
D=$(mktemp -d "${OUT%/*}/irfs.XXXXXX")
trap 'rm -rf "$D"' EXIT
mkdir -p "$D/bin" "$D/proc" "$D/sys" "$D/dev" "$D/lower" "$D/rw" "$D/newroot" "$D/modules"
cp "$ROOTFS/bin/busybox" "$D/bin/busybox"
# How the host's files reach the guest (run-in-guest.sh reads OUT.fs): virtio-9p where the
# kernel has it, else virtio-fs.
if modprobe -d "$KROOT" -S "$KVER" --show-depends 9p >/dev/null 2>&1; then
  FS=9p MODS="virtio_pci 9pnet_virtio 9p overlay"
else
  FS=virtiofs MODS="virtio_pci virtiofs overlay"
fi
echo "$FS" >"$D/modules/fs"
# What the initramfs itself needs, in the load order of the kernel's modules.dep.
for mod in $MODS; do
  modprobe -d "$KROOT" -S "$KVER" --show-depends "$mod"
done | awk '$1=="insmod" && !seen[$2]++ {print $2}' | while read -r f; do
  b=$(basename "$f"); b=${b%.xz}; b=${b%.zst}
  case $f in
    *.xz) xz -dc "$f" >"$D/modules/$b" ;;
    *.zst) zstd -qdc "$f" >"$D/modules/$b" ;;
    *) cp "$f" "$D/modules/$b" ;;
  esac
  echo "${b%.ko}" >>"$D/modules/order"
done
[ -s "$D/modules/order" ] || { echo "mkinitramfs: no modules found for $KVER in $KROOT" >&2; exit 1; }
if [ -n "$ROOTFS" ]; then
  echo "/lib/modules/$KVER" >"$D/modules/dir"
  echo "$WORK" >"$D/modules/work"
else
  echo "$KROOT/lib/modules/$KVER" >"$D/modules/dir"
fi
cat >"$D/init" <<'INIT'
#!/bin/busybox sh
export PATH=/bin
busybox mount -t proc proc /proc
busybox mount -t sysfs sys /sys
busybox mount -t devtmpfs dev /dev
for m in $(busybox cat /modules/order); do busybox insmod /modules/$m.ko; done
die() { echo "GUEST-INIT-ERROR: $*"; busybox poweroff -f; }
FS=$(busybox cat /modules/fs)
if [ "$FS" = 9p ]; then
  busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower
else
  busybox mount -t virtiofs -o ro hostroot /lower
fi || { busybox dmesg | busybox tail -15; die "$FS mount failed"; }
busybox mount -t tmpfs -o mode=755 tmpfs /rw
busybox mkdir -p /rw/upper /rw/work
busybox mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
  die "overlay mount failed"
R=/newroot
# A foreign root file system: the host's /work beside it, writable the same way.
if [ -e /modules/work ]; then
  W=$(busybox cat /modules/work)
  busybox mkdir -p /wlower /rw/wupper /rw/wwork $R$W
  busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose work /wlower ||
    die "9p mount of $W failed"
  busybox mount -t overlay -o lowerdir=/wlower,upperdir=/rw/wupper,workdir=/rw/wwork overlay $R$W ||
    die "overlay mount of $W failed"
fi
busybox mount -t proc proc $R/proc
busybox mount -t sysfs sys $R/sys
busybox mount -t devtmpfs dev $R/dev
busybox mkdir -p $R/dev/pts $R/dev/shm
busybox mount -t devpts devpts $R/dev/pts
busybox mount -t tmpfs tmpfs $R/dev/shm
busybox mount -t tmpfs -o mode=755 tmpfs $R/run
busybox mount -t debugfs debugfs $R/sys/kernel/debug
busybox mount -t tracefs tracefs $R/sys/kernel/tracing 2>/dev/null || true
busybox mount -t bpf bpf $R/sys/fs/bpf
busybox mount -t cgroup2 cgroup2 $R/sys/fs/cgroup
# The kernel's modules from the unpacked package, where modprobe looks.
KMODS=$(busybox cat /modules/dir)
busybox mkdir -p $R/lib/modules/$(busybox uname -r)
[ "$KMODS" = /lib/modules/$(busybox uname -r) ] ||
  busybox mount --bind $R$KMODS $R/lib/modules/$(busybox uname -r) || die "no modules at $KMODS"
# The kernel runs its module loader in the root of PID 1 (this initramfs), so
# on-demand loading (e.g. veth for `ip link add ... type veth`) goes through
# the host's modprobe in the new root.
printf '#!/bin/busybox sh\nexec /bin/busybox chroot /newroot /sbin/modprobe "$@"\n' >/bin/modprobe
busybox chmod 755 /bin/modprobe
echo /bin/modprobe >/proc/sys/kernel/modprobe
# Writable share with the host for results (mount_tag=share).
if [ "$FS" = 9p ]; then
  if busybox grep -q share /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null; then
    busybox mkdir -p $R/mnt/share
    busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share $R/mnt/share
  fi
else
  busybox mkdir -p $R/mnt/share
  busybox mount -t virtiofs share $R/mnt/share
fi
busybox ip link set lo up
busybox hostname guest
CMD=$(busybox sed -n 's/.*guestcmd=\([^ ]*\).*/\1/p' /proc/cmdline | busybox base64 -d)
[ -n "$CMD" ] || CMD="uname -a"
echo "=== guest $(busybox uname -r) up after $(busybox cut -d' ' -f1 /proc/uptime)s"
busybox chroot $R /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/sh -c "cd /; $CMD"
echo "GUEST-EXIT-CODE: $?"
busybox sync
busybox poweroff -f
INIT
chmod +x "$D/init"
(cd "$D" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$OUT.tmp")
echo "$FS" >"$OUT.fs"
mv "$OUT.tmp" "$OUT"
