# Runs INSIDE the VM of scripts/cgroup2-vm.sh (busybox sh, as root):
#   scripts/cgroup2-vm.sh scripts/cgroup2-vm-selftest.sh
# Shows the VM's kernel, cgroup2 and LSM state, what `otk doctor` reports there, and runs one
# sandbox. Exits non-zero when the harness's own promises (cgroup2 with cpu/io/memory/pids
# delegated from the root, a usable otk) do not hold; otk's cgroup backend is not judged.
fail=0
check() { # DESCRIPTION COMMAND...
  what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; fail=1; fi
}

echo "kernel: $(uname -r)"
echo "cgroup mount: $(grep cgroup2 /proc/self/mounts)"
echo "cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "cgroup.subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
echo "this shell's cgroup: $(cat /proc/self/cgroup)"
for c in cpu io memory pids; do
  check "controller $c enabled for the root's children" grep -qw "$c" /sys/fs/cgroup/cgroup.subtree_control
done

t=/sys/fs/cgroup/selftest
check "mkdir $t" mkdir "$t"
check "memory.max written" sh -c "echo 64M >$t/memory.max && [ \"\$(cat $t/memory.max)\" = 67108864 ]"
check "pids.max written" sh -c "echo 32 >$t/pids.max && [ \"\$(cat $t/pids.max)\" = 32 ]"
check "a process moved into $t" sh -c "echo \$\$ >$t/cgroup.procs && grep -qx '0::/selftest' /proc/self/cgroup"
check "rmdir $t" rmdir "$t"

echo "lsm: $(cat /sys/kernel/security/lsm 2>/dev/null || echo '(securityfs not mounted)')"

echo "--- otk doctor"
otk doctor
echo "otk doctor: exit $?"

echo "--- otk sandbox run (strict)"
out=$(otk sandbox run -- /bin/sh -c 'echo hello from the sandbox; cat /proc/self/cgroup; id' 2>&1)
rc=$?
echo "$out"
echo "otk sandbox run: exit $rc"
check "the sandbox ran its command" sh -c '[ "$1" = 0 ] && echo "$2" | grep -qx "hello from the sandbox"' sh "$rc" "$out"

echo "--- cgroups below the root while a sandbox runs"
otk sandbox run -- /bin/sh -c 'sleep 3' >/dev/null 2>&1 &
sleep 2
find /sys/fs/cgroup -mindepth 1 -type d | sed 's|^/sys/fs/cgroup||'
wait

[ "$fail" = 0 ] && echo "selftest: all checks passed" || echo "selftest: some checks FAILED"
exit "$fail"
