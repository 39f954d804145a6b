#!/usr/bin/env bash
# Runs a shell script as root inside a small QEMU virtual machine: a stock Debian kernel, a
# busybox initramfs, cgroup2 mounted at /sys/fs/cgroup with its controllers enabled, and otk's
# binaries at the same paths as on the host. For testing what this host cannot show (for
# example cgroup v2 on a hybrid-cgroup host). Described in docs/testing-cgroup-v2.md.
#
# usage: scripts/cgroup2-vm.sh [--bin DIR] [--timeout SECONDS] [--cgroup PATH] [--console FILE]
#                              SCRIPT [FILES...]
#
# The script's stdout and stderr (merged) come out on stdout; the exit status is the script's.
# 125: the harness or the VM failed (bad usage, no kernel boot, timeout); 77: the machine cannot
# run the VM at all (qemu, busybox, cpio or the kernel could not be had). Tests skip on 77.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me="cgroup2-vm"

die() { echo "$me: $*" >&2; exit 125; }
skip() { echo "$me: SKIP: $*" >&2; exit 77; }
note() { [[ -n ${OTK_VM_QUIET:-} ]] || echo "$me: $*" >&2; }

usage() {
  cat >&2 <<'EOF'
usage: scripts/cgroup2-vm.sh [--bin DIR] [--timeout SECONDS] [--cgroup PATH] [--console FILE] SCRIPT [FILES...]
  --bin DIR          where otk, otk-launcher and otk-probe are (default: .build/debug)
  --timeout SECONDS  kill the VM after this long, boot included (default: 240)
  --cgroup PATH      run SCRIPT in this cgroup (e.g. /system.slice/otk.service) instead of the
                     root; its ancestors get the controllers enabled, it gets processes
  --console FILE     keep the VM's kernel console log in FILE
  SCRIPT             run with /bin/sh (busybox ash) as root, in /work, stdin /dev/null
  FILES              copied to /work/ in the VM (directories recursively)
Environment: OTK_VM_ACCEL=tcg|kvm|auto (default tcg; auto: KVM when /dev/kvm opens),
OTK_VM_MEMORY=MiB (1024), OTK_VM_CPUS=N (2), OTK_VM_KERNEL=path to a bzImage (skip the
download), OTK_VM_CACHE=cache directory, OTK_VM_QUIET=1 (no progress lines on stderr).
EOF
  exit 125
}

bin_dir="$repo/.build/debug"
timeout_s=240
cgroup_path=/
console_keep=
while (($#)); do
  case $1 in
    --bin) (($# >= 2)) || usage; bin_dir=$2; shift 2 ;;
    --bin=*) bin_dir=${1#--bin=}; shift ;;
    --timeout) (($# >= 2)) || usage; timeout_s=$2; shift 2 ;;
    --timeout=*) timeout_s=${1#--timeout=}; shift ;;
    --cgroup) (($# >= 2)) || usage; cgroup_path=$2; shift 2 ;;
    --cgroup=*) cgroup_path=${1#--cgroup=}; shift ;;
    --console) (($# >= 2)) || usage; console_keep=$2; shift 2 ;;
    --console=*) console_keep=${1#--console=}; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "$me: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
(($# >= 1)) || usage
script=$1; shift
[[ -f $script ]] || die "no such script: $script"
[[ $timeout_s =~ ^[0-9]+$ && $timeout_s -gt 0 ]] || die "--timeout wants a positive number of seconds"
[[ $cgroup_path == /* && $cgroup_path != *..* && $cgroup_path =~ ^[A-Za-z0-9_./@:-]+$ ]] ||
  die "--cgroup wants an absolute cgroup path such as /system.slice/otk.service"
for f in "$@"; do [[ -e $f ]] || die "no such file: $f"; done
bin_dir=$(cd "$bin_dir" 2>/dev/null && pwd) || die "no such directory: --bin"
memory=${OTK_VM_MEMORY:-1024}
cpus=${OTK_VM_CPUS:-2}

cache=${OTK_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otk/vm}
mkdir -p "$cache" || die "cannot create the cache directory $cache"

# --- Host packages ------------------------------------------------------------------------
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
apt_updated=
apt_update() {
  [[ -n $apt_updated ]] && return 0
  note "apt-get update"
  apt-get update -qq >"$cache/apt.log" 2>&1 || { cat "$cache/apt.log" >&2; return 1; }
  apt_updated=1
}
# The first of the names that apt knows (qemu's package has had more than one name).
apt_known() {
  local name
  for name in "$@"; do
    apt-cache show "$name" >/dev/null 2>&1 && { echo "$name"; return 0; }
  done
  return 1
}
apt_install() { # NAME... ; returns non-zero when apt fails
  [[ $(id -u) -eq 0 ]] || { echo "$me: not root: cannot apt-get install $*" >&2; return 1; }
  note "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
    >"$cache/apt.log" 2>&1 || { cat "$cache/apt.log" >&2; return 1; }
}

# Setup (packages, kernel, busybox) is shared by parallel runs: one at a time.
exec 9>"$cache/.lock"
flock 9

qemu=$(command -v qemu-system-x86_64 || true)
if [[ -z $qemu ]]; then
  command -v apt-get >/dev/null || skip "qemu-system-x86_64 is missing and there is no apt-get"
  pkg=$(apt_known qemu-system-x86 qemu-system-x86-64) || { apt_update || true; pkg=$(apt_known qemu-system-x86 qemu-system-x86-64) || true; }
  [[ -n ${pkg:-} ]] || skip "no qemu-system-x86 package is known to apt"
  apt_install "$pkg" || { apt_update && apt_install "$pkg"; } || skip "cannot install $pkg"
  qemu=$(command -v qemu-system-x86_64) || skip "$pkg installed no qemu-system-x86_64"
fi
if ! command -v cpio >/dev/null; then
  { apt_install cpio || { apt_update && apt_install cpio; }; } || skip "cannot install cpio"
fi

# A static busybox. busybox-static conflicts with Debian's dynamic busybox: where that one is
# installed, busybox-static is unpacked into the cache instead of replacing it.
busybox=
if have_pkg busybox-static && [[ -x /bin/busybox ]]; then
  busybox=/bin/busybox
elif have_pkg busybox; then
  busybox=$cache/busybox-static/bin/busybox
  if [[ ! -x $busybox ]]; then
    tmp=$(mktemp -d "$cache/.bb.XXXXXX")
    if ! (cd "$tmp" && apt-get download busybox-static >"$cache/apt.log" 2>&1) &&
       ! { apt_update && (cd "$tmp" && apt-get download busybox-static >"$cache/apt.log" 2>&1); }; then
      rm -rf "$tmp"; skip "cannot download busybox-static"
    fi
    dpkg -x "$tmp"/busybox-static_*.deb "$tmp/x"
    rm -rf "$cache/busybox-static"; mkdir -p "$cache/busybox-static/bin"
    cp "$tmp/x/bin/busybox" "$busybox"; rm -rf "$tmp"
  fi
else
  { apt_install busybox-static || { apt_update && apt_install busybox-static; }; } || skip "cannot install busybox-static"
  busybox=/bin/busybox
fi

# --- Kernel ---------------------------------------------------------------------------------
# Debian's current linux-image-<abi>-amd64 (what the linux-image-amd64 metapackage depends on),
# unpacked with dpkg -x; only /boot is kept: everything the VM needs is built in.
kernel_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64(-unsigned)?$/ { print $2; exit }'
}
fetch_kernel() { # PKG VERSION DEST
  local tmp
  tmp=$(mktemp -d "$cache/.kernel.XXXXXX")
  note "downloading $1 $2"
  if (cd "$tmp" && apt-get download "$1=$2" >"$cache/apt.log" 2>&1); then
    dpkg -x "$tmp"/*.deb "$tmp/x"
    mkdir -p "$3.new"
    cp "$tmp"/x/boot/vmlinuz-* "$3.new/vmlinuz"
    cp "$tmp"/x/boot/config-* "$3.new/config" 2>/dev/null || true
    rm -rf "$tmp" "$3"; mv "$3.new" "$3"
    return 0
  fi
  rm -rf "$tmp"
  return 1
}
if [[ -n ${OTK_VM_KERNEL:-} ]]; then
  vmlinuz=$OTK_VM_KERNEL
  [[ -f $vmlinuz ]] || die "OTK_VM_KERNEL=$vmlinuz: no such file"
  kconfig=
else
  kpkg=$(kernel_pkg)
  [[ -n $kpkg ]] || { apt_update || true; kpkg=$(kernel_pkg); }
  kver=
  [[ -n $kpkg ]] && kver=$(apt-cache policy "$kpkg" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }')
  kdir=
  if [[ -n $kpkg && -n $kver && $kver != "(none)" ]]; then
    kdir=$cache/kernel/${kpkg}_$kver
    if [[ ! -f $kdir/vmlinuz ]]; then
      mkdir -p "$cache/kernel"
      if ! fetch_kernel "$kpkg" "$kver" "$kdir"; then
        # Stale package lists name a version the registry no longer has: refresh once.
        kdir=
        if apt_update; then
          kpkg=$(kernel_pkg)
          kver=$(apt-cache policy "$kpkg" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }')
          kdir=$cache/kernel/${kpkg}_$kver
          [[ -f $kdir/vmlinuz ]] || fetch_kernel "$kpkg" "$kver" "$kdir" || { cat "$cache/apt.log" >&2; kdir=; }
        fi
      fi
    fi
  fi
  if [[ -z $kdir ]]; then # offline: the newest kernel fetched before, if any
    kdir=$(ls -d "$cache"/kernel/linux-image-*/ 2>/dev/null | sort -V | tail -n 1)
    kdir=${kdir%/}
    [[ -n $kdir && -f $kdir/vmlinuz ]] || skip "cannot find or download a Debian kernel (linux-image-amd64)"
    note "using the cached kernel ${kdir##*/}"
  fi
  vmlinuz=$kdir/vmlinuz
  kconfig=$kdir/config
fi
# What /init relies on must be built in: the kernel has no modules in the VM.
if [[ -n $kconfig && -f $kconfig && ! -f $kconfig.checked ]]; then
  missing=()
  for opt in BLK_DEV_INITRD DEVTMPFS TMPFS CGROUPS MEMCG CGROUP_PIDS CGROUP_SCHED SERIAL_8250_CONSOLE \
             USER_NS PID_NS NET_NS SECCOMP_FILTER; do
    grep -qx "CONFIG_$opt=y" "$kconfig" || missing+=("$opt")
  done
  ((${#missing[@]} == 0)) || echo "$me: warning: the kernel lacks built-in ${missing[*]}" >&2
  touch "$kconfig.checked"
fi

exec 9>&- # setup done: parallel runs may build and boot at once

# --- Initramfs ------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/otk-vm.XXXXXX")
qemu_pid=
cleanup() {
  [[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 125' INT TERM HUP
root=$work/root
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/local/bin,etc,proc,sys,dev,tmp,run,root,work,newroot,otk-vm}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

cp "$busybox" "$root/usr/bin/busybox"
# Every applet as a symlink, where busybox would put it (bin, sbin, usr/bin, usr/sbin).
while read -r applet; do
  if [[ $applet == */* && ! -e $root/$applet && ! -L $root/$applet ]]; then
    ln -s /usr/bin/busybox "$root/$applet"
  fi
done < <("$busybox" --list-full)

# Copies host file $1 (and, for a dynamic executable, the libraries ldd names) to the same path.
declare -A copied=()
copy_file() {
  local src=$1
  [[ -n ${copied[$src]:-} ]] && return 0
  copied[$src]=1
  mkdir -p "$root$(dirname "$src")"
  cp -L "$src" "$root$src"
}
copy_with_libs() {
  local exe=$1 lib out
  copy_file "$exe"
  out=$(ldd "$exe" 2>&1) || return 0 # "not a dynamic executable": static
  while read -r lib; do
    if [[ -n $lib && -e $lib ]]; then copy_file "$lib"; fi
  done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out")
  if grep -q "not found" <<<"$out"; then
    die "$exe: ldd cannot find libraries: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"
  fi
}
[[ -x $bin_dir/otk ]] || die "$bin_dir/otk is missing (swift build first, or pass --bin DIR)"
[[ -x $bin_dir/otk-launcher ]] || die "$bin_dir/otk-launcher is missing"
for b in otk otk-launcher otk-probe; do
  if [[ -x $bin_dir/$b ]]; then copy_with_libs "$bin_dir/$b"; else echo "$me: warning: no $bin_dir/$b" >&2; fi
done
mkdir -p "$root$repo"
cp -r "$repo/profiles" "$root$repo/profiles"

# A loader cache for the copied libraries (the sandbox binds /etc/ld.so.cache when present).
if [[ $(id -u) -eq 0 ]] && command -v ldconfig >/dev/null; then
  for lib in "${!copied[@]}"; do
    if [[ $lib == *.so* ]]; then dirname "$lib"; fi
  done | sort -u >"$root/etc/ld.so.conf"
  ldconfig -r "$root" 2>/dev/null || true
fi

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo otk-vm >"$root/etc/hostname"
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"

cp "$script" "$root/otk-vm/script.sh"
for f in "$@"; do cp -a "$f" "$root/work/"; done

# The exit marker carries a per-run token, so that no output of the script can fake it.
token=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')

# Stage 1: the initramfs root (rootfs) cannot be pivot_root'ed away from, and otk-launcher
# pivots: move everything to a tmpfs and switch_root into it.
cat >"$root/init" <<'EOF'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t tmpfs -o mode=0755,size=90% otkroot /newroot
for e in /*; do
  case $e in /newroot|/proc|/sys|/dev|/init) continue ;; esac
  cp -a "$e" /newroot/ || { echo "otk-vm: cannot copy $e to the new root"; poweroff -f; }
done
mkdir -p /newroot/proc /newroot/sys /newroot/dev
umount -l /dev # init's stdio still holds the console open
exec switch_root /newroot /otk-vm/init
EOF

# Stage 2: the real init.
{
  printf '#!/bin/sh\n'
  printf 'BIN=%q\nPROFILES=%q\nCGROUP=%q\nTOKEN=%q\n' "$bin_dir" "$repo/profiles" "$cgroup_path" "$token"
  cat <<'EOF'
export PATH="$BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# /tmp stays on the root tmpfs: a checkout below /tmp (CI clones anywhere) holds the binaries there.
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
hostname otk-vm
ip link set lo up 2>/dev/null

# cgroup2 as systemd mounts it, every controller of interest enabled for the root's children.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
  mount -t cgroup2 cgroup2 /sys/fs/cgroup || echo "otk-vm: cannot mount cgroup2"
enable() { # CGROUP-DIR: enable cpu, io, memory, pids (those the kernel has) for its children
  for c in cpu io memory pids; do
    grep -qw "$c" "$1/cgroup.controllers" && echo "+$c" >"$1/cgroup.subtree_control"
  done
}
enable /sys/fs/cgroup
# With --cgroup, the script starts in that cgroup, its ancestors delegating the controllers.
dir=/sys/fs/cgroup
rest=${CGROUP#/}
while [ -n "$rest" ]; do
  part=${rest%%/*}
  [ "$part" = "$rest" ] && rest= || rest=${rest#*/}
  dir=$dir/$part
  mkdir -p "$dir"
  [ -n "$rest" ] && enable "$dir"
done

export HOME=/root TMPDIR=/tmp OTK_PROFILE_PATH="$PROFILES" OTK_VM=1 OTK_VM_BIN="$BIN"
cd /work
# The script's output goes to the second serial port, raw, so the host gets it byte for byte.
exec 3<>/dev/ttyS1
stty -F /dev/ttyS1 raw -echo
sh -c 'echo $$ >"$1/cgroup.procs" && exec sh /otk-vm/script.sh' sh "$dir" >&3 2>&3 3>&-
status=$?
kill -KILL -1 2>/dev/null
printf '\n\036OTK-VM-EXIT-%s %d\n' "$TOKEN" "$status" >&3
exec 3>&- # the last close waits until the port has sent everything
echo "otk-vm: script exited with status $status"
sync
poweroff -f
EOF
} >"$root/otk-vm/init"
chmod 0755 "$root/init" "$root/otk-vm/init"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$work/initrd.cpio" ||
  die "cpio failed"
rm -rf "$root"

# --- Boot -----------------------------------------------------------------------------------
# TCG by default: it needs nothing from the host. Nested KVM can fail in ways qemu does not
# report (on a Firecracker guest the kernel hangs before its first message), so it is opt-in.
accel=${OTK_VM_ACCEL:-tcg}
if [[ $accel == auto ]]; then
  accel=tcg
  if [[ -r /dev/kvm && -w /dev/kvm ]] && { exec 8<>/dev/kvm; } 2>/dev/null; then
    exec 8>&-
    accel=kvm
  fi
fi
case $accel in
  kvm) accel_args=(-accel kvm -cpu host) ;;
  tcg) accel_args=(-accel tcg,thread=multi -cpu max) ;;
  *) die "OTK_VM_ACCEL must be auto, kvm or tcg" ;;
esac

console=$work/console.log
output=$work/output.log
note "booting $(basename "$(dirname "$vmlinuz")") ($accel, ${memory} MiB, $cpus CPUs, timeout ${timeout_s}s)"
start=$(date +%s)
# In the background, so that a signal to this script can end the VM (see cleanup).
timeout --kill-after=5 "$timeout_s" "$qemu" -nodefaults -no-user-config -no-reboot \
  -machine q35 "${accel_args[@]}" -m "$memory" -smp "$cpus" \
  -display none -monitor none -nic none \
  -serial "file:$console" -serial "file:$output" \
  -kernel "$vmlinuz" -initrd "$work/initrd.cpio" \
  -append "console=ttyS0 quiet panic=-1 oops=panic random.trust_cpu=on" \
  </dev/null >"$work/qemu.log" 2>&1 &
qemu_pid=$!
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=
elapsed=$(($(date +%s) - start))
if [[ -n $console_keep ]]; then cp "$console" "$console_keep" 2>/dev/null || true; fi

marker=$(grep -a -b -o $'\036OTK-VM-EXIT-'"$token"' [0-9]*' "$output" 2>/dev/null | tail -n 1 || true)
if [[ -z $marker ]]; then
  if [[ -s $output ]]; then cat "$output"; fi
  if ((qemu_rc == 124 || qemu_rc == 137)); then
    echo "$me: the VM timed out after ${timeout_s}s" >&2
  else
    echo "$me: the VM ended without the script's exit status (qemu exit $qemu_rc after ${elapsed}s)" >&2
  fi
  if [[ -s $work/qemu.log ]]; then sed "s/^/$me: qemu: /" "$work/qemu.log" >&2; fi
  echo "$me: last lines of the kernel console:" >&2
  tail -n 40 "$console" 2>/dev/null | tr -d '\r' | sed "s/^/$me: console: /" >&2
  exit 125
fi
offset=${marker%%:*}
status=${marker##* }
# The marker starts with a newline of its own: everything before that is the script's output.
if ((offset > 0)); then head -c "$((offset - 1))" "$output"; fi
note "script exited $status (VM ${elapsed}s)"
exit "$status"
