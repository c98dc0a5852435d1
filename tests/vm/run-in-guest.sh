#!/usr/bin/env bash
# run-in-guest.sh [-m MEM] [-s SMP] [-t TIMEOUT] [-l LOG] [-S SHARE] KERNEL -- 'shell command'
#
# Boots a Debian kernel (KERNEL: 6.1, 6.12 or a linux-image-* package, see
# lib.sh) under QEMU and runs the command as root in it (mkinitramfs.sh tells
# what the guest sees). Prints the serial console (and saves it to LOG), and
# exits with the command's status: 124 on timeout, 125 when no status was seen.
# SHARE (default $VM_OUT/share) is the guest's /mnt/share, read-write.
# A soft lockup in the guest kernel panics it (the guest stops at once, with no
# status) instead of hanging until the timeout; VM_LOGLEVEL (default 1) shows
# more of the guest kernel's messages, e.g. 7 for the stack traces.
#
# Software emulation (TCG): /dev/kvm on these machines is a paravirtual one
# that cannot run a stock kernel (it emulates instructions and fails on
# cmpxchg16b/xrstor). Boot to the command takes a few seconds; programs run
# several times slower than on the host.
#
# One host thread runs both vCPUs (VM_TCG_THREAD, default single). With a
# thread per vCPU (multi), Debian's 6.1 kernel hung within two runs of the
# Lifecycle tests in the classic tracepoint mode: a CPU stuck for good at a
# jump label in syscall_trace_enter() while tracepoints were being switched
# on and off (live code patching), a soft lockup; ten runs in a row passed
# with single, about 15% slower.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MEM=3G SMP=2 TMO=600 LOG='' SHARE=''
while [[ $# -gt 0 ]]; do
  case $1 in
    -m) MEM=$2; shift 2 ;;
    -s) SMP=$2; shift 2 ;;
    -t) TMO=$2; shift 2 ;;
    -l) LOG=$2; shift 2 ;;
    -S) SHARE=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "run-in-guest.sh: unknown option $1" >&2; exit 2 ;;
    *) NAME=$1; shift ;;
  esac
done
[[ -n ${NAME:-} && $# -ge 1 ]] || {
  echo "usage: $0 [-m mem] [-s smp] [-t timeout] [-l log] [-S share] KERNEL -- 'command'" >&2
  exit 2
}
ARCH=$(vm_arch "$NAME")
if [[ $ARCH == arm64 ]]; then
  vm_install_host_packages "${VM_HOST_PACKAGES_ARM64[@]}"
else
  vm_install_host_packages
fi
vm_fetch_kernel "$NAME"
# arm64: the guest's / is an arm64 user space (vm_make_rootfs), with the host's WORK (default:
# the directory above the checkout) at the same path for the cross-built binaries.
ROOTFS='' WORK=''
if [[ $ARCH == arm64 ]]; then
  vm_make_rootfs
  vm_rootfs_modules
  ROOTFS=$VM_ROOTFS
  WORK=${VM_WORK:-$(dirname "$VM_ROOT")}
fi
mkdir -p "$VM_OUT"
SHARE=${SHARE:-$VM_OUT/share}
mkdir -p "$SHARE"

# The initramfs depends on the kernel and on mkinitramfs.sh: rebuilt when either changes.
IRFS=$VM_OUT/initramfs-$KVER.cpio.gz
key="$KROOT $(sha256sum "$VM_HERE/mkinitramfs.sh" | cut -d' ' -f1)${ROOTFS:+ $ROOTFS $WORK}"
if [[ ! -s $IRFS || $(cat "$IRFS.key" 2>/dev/null) != "$key" ]]; then
  "$VM_HERE/mkinitramfs.sh" "$KVER" "$KROOT" "$IRFS" ${ROOTFS:+"$ROOTFS" "$WORK"}
  echo "$key" >"$IRFS.key"
fi
# Direct (PVH) boot of the uncompressed ELF kernel skips real mode and the
# in-guest decompressor, several seconds under TCG; the bzImage is the fallback.
# (arm64's vmlinuz is already an uncompressed Image that QEMU boots directly.)
KERNEL=$KROOT/boot/vmlinuz-$KVER
if [[ $ARCH == amd64 && ! -e $KROOT/vmlinux.tried ]]; then
  if python3 "$VM_HERE/extract-vmlinux.py" "$KERNEL" "$KROOT/vmlinux.tmp"; then
    mv "$KROOT/vmlinux.tmp" "$KROOT/vmlinux"
  fi
  touch "$KROOT/vmlinux.tried"
fi
[[ $ARCH == amd64 && -s $KROOT/vmlinux ]] && KERNEL=$KROOT/vmlinux

# The host's / (read-only: the guest mounts it so, under an overlay) and SHARE: virtio-9p
# (QEMU's own server), or virtio-fs (QEMU 7.2's virtiofsd, one per directory, and the guest's
# memory shared with them) for kernels without 9p.
if [[ $ARCH == arm64 ]]; then
  FSARGS=(-virtfs "local,path=$ROOTFS,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
    -virtfs "local,path=$WORK,mount_tag=work,security_model=none,readonly=on,multidevs=remap"
    -virtfs "local,path=$SHARE,mount_tag=share,security_model=none")
elif [[ $(cat "$IRFS.fs" 2>/dev/null || echo 9p) == virtiofs ]]; then
  VFS=$(mktemp -d "$VM_OUT/vfs.XXXXXX")
  VFS_PIDS=()
  for tag in hostroot share; do
    src=/
    [[ $tag == share ]] && src=$SHARE
    /usr/lib/qemu/virtiofsd --socket-path="$VFS/$tag.sock" -o source="$src" \
      -o cache=always -o sandbox=chroot -o log_level=err >"$VFS/$tag.log" 2>&1 &
    VFS_PIDS+=($!)
  done
  # (|| true: virtiofsd has usually ended with the guest, and under set -e a failing kill
  # would become the script's exit status)
  trap 'kill "${VFS_PIDS[@]}" 2>/dev/null || true; rm -rf "$VFS"' EXIT
  for _ in $(seq 100); do
    [[ -S $VFS/hostroot.sock && -S $VFS/share.sock ]] && break
    sleep 0.05
  done
  FSARGS=(-object "memory-backend-memfd,id=mem,size=$MEM,share=on" -machine q35,memory-backend=mem
    -chardev "socket,id=vfs0,path=$VFS/hostroot.sock" -device vhost-user-fs-pci,chardev=vfs0,tag=hostroot
    -chardev "socket,id=vfs1,path=$VFS/share.sock" -device vhost-user-fs-pci,chardev=vfs1,tag=share)
else
  FSARGS=(-machine q35
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
    -virtfs "local,path=$SHARE,mount_tag=share,security_model=none")
fi

CMD=$(printf '%s' "$*" | base64 -w0)
((${#CMD} < 1800)) || { echo "run-in-guest.sh: command too long for the kernel command line; run a script" >&2; exit 2; }
TMPLOG=
[[ -n $LOG ]] || { LOG=$(mktemp "$VM_OUT/guest.XXXXXX.log"); TMPLOG=$LOG; }
# arm64: QEMU's virt board, whose -kernel boot needs no firmware; VM_ARM64_CPU (default max,
# with QEMU's cheap pointer-authentication algorithm: the architected one is slow under TCG).
if [[ $ARCH == arm64 ]]; then
  QEMU=(qemu-system-aarch64 -machine virt -cpu "${VM_ARM64_CPU:-max,pauth-impdef=on}")
  CONSOLE=ttyAMA0
else
  QEMU=(qemu-system-x86_64 -cpu max -bios /usr/share/qemu/qboot.rom)
  CONSOLE=ttyS0
fi
set +e
timeout --foreground "$TMO" "${QEMU[@]}" \
  -accel tcg,thread=${VM_TCG_THREAD:-single} -m "$MEM" -smp "$SMP" \
  "${FSARGS[@]}" -nodefaults -no-user-config -nographic -no-reboot \
  -serial stdio -monitor none \
  -kernel "$KERNEL" -initrd "$IRFS" \
  -append "console=$CONSOLE quiet loglevel=${VM_LOGLEVEL:-1} panic=-1 softlockup_panic=1 mitigations=off guestcmd=$CMD" \
  </dev/null 2>&1 | sed -u 's/\r$//' | tee "$LOG"
QRC=${PIPESTATUS[0]}
set -e
RC=$(sed -n 's/^GUEST-EXIT-CODE: \([0-9]*\).*/\1/p' "$LOG" | tail -1)
[[ -z $TMPLOG ]] || rm -f "$TMPLOG"
[[ $QRC == 124 ]] && exit 124
exit "${RC:-125}"
