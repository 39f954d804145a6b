import OTKModel

/// otk's own seccomp policy: a default-deny allowlist of what compilers, interpreters and
/// package managers use, and a list of calls denied by name even where the default would
/// allow them (the `log` action) or a profile widens the list. docs/profiles.md explains
/// each group; SECURITY.md lists the denied calls and why.
public enum SeccompBuiltin {
    /// The CLONE_NEW* flags (mount, cgroup, uts, ipc, user, pid, net) that `clone` takes.
    public static let cloneNamespaceFlags: UInt64 = 0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000
        | 0x1000_0000 | 0x2000_0000 | 0x4000_0000
    /// `unshare` also takes CLONE_NEWTIME.
    public static let unshareNamespaceFlags: UInt64 = cloneNamespaceFlags | 0x80
    public static let tiocsti: UInt64 = 0x5412
    public static let tioclinux: UInt64 = 0x541C
    public static let tiocsetd: UInt64 = 0x5423
    public static let msgFastOpen: UInt64 = 0x2000_0000
    /// Protocols allowed for AF_INET and AF_INET6 sockets: the default, TCP, UDP, and ICMP for ping sockets.
    public static let internetProtocols: [(UInt64, String)] = [(0, "0 (default)"), (1, "ICMP"), (6, "TCP"), (17, "UDP"), (58, "ICMPv6")]

    /// Allowed whatever their arguments. Names that do not exist on an architecture
    /// (`open`, `fork` on aarch64) are skipped there.
    public static let allowed: [(group: String, names: [String])] = [
        ("files and directories", [
            "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
            "open", "openat", "openat2", "creat", "close", "close_range", "lseek", "stat", "fstat", "lstat", "newfstatat",
            "statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents",
            "getdents64", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link",
            "linkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown",
            "fchownat", "truncate", "ftruncate", "fallocate", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
            "utime", "utimes", "utimensat", "futimesat", "getcwd", "chdir", "fchdir", "umask", "dup", "dup2", "dup3",
            "fcntl", "flock", "pipe", "pipe2", "sendfile", "splice", "tee", "vmsplice", "copy_file_range", "fadvise64",
            "readahead", "mknod", "mknodat", "name_to_handle_at", "memfd_create", "ioctl",
            "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr", "setxattr", "lsetxattr",
            "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
            "getxattrat", "listxattrat", "setxattrat", "removexattrat", "file_getattr", "file_setattr", "cachestat",
            "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
        ]),
        ("memory", [
            "brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "msync", "mincore", "remap_file_pages", "mlock",
            "mlock2", "munlock", "mlockall", "munlockall", "membarrier", "pkey_alloc", "pkey_free", "pkey_mprotect",
            "get_mempolicy", "set_mempolicy", "mbind", "mseal", "map_shadow_stack",
        ]),
        ("processes and threads", [
            "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "kill", "tkill", "tgkill",
            "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
            "getgroups", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid",
            "setfsgid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid", "capget", "capset", "prctl", "arch_prctl",
            "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "futex", "futex_waitv", "futex_wake",
            "futex_wait", "futex_requeue", "set_thread_area", "get_thread_area",
            "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
            "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
            "sched_rr_get_interval", "sched_getattr", "sched_setattr", "getpriority", "setpriority", "ioprio_get",
            "ioprio_set", "getrlimit", "setrlimit", "getrusage", "times", "uname", "sysinfo", "getcpu", "getrandom",
            "pidfd_open", "pidfd_send_signal", "seccomp", "landlock_create_ruleset", "landlock_add_rule",
            "landlock_restrict_self",
        ]),
        ("time", [
            "clock_gettime", "clock_getres", "clock_nanosleep", "gettimeofday", "time", "nanosleep", "alarm",
            "getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun",
            "timer_delete", "timerfd_create", "timerfd_settime", "timerfd_gettime",
        ]),
        ("signals", [
            "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait", "rt_sigsuspend",
            "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "pause", "signalfd", "signalfd4", "restart_syscall",
        ]),
        ("waiting for events", [
            "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
            "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
            "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
        ]),
        ("sockets (which families: see the conditional rules)", [
            "bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername", "sendto", "recvfrom",
            "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "setsockopt", "getsockopt",
        ]),
        ("System V and POSIX IPC (private to the sandbox's IPC namespace)", [
            "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget", "msgsnd",
            "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
        ]),
    ]

    /// The denied calls, by group, with the reason. `deny` is the profile's action for them
    /// (EPERM, or kill); `clone3` always answers ENOSYS so that libc falls back to `clone`,
    /// whose flags a filter can see.
    public static let denied: [(reason: String, names: [String])] = [
        ("reads or writes another process's memory, or takes its file descriptors",
         ["ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp", "process_madvise"]),
        ("mounts and the new mount API: the sandbox's file system view is fixed before the command starts",
         ["mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount",
          "fspick", "mount_setattr", "open_tree_attr", "statmount", "listmount"]),
        ("joins other namespaces", ["setns"]),
        ("large kernel attack surfaces with a history of privilege escalations",
         ["bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register"]),
        ("the kernel keyring: keys of the host user are reachable by serial number",
         ["keyctl", "add_key", "request_key"]),
        ("loads or replaces kernel code, or stops the machine",
         ["kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot"]),
        ("machine-wide state: swap, process accounting, quotas",
         ["swapon", "swapoff", "acct", "quotactl", "quotactl_fd"]),
        ("sets or slews the system clock", ["settimeofday", "clock_settime", "adjtimex", "clock_adjtime"]),
        ("raw I/O port access and per-process LDT changes", ["iopl", "ioperm", "modify_ldt"]),
        ("opens files by handle, bypassing the mount layer (the 'shocker' escape)", ["open_by_handle_at"]),
        ("kernel log and obsolete interfaces", ["syslog", "uselib", "ustat", "sysfs", "_sysctl", "vhangup", "nfsservctl", "lookup_dcookie"]),
        ("moves pages of other processes between NUMA nodes", ["migrate_pages", "move_pages"]),
        ("fanotify watches mounts and file systems beyond the sandbox", ["fanotify_init", "fanotify_mark"]),
    ]

    /// Syscalls newer than what Debian 12's libseccomp knows, by number. Since Linux 5.1
    /// every architecture numbers new syscalls alike, so one table serves x86_64 and aarch64.
    public static let newerSyscallNumbers: [String: Int32] = [
        "cachestat": 451, "fchmodat2": 452, "map_shadow_stack": 453, "futex_wake": 454, "futex_wait": 455,
        "futex_requeue": 456, "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459, "lsm_set_self_attr": 460,
        "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463, "getxattrat": 464, "listxattrat": 465,
        "removexattrat": 466, "open_tree_attr": 467, "file_getattr": 468, "file_setattr": 469,
    ]

    /// The built-in policy. `defaultAction` is for calls no rule allows; `deny` for the denied list
    /// and the argument checks (TIOCSTI, namespace flags, socket families, prlimit64 on others),
    /// which are denials of their own so that they hold under the `log` default too.
    public static func policy(defaultAction: SeccompAction, deny: SeccompAction) -> SeccompPolicy {
        var rules: [SeccompRule] = allowed.map { SeccompRule(names: $0.names, action: .allow, comment: $0.group) }
        let a0 = { (op: SeccompComparison, v: UInt64, v2: UInt64) in SeccompCondition(index: 0, op: op, value: v, valueTwo: v2) }
        rules.append(SeccompRule(names: ["clone"], action: .allow, conditions: [a0(.maskedEqual, cloneNamespaceFlags, 0)],
                                 comment: "new processes and threads, but no new namespaces"))
        rules.append(SeccompRule(names: ["unshare"], action: .allow, conditions: [a0(.maskedEqual, unshareNamespaceFlags, 0)],
                                 comment: "unsharing files or fs state, but no new namespaces"))
        rules.append(SeccompRule(names: ["socket"], action: .allow, conditions: [a0(.equal, 1, 0)], comment: "AF_UNIX sockets"))
        // Internet sockets only with the protocols builds use: not MPTCP, which Landlock's TCP port
        // rules do not see, nor SCTP, SMC, L2TP and the like.
        for (family, name) in [(2, "AF_INET"), (10, "AF_INET6")] {
            for (proto, protoName) in internetProtocols {
                rules.append(SeccompRule(names: ["socket"], action: .allow,
                                         conditions: [a0(.equal, UInt64(family), 0), SeccompCondition(index: 2, op: .equal, value: proto)],
                                         comment: "\(name) sockets with protocol \(protoName)"))
            }
        }
        rules.append(SeccompRule(names: ["socketpair"], action: .allow, conditions: [a0(.equal, 1, 0)], comment: "AF_UNIX pairs"))
        // ADDR_NO_RANDOMIZE and READ_IMPLIES_EXEC are not among them: the command keeps ASLR and NX.
        for (value, meaning) in [(0x0, "PER_LINUX"), (0x8, "PER_LINUX32"), (0x20000, "UNAME26"),
                                 (0x20008, "PER_LINUX32|UNAME26"), (0xffff_ffff, "query")] {
            rules.append(SeccompRule(names: ["personality"], action: .allow, conditions: [a0(.equal, UInt64(value), 0)],
                                     comment: "personality \(meaning) only"))
        }
        rules.append(SeccompRule(names: ["prlimit64"], action: .allow, conditions: [a0(.equal, 0, 0)],
                                 comment: "resource limits of the calling process only (not of the sandbox's init)"))

        // The argument checks again as denials, so that they hold whatever the default action is (`log`
        // included): libseccomp compares one argument once per rule, so each is a set of simple rules.
        let bits = { (mask: UInt64) in (0..<64).map { UInt64(1) << $0 }.filter { mask & $0 != 0 } }
        for bit in bits(cloneNamespaceFlags) {
            rules.append(SeccompRule(names: ["clone"], action: deny, conditions: [a0(.maskedEqual, bit, bit)], comment: "a new namespace"))
        }
        for bit in bits(unshareNamespaceFlags) {
            rules.append(SeccompRule(names: ["unshare"], action: deny, conditions: [a0(.maskedEqual, bit, bit)], comment: "a new namespace"))
        }
        for family in [0, 3, 4, 5, 6, 7, 8, 9] as [UInt64] {
            rules.append(SeccompRule(names: ["socket"], action: deny, conditions: [a0(.equal, family, 0)],
                                     comment: "socket families other than AF_UNIX, AF_INET, AF_INET6"))
        }
        rules.append(SeccompRule(names: ["socket"], action: deny, conditions: [a0(.greater, 10, 0)],
                                 comment: "socket families other than AF_UNIX, AF_INET, AF_INET6 (netlink, packet, vsock, ...)"))
        for family in [2, 10] as [UInt64] {
            rules.append(SeccompRule(names: ["socket"], action: deny,
                                     conditions: [a0(.equal, family, 0), SeccompCondition(index: 2, op: .greater, value: 58)],
                                     comment: "internet protocols beyond ICMPv6 (MPTCP, SCTP, SMC, ...)"))
        }
        // TCP Fast Open connects inside sendto/sendmsg, where Landlock's connect rule does not look.
        for (name, index) in [("sendto", 3), ("sendmsg", 2), ("sendmmsg", 3)] as [(String, UInt8)] {
            rules.append(SeccompRule(names: [name], action: deny,
                                     conditions: [SeccompCondition(index: index, op: .maskedEqual, value: msgFastOpen, valueTwo: msgFastOpen)],
                                     comment: "MSG_FASTOPEN: a TCP connect that Landlock's port rules do not see", pinned: true))
        }
        rules.append(SeccompRule(names: ["socketpair"], action: deny, conditions: [a0(.notEqual, 1, 0)], comment: "pairs other than AF_UNIX"))
        rules.append(SeccompRule(names: ["prlimit64"], action: deny, conditions: [a0(.notEqual, 0, 0)],
                                 comment: "resource limits of another process (the sandbox's init among them)"))
        for (request, what) in [(tiocsti, "TIOCSTI: pushes keystrokes into a terminal"), (tioclinux, "TIOCLINUX: pushes keystrokes into a terminal"),
                                (tiocsetd, "TIOCSETD: changes a terminal's line discipline, which no reset undoes")] {
            // The kernel reads the request as 32 bits: compare the low half only, so high bits cannot slip past.
            rules.append(SeccompRule(names: ["ioctl"], action: deny,
                                     conditions: [SeccompCondition(index: 1, op: .maskedEqual, value: 0xffff_ffff, valueTwo: request)],
                                     comment: what, pinned: true))
        }
        rules.append(SeccompRule(names: ["clone3"], action: .errno(38),
                                 comment: "its flags sit in memory a filter cannot read; ENOSYS makes libc fall back to clone"))
        rules += denied.map { SeccompRule(names: $0.names, action: deny, comment: $0.reason) }
        return SeccompPolicy(defaultAction: defaultAction, rules: rules, origin: "built-in")
    }
}

/// The effective policy of a profile's `[seccomp]` section: the base (built-in or imported)
/// with the profile's action, allows and denies applied.
public enum SeccompResolver {
    public static let eperm: UInt16 = 1
    public static let profileAllowComment = "allowed by the profile"
    public static let profileDenyComment = "denied by the profile"

    public static func policy(_ settings: SeccompSettings) -> SeccompPolicy? {
        guard settings.enabled else { return nil }
        let chosen = settings.action ?? (settings.imported == nil ? .errno : nil)
        let deny: SeccompAction = chosen == .kill ? .killProcess : .errno(eperm)
        var policy: SeccompPolicy
        if let imported = settings.imported {
            policy = imported
            if let chosen { policy.defaultAction = action(chosen) }
        } else {
            policy = SeccompBuiltin.policy(defaultAction: action(chosen ?? .errno), deny: deny)
        }
        // An explicit allow lifts the base's denials of that call, argument checks included, except the
        // pinned ones (TIOCSTI): allowing `ioctl` must not open the terminal. An explicit deny replaces
        // every rule of the base for that call, so its answer is the profile's (EPERM, not clone3's ENOSYS).
        let allowed = Set(settings.allow.map(\.name))
        let denied = Set(settings.deny.map(\.name))
        policy.rules = policy.rules.compactMap { rule in
            var r = rule
            r.names.removeAll { denied.contains($0) || (allowed.contains($0) && !rule.action.permits && !rule.pinned) }
            return r.names.isEmpty ? nil : r
        }
        for name in settings.allow {
            policy.rules.append(SeccompRule(names: [name.name], action: .allow, comment: profileAllowComment, location: name.location,
                                            fromProfile: true))
        }
        for name in settings.deny {
            policy.rules.append(SeccompRule(names: [name.name], action: deny, comment: profileDenyComment, location: name.location,
                                            fromProfile: true))
        }
        return policy
    }

    static func action(_ a: SeccompSettings.DefaultAction) -> SeccompAction {
        switch a {
        case .errno: return .errno(eperm)
        case .kill: return .killProcess
        case .log: return .log
        }
    }
}
