# shellcheck shell=bash
# Shared by the tests/vm scripts (sourced, not run): host packages and the
# Debian kernels the guests boot.
#
# The kernel image packages are not installed with dpkg: their postinst runs
# /etc/kernel/postinst.d (initramfs-tools' update-initramfs, a grub update
# where grub is present), and their dependency on an initramfs generator
# pulls in udev and a systemd upgrade on this container. A guest needs only
# the kernel image and its modules, so the .deb is fetched with
# `apt-get download` and unpacked into a cache, where depmod indexes it.

VM_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_ROOT=$(cd "$VM_HERE/../.." && pwd)
VM_BUILD=${BUILD:-$VM_ROOT/build}
VM_OUT=${VM_OUT:-$VM_BUILD/vm}
# Outside the build tree so a fresh clone (CI) reuses what an earlier run unpacked.
VM_CACHE=${VM_CACHE:-/var/cache/tcpconnect-vm}
VM_HOST_PACKAGES=(qemu-system-x86 busybox-static kmod python3 xz-utils zstd)
# For the arm64 guest (kernel name arm64): the emulator and what builds its user space.
VM_HOST_PACKAGES_ARM64=(qemu-system-arm mmdebstrap)

vm_die() {
  echo "vm: $*" >&2
  exit 1
}

# vm_install_host_packages [EXTRA...]
vm_install_host_packages() {
  local missing=() p
  for p in "${VM_HOST_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [[ $(id -u) -eq 0 ]] || vm_die "missing packages and not root: ${missing[*]}"
  echo "vm: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The guest's architecture for a kernel name: arm64 for arm64 (and any
# linux-image-*-arm64 package name), else amd64.
vm_arch() {
  case $1 in
    arm64 | linux-image-*-arm64 | linux-image-*:arm64) echo arm64 ;;
    *) echo amd64 ;;
  esac
}

# The versioned image package behind a name: 6.1 (Debian 12's default kernel,
# linux-image-amd64), 6.12 (linux-image-6.12-amd64, from bookworm's security
# and backports updates), 6.1-rt and 6.1-cloud (Debian 12's PREEMPT_RT and
# cloud kernels), arm64 (Debian 12's arm64 kernel, linux-image-arm64:arm64,
# booted under qemu-system-aarch64 with an arm64 user space, see
# vm_make_rootfs), or any linux-image-* package name.
vm_image_package() {
  local meta
  case $1 in
    6.1) meta=linux-image-amd64 ;;
    6.12) meta=linux-image-6.12-amd64 ;;
    6.1-rt) meta=linux-image-rt-amd64 ;;  # PREEMPT_RT
    6.1-cloud) meta=linux-image-cloud-amd64 ;;  # trimmed for VMs: no 9p, virtio-fs instead
    arm64) meta=linux-image-arm64:arm64 ;;
    linux-image-*-arm64) meta=$1:arm64 ;;
    linux-image-*) meta=$1 ;;
    *) vm_die "unknown kernel '$1' (6.1, 6.12, 6.1-rt, 6.1-cloud or a linux-image-* package)" ;;
  esac
  local dep
  dep=$(apt-cache depends "$meta" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')
  if [[ -z $dep ]] && ! apt-cache show "$meta" >/dev/null 2>&1; then
    apt-get update -qq >&2 || true
    dep=$(apt-cache depends "$meta" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')
  fi
  if [[ -n $dep ]]; then
    echo "$dep"
  elif apt-cache show "$meta" >/dev/null 2>&1; then
    echo "$meta"
  fi
}

# Sets KVER and KROOT (boot/vmlinuz-$KVER and lib/modules/$KVER under it) for
# a kernel name, downloading and unpacking the package the first time.
vm_fetch_kernel() {
  local name=$1 pkg ver
  mkdir -p "$VM_CACHE"
  pkg=$(vm_image_package "$name")
  if [[ -z $pkg ]]; then
    # No package lists (offline): the kernel this name resolved to last time.
    [[ -L $VM_CACHE/$name && -e $VM_CACHE/$name/.ready ]] || vm_die "cannot resolve kernel '$name' with apt"
    KROOT=$(readlink -f "$VM_CACHE/$name")
    KVER=$(basename "$KROOT")
    return 0
  fi
  KVER=${pkg#linux-image-}
  KVER=${KVER%%:*}  # an arm64 package is named NAME:arm64
  KROOT=$VM_CACHE/$KVER
  ver=$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" {print $2}')
  (
    flock 9
    if [[ ! -e $KROOT/.ready ]] || [[ -n $ver && $(cat "$KROOT/.ready") != "$ver" ]]; then
      echo "vm: fetching $pkg $ver" >&2
      local dl
      dl=$(mktemp -d "$VM_CACHE/dl.XXXXXX")
      chown _apt "$dl" 2>/dev/null || true  # apt's download sandbox user
      (cd "$dl" && apt-get download -qq "$pkg" >&2) || { rm -rf "$dl"; vm_die "apt-get download $pkg failed"; }
      rm -rf "$KROOT.tmp" "$KROOT"
      dpkg-deb -x "$dl"/*.deb "$KROOT.tmp"
      rm -rf "$dl"
      depmod -b "$KROOT.tmp" "$KVER"
      echo "${ver:-unknown}" >"$KROOT.tmp/.ready"
      mv "$KROOT.tmp" "$KROOT"
    fi
    ln -sfn "$KVER" "$VM_CACHE/$name"
  ) 9>"$VM_CACHE/.lock"
  [[ -s $KROOT/boot/vmlinuz-$KVER ]] || vm_die "no kernel image in $KROOT"
}

# Sets VM_ROOTFS: an arm64 Debian 12 user space for the arm64 guest (the host's / is amd64),
# made the first time with mmdebstrap's extract variant (unpacks the packages and runs none of
# their scripts, so no emulation is needed): the runtime libraries of the cross-built binaries
# (scripts/cross-arm64) and what the runtime tests and their fixtures run. Without
# maintainer scripts there is no ld.so.cache; arm64's ld.so looks in the multiarch library
# directories by default. vm_rootfs_modules puts a kernel's modules in it.
VM_ROOTFS_PACKAGES_ARM64=(
  libc6 libstdc++6 libgcc-s1 libbpf1 libelf1 libfmt9 libcap-ng0 libncursesw6 libtinfo6 libcurl4
  libgrpc++1.51 libprotobuf32 liburing2 zlib1g ncurses-base
  busybox-static iproute2 procps util-linux mount coreutils bash dash dnsmasq-base bpftool kmod iptables
  # The essential set (the extract variant takes what --include names and its dependencies)
  grep sed mawk findutils diffutils tar gzip hostname debianutils base-passwd
  tmux python3-minimal libpython3.11-stdlib netcat-openbsd
)
vm_make_rootfs() {
  VM_ROOTFS=$VM_CACHE/rootfs-arm64
  local key
  key=$(printf '%s\n' "${VM_ROOTFS_PACKAGES_ARM64[@]}" | sha256sum | cut -d' ' -f1)
  [[ -e $VM_ROOTFS/.ready && $(cat "$VM_ROOTFS/.ready") == "$key" ]] && return 0
  mkdir -p "$VM_CACHE"
  (
    flock 9
    [[ -e $VM_ROOTFS/.ready && $(cat "$VM_ROOTFS/.ready") == "$key" ]] && exit 0
    echo "vm: making the arm64 root file system $VM_ROOTFS" >&2
    local mirrors=() start=$EPOCHREALTIME
    # The host's Debian mirrors (deb822 or one-line sources), for the same suites.
    mapfile -t mirrors < <(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 2>/dev/null |
      grep -E '/debian(-security)?/ bookworm' | sort -u | awk '{print "deb " $1 " " $2 " main"}')
    ((${#mirrors[@]})) || mirrors=("deb http://deb.debian.org/debian bookworm main")
    rm -rf "$VM_ROOTFS.tmp"
    # Merged /usr, like an installed Debian 12: the tests run /usr/bin/ip, /bin/true, ...
    # The setup part of mmdebstrap's merged-usr hook makes the links and records them with
    # the host's dpkg (--root); its essential part would run the tree's arm64 dpkg, which
    # needs binfmt handlers this host may not have.
    mmdebstrap -q --variant=extract --arch=arm64 \
      --setup-hook=/usr/share/mmdebstrap/hooks/merged-usr/setup00.sh \
      --include="$(IFS=,; echo "${VM_ROOTFS_PACKAGES_ARM64[*]}")" \
      bookworm "$VM_ROOTFS.tmp" "${mirrors[@]}" >&2 || vm_die "mmdebstrap failed"
    # What the maintainer scripts of dash and base-passwd would have made: /bin/sh, and
    # the users and groups (dnsmasq runs as root by name).
    ln -sfn dash "$VM_ROOTFS.tmp/bin/sh"
    local f
    for f in passwd group; do
      [[ -s $VM_ROOTFS.tmp/etc/$f ]] || cp "$VM_ROOTFS.tmp/usr/share/base-passwd/$f.master" "$VM_ROOTFS.tmp/etc/$f"
    done
    mkdir -p "$VM_ROOTFS.tmp/work" "$VM_ROOTFS.tmp/lib/modules" "$VM_ROOTFS.tmp/mnt"
    echo "$key" >"$VM_ROOTFS.tmp/.ready"
    rm -rf "$VM_ROOTFS"
    mv "$VM_ROOTFS.tmp" "$VM_ROOTFS"
    echo "vm: arm64 root file system made in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s" >&2
  ) 9>"$VM_CACHE/.lock-rootfs"
}

# vm_rootfs_modules: the modules of KVER (vm_fetch_kernel) at VM_ROOTFS/lib/modules/KVER, where
# the guest's modprobe looks (hard links: both are in VM_CACHE).
vm_rootfs_modules() {
  [[ -e $VM_ROOTFS/lib/modules/$KVER/modules.dep ]] && return 0
  rm -rf "$VM_ROOTFS/lib/modules/$KVER"
  cp -al "$KROOT/lib/modules/$KVER" "$VM_ROOTFS/lib/modules/$KVER" 2>/dev/null ||
    cp -a "$KROOT/lib/modules/$KVER" "$VM_ROOTFS/lib/modules/$KVER"
}
