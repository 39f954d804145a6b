/*
 * otk-launcher: executes one already-decided sandbox launch.
 *
 * The Swift supervisor (otk) decides everything: it turns a profile into a flat
 * list of operations (the "launch spec"), and spawns this program with
 *
 *     otk-launcher SPEC_FD STATUS_FD LIFELINE_FD [SECCOMP_FD]
 *
 *   SPEC_FD      a memfd holding the spec: NUL-separated tokens, see parse_spec()
 *   STATUS_FD    the write end of a pipe; every record written is `struct otk_record`
 *   LIFELINE_FD  the read end of a pipe whose write end only otk holds: EOF means
 *                otk is gone, and then the whole sandbox is killed
 *   SECCOMP_FD   (with the spec's `seccomp` operation) a memfd holding the seccomp
 *                programs otk compiled: for each, a little-endian u32 instruction
 *                count and then the `struct sock_filter` array; loaded in order
 *
 * This program makes no policy decisions; an operation it does not know is an
 * error, never ignored. It runs three processes, each with one job:
 *
 *   monitor  (this process, host namespaces): reads and checks the spec, clone3()s
 *            the sandbox, writes its uid/gid maps, releases it, forwards signals
 *            and exits with the sandbox's status.
 *   init     (pid 1 of the new pid namespace): builds the new root, drops every
 *            privilege, forks the payload, reaps, forwards signals, and takes the
 *            whole tree down when the payload exits or otk goes away.
 *   payload  (pid 2): detaches from the terminal session, closes inherited fds,
 *            and execs the command.
 *
 * Failure reporting: a setup failure writes one fixed-size record {step, errno,
 * detail} to STATUS_FD and exits 127. When the payload ends, init writes one
 * record with its wait status. EOF with no failure record means the command ran.
 * The pipe is CLOEXEC, so the payload's copy closes when execve succeeds.
 *
 * After clone3() no process here allocates memory: the spec lives in a static
 * buffer and every path is built in fixed-size stack buffers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <grp.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>

/* ---- constants older C libraries lack (values from the kernel UAPI) ---- */
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef OTK_CLONE_INTO_CGROUP
#define OTK_CLONE_INTO_CGROUP 0x200000000ULL
#endif
#define OTK_FSCONFIG_SET_FLAG 0
#define OTK_FSCONFIG_SET_STRING 1
#define OTK_FSCONFIG_CMD_CREATE 6

struct otk_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

struct otk_clone_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

/* ---- the status record; mirrored in Sources/OTKSandbox/LauncherRecord.swift ---- */
#define OTK_RECORD_MAGIC 0x314b544fu /* "OTK1" little-endian */
/* EXIT: the payload's wait status. TIMEOUT: the same, when the wall-clock limit ended the run. */
enum { OTK_RECORD_FAILURE = 1, OTK_RECORD_EXIT = 2, OTK_RECORD_TIMEOUT = 3 };

struct otk_record {
    uint32_t magic;
    uint32_t kind;
    int32_t err;    /* errno of the failed call, 0 if none */
    int32_t value;  /* wait status for OTK_RECORD_EXIT */
    char step[32];  /* which step failed, e.g. "bind", "pivot_root" */
    char detail[208];
};
_Static_assert(sizeof(struct otk_record) == 256, "record size is part of the protocol");

/* ---- the spec ---- */
#define SPEC_MAX (1u << 20)
#define OPS_MAX 4096
#define ARGS_MAX 4

enum op_kind {
    OP_NAMESPACE, OP_UID, OP_GID, OP_SETGROUPS, OP_HOSTNAME, OP_LOOPBACK, OP_DENY_USERNS,
    OP_ROOT_SIZE, OP_BIND, OP_TMPFS, OP_PROC, OP_DEV, OP_DIR, OP_SYMLINK, OP_FILE, OP_MASK,
    OP_READONLY, OP_ROOT_READONLY, OP_ENV, OP_ARG, OP_CWD, OP_CLEAN, OP_SECCOMP, OP_LANDLOCK,
    OP_LANDLOCK_PATH, OP_LANDLOCK_PORT, OP_CGROUP_V1, OP_CGROUP_V2, OP_RLIMIT, OP_WALL, OP_ORPHAN_RMDIR,
    OP_PROXY_RELAY,
};

static const struct {
    const char *name;
    enum op_kind kind;
    int argc;
} op_table[] = {
    {"namespace", OP_NAMESPACE, 1},   /* user|mount|pid|net|ipc|uts|cgroup */
    {"uid", OP_UID, 2},               /* inside-id host-id */
    {"gid", OP_GID, 2},               /* inside-id host-id */
    {"setgroups", OP_SETGROUPS, 1},   /* allow|deny */
    {"hostname", OP_HOSTNAME, 1},
    {"loopback", OP_LOOPBACK, 0},     /* bring lo up in the new net namespace */
    {"deny-userns", OP_DENY_USERNS, 0},
    {"root-size", OP_ROOT_SIZE, 1},   /* bytes of the tmpfs that becomes / */
    {"bind", OP_BIND, 3},             /* host-source dest ro|rw[,try] */
    {"tmpfs", OP_TMPFS, 3},           /* dest size-bytes octal-mode */
    {"proc", OP_PROC, 1},             /* dest */
    {"dev", OP_DEV, 1},               /* dest */
    {"dir", OP_DIR, 2},               /* dest octal-mode */
    {"symlink", OP_SYMLINK, 2},       /* target dest */
    {"file", OP_FILE, 3},             /* dest octal-mode content */
    {"mask", OP_MASK, 1},             /* dest: hide (empty dir or /dev/null) if it exists */
    {"readonly", OP_READONLY, 1},     /* dest: make read-only if it exists */
    {"root-readonly", OP_ROOT_READONLY, 0},
    {"env", OP_ENV, 1},               /* NAME=VALUE */
    {"arg", OP_ARG, 1},
    {"cwd", OP_CWD, 1},
    {"clean", OP_CLEAN, 1},           /* dest: emptied by init, as the sandbox user, when the command ends */
    {"seccomp", OP_SECCOMP, 0},       /* load the programs on SECCOMP_FD, last before execve */
    {"landlock", OP_LANDLOCK, 3},     /* hex handled-fs hex handled-net hex scoped */
    {"landlock-path", OP_LANDLOCK_PATH, 3}, /* hex access, dest, try|must */
    {"landlock-port", OP_LANDLOCK_PORT, 2}, /* hex access, TCP port */
    {"cgroup-v1", OP_CGROUP_V1, 1},   /* dir: the monitor writes the sandbox's pid to its cgroup.procs before release */
    {"cgroup-v2", OP_CGROUP_V2, 1},   /* dir: clone3 creates the sandbox in it (CLONE_INTO_CGROUP) */
    {"rlimit", OP_RLIMIT, 3},         /* core|fsize|nofile soft hard, set in the payload */
    {"wall", OP_WALL, 2},             /* limit-ms grace-ms: init ends the run at the limit */
    {"orphan-rmdir", OP_ORPHAN_RMDIR, 1}, /* host dir: the monitor rmdirs it (if empty) when otk is gone */
    {"proxy-relay", OP_PROXY_RELAY, 2},   /* port socket: relay 127.0.0.1:port to the unix socket (a path inside) */
};

struct op {
    enum op_kind kind;
    const char *a[ARGS_MAX];
};

static char spec_buf[SPEC_MAX + 1];
static struct op ops[OPS_MAX];
static size_t n_ops;
/* Bind sources opened before the identity switch (see sandbox_init); -1 where not. */
static int bind_fd[OPS_MAX];
static char *argv_out[OPS_MAX + 1];
static char *envp_out[OPS_MAX + 1];

/* What the spec asks for, gathered once by check_spec(). */
static struct {
    uint64_t clone_flags;
    int unshare_cgroup;
    const char *uid_inside, *uid_host, *gid_inside, *gid_host;
    int setgroups_allow;
    const char *hostname;
    int loopback;
    int deny_userns;
    unsigned long long root_size;
    const char *cwd;
    const char *clean;
    uid_t uid;
    gid_t gid;
    int seccomp;
    int landlock;
    const char *cgroup_dirs[8];
    size_t n_cgroup_dirs;
    int cgroup_v2;
    unsigned long long wall_ms, grace_ms;
    unsigned long long landlock_fs, landlock_net, landlock_scoped;
    const char *orphan_rmdir;
    unsigned relay_port;
    const char *relay_socket;
} want;

/*
 * The seccomp programs, read from SECCOMP_FD before clone3 (no allocation after it).
 * 4096 instructions is the kernel's limit per program; otk sends at most a few.
 */
#define SECCOMP_PROGRAMS_MAX 4
#define SECCOMP_WIRE_MAX (SECCOMP_PROGRAMS_MAX * (4 + BPF_MAXINSNS * sizeof(struct sock_filter)))
static unsigned char seccomp_wire[SECCOMP_WIRE_MAX] __attribute__((aligned(8)));
static struct sock_fprog seccomp_programs[SECCOMP_PROGRAMS_MAX];
static size_t n_seccomp_programs;

static int status_fd = -1;

/*
 * The CPUs the command may use. Setup runs pinned to one CPU: every handoff between
 * monitor, init and payload is then a same-CPU wakeup, which on an idle virtual
 * machine saves milliseconds of waking a sleeping vCPU. The payload gets the original
 * set back before execve.
 */
static cpu_set_t original_cpus;
static int cpus_pinned;
static const char *current_step = "spec";

/* ---- reporting ---- */

/* Writes one failure record and exits 127. Async-signal-safe apart from vsnprintf into a stack buffer. */
__attribute__((noreturn, format(printf, 2, 3))) static void fail(int err, const char *fmt, ...) {
    struct otk_record r;
    memset(&r, 0, sizeof r);
    r.magic = OTK_RECORD_MAGIC;
    r.kind = OTK_RECORD_FAILURE;
    r.err = err;
    strncpy(r.step, current_step, sizeof r.step - 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.detail, sizeof r.detail, fmt, ap);
    va_end(ap);
    if (status_fd >= 0) {
        ssize_t n;
        do n = write(status_fd, &r, sizeof r); while (n < 0 && errno == EINTR);
    } else {
        dprintf(2, "otk-launcher: %s: %s: %s\n", r.step, r.detail, strerror(err));
    }
    _exit(127);
}

static void report_exit(int wait_status, int timed_out) {
    struct otk_record r;
    memset(&r, 0, sizeof r);
    r.magic = OTK_RECORD_MAGIC;
    r.kind = timed_out ? OTK_RECORD_TIMEOUT : OTK_RECORD_EXIT;
    r.value = wait_status;
    strncpy(r.step, "exit", sizeof r.step - 1);
    ssize_t n;
    do n = write(status_fd, &r, sizeof r); while (n < 0 && errno == EINTR);
}

/* ---- raw syscalls (no wrapper in older C libraries) ---- */

static long sys_clone3(struct otk_clone_args *args) { return syscall(SYS_clone3, args, sizeof *args); }
static int sys_pivot_root(const char *new_root, const char *put_old) { return (int)syscall(SYS_pivot_root, new_root, put_old); }
static int sys_open_tree(int dfd, const char *path, unsigned flags) { return (int)syscall(SYS_open_tree, dfd, path, flags); }
static int sys_move_mount(int from, const char *from_path, int to, const char *to_path, unsigned flags) {
    return (int)syscall(SYS_move_mount, from, from_path, to, to_path, flags);
}
static int sys_fsopen(const char *fs, unsigned flags) { return (int)syscall(SYS_fsopen, fs, flags); }
static int sys_fsconfig(int fd, unsigned cmd, const char *key, const void *value, int aux) {
    return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}
static int sys_fsmount(int fd, unsigned flags, unsigned attrs) { return (int)syscall(SYS_fsmount, fd, flags, attrs); }
static int sys_mount_setattr(int dfd, const char *path, unsigned flags, uint64_t set) {
    struct otk_mount_attr attr = {.attr_set = set};
    return (int)syscall(SYS_mount_setattr, dfd, path, flags, &attr, sizeof attr);
}
static int sys_openat2(int dfd, const char *path, int flags, uint64_t resolve) {
    struct open_how how = {.flags = (uint64_t)flags, .resolve = resolve};
    return (int)syscall(SYS_openat2, dfd, path, &how, sizeof how);
}
static int sys_close_range(unsigned first, unsigned last) { return (int)syscall(SYS_close_range, first, last, 0); }

static ssize_t write_all(int fd, const char *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* Writes a whole small file such as /proc/PID/uid_map; returns 0 or -1 with errno set. */
static int write_file(const char *path, const char *content) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write_all(fd, content, strlen(content));
    int saved = errno;
    close(fd);
    errno = saved;
    return n < 0 ? -1 : 0;
}

/* ---- spec parsing and checking (monitor, before clone) ---- */

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out, int base) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || *end || v > max || *s == '-') return -1;
    *out = v;
    return 0;
}

/* An absolute, normalized path: starts with '/', no "." or ".." component, no "//". */
static int is_clean_absolute(const char *p) {
    if (p[0] != '/') return 0;
    if (strlen(p) >= PATH_MAX) return 0;
    for (const char *c = p; *c;) {
        while (*c == '/') c++;
        const char *end = strchrnul(c, '/');
        size_t len = (size_t)(end - c);
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) return 0;
        if (len == 0 && *end) return 0;
        c = end;
        if (*c == '/' && c[1] == '/') return 0;
    }
    return 1;
}

/*
 * The spec is a sequence of NUL-terminated tokens: "otk-spec-1", then operations,
 * each an operation name followed by exactly its arguments, then "end".
 */
static void parse_spec(int fd) {
    size_t len = 0;
    for (;;) {
        ssize_t n = pread(fd, spec_buf + len, SPEC_MAX - len, (off_t)len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(errno, "cannot read the launch spec");
        if (n == 0) break;
        len += (size_t)n;
        if (len == SPEC_MAX) fail(EFBIG, "launch spec larger than %u bytes", SPEC_MAX);
    }
    spec_buf[len] = '\0';
    if (len == 0 || spec_buf[len - 1] != '\0') fail(EINVAL, "launch spec is not NUL-terminated");

    char *p = spec_buf, *end = spec_buf + len;
    if (strcmp(p, "otk-spec-1") != 0) fail(EINVAL, "launch spec has no otk-spec-1 header");
    p += strlen(p) + 1;
    while (p < end) {
        if (strcmp(p, "end") == 0) {
            if (p + strlen(p) + 1 != end) fail(EINVAL, "launch spec has data after end");
            return;
        }
        size_t i;
        for (i = 0; i < sizeof op_table / sizeof op_table[0]; i++)
            if (strcmp(p, op_table[i].name) == 0) break;
        if (i == sizeof op_table / sizeof op_table[0]) fail(EINVAL, "unknown launch operation `%.64s`", p);
        if (n_ops == OPS_MAX) fail(E2BIG, "more than %d launch operations", OPS_MAX);
        struct op *op = &ops[n_ops++];
        op->kind = op_table[i].kind;
        p += strlen(p) + 1;
        for (int a = 0; a < op_table[i].argc; a++) {
            if (p >= end) fail(EINVAL, "operation `%s` is missing arguments", op_table[i].name);
            op->a[a] = p;
            p += strlen(p) + 1;
        }
    }
    fail(EINVAL, "launch spec has no end marker");
}

static void check_spec(void) {
    size_t n_args = 0, n_env = 0;
    unsigned long long v;
    want.root_size = 8ull << 20;
    for (size_t i = 0; i < n_ops; i++) {
        struct op *op = &ops[i];
        switch (op->kind) {
        case OP_NAMESPACE: {
            const char *n = op->a[0];
            if (!strcmp(n, "user")) want.clone_flags |= CLONE_NEWUSER;
            else if (!strcmp(n, "mount")) want.clone_flags |= CLONE_NEWNS;
            else if (!strcmp(n, "pid")) want.clone_flags |= CLONE_NEWPID;
            else if (!strcmp(n, "net")) want.clone_flags |= CLONE_NEWNET;
            else if (!strcmp(n, "ipc")) want.clone_flags |= CLONE_NEWIPC;
            else if (!strcmp(n, "uts")) want.clone_flags |= CLONE_NEWUTS;
            else if (!strcmp(n, "cgroup")) want.unshare_cgroup = 1;
            else fail(EINVAL, "unknown namespace `%.64s`", n);
            break;
        }
        case OP_UID:
        case OP_GID:
            if (parse_uint(op->a[0], 0xfffffffeu, &v, 10) || parse_uint(op->a[1], 0xfffffffeu, &v, 10))
                fail(EINVAL, "bad id mapping %.32s %.32s", op->a[0], op->a[1]);
            if (op->kind == OP_UID) { want.uid_inside = op->a[0]; want.uid_host = op->a[1]; want.uid = (uid_t)strtoul(op->a[0], NULL, 10); }
            else { want.gid_inside = op->a[0]; want.gid_host = op->a[1]; want.gid = (gid_t)strtoul(op->a[0], NULL, 10); }
            break;
        case OP_SETGROUPS:
            if (strcmp(op->a[0], "allow") && strcmp(op->a[0], "deny")) fail(EINVAL, "setgroups takes allow or deny");
            want.setgroups_allow = !strcmp(op->a[0], "allow");
            break;
        case OP_HOSTNAME:
            if (strlen(op->a[0]) > 64) fail(EINVAL, "hostname longer than 64 bytes");
            want.hostname = op->a[0];
            break;
        case OP_LOOPBACK: want.loopback = 1; break;
        case OP_PROXY_RELAY:
            if (want.relay_socket || parse_uint(op->a[0], 65535, &v, 10) || !v) fail(EINVAL, "bad or second proxy-relay port `%.16s`", op->a[0]);
            want.relay_port = (unsigned)v;
            if (!is_clean_absolute(op->a[1]) || strlen(op->a[1]) >= sizeof(((struct sockaddr_un *)0)->sun_path))
                fail(EINVAL, "proxy-relay socket `%.150s` is not a clean absolute path shorter than sun_path", op->a[1]);
            want.relay_socket = op->a[1];
            break;
        case OP_DENY_USERNS: want.deny_userns = 1; break;
        case OP_ROOT_SIZE:
            if (parse_uint(op->a[0], 1ull << 40, &want.root_size, 10)) fail(EINVAL, "bad root size `%.32s`", op->a[0]);
            break;
        case OP_BIND:
            if (!is_clean_absolute(op->a[0])) fail(EINVAL, "bind source `%.150s` is not a clean absolute path", op->a[0]);
            if (!is_clean_absolute(op->a[1]) || !strcmp(op->a[1], "/")) fail(EINVAL, "bind destination `%.150s` is not a clean absolute path", op->a[1]);
            if (strcmp(op->a[2], "ro") && strcmp(op->a[2], "rw") && strcmp(op->a[2], "ro,try") && strcmp(op->a[2], "rw,try"))
                fail(EINVAL, "bind mode `%.32s` is not ro, rw, ro,try or rw,try", op->a[2]);
            break;
        case OP_TMPFS:
            if (parse_uint(op->a[1], 1ull << 40, &v, 10) || parse_uint(op->a[2], 07777, &v, 8))
                fail(EINVAL, "bad tmpfs size or mode for `%.150s`", op->a[0]);
            /* fall through: the destination is checked like every other */
            __attribute__((fallthrough));
        case OP_PROC:
        case OP_DEV:
        case OP_MASK:
        case OP_READONLY:
            if (!is_clean_absolute(op->a[0]) || !strcmp(op->a[0], "/")) fail(EINVAL, "destination `%.150s` is not a clean absolute path", op->a[0]);
            break;
        case OP_DIR:
        case OP_FILE:
            if (!is_clean_absolute(op->a[0]) || !strcmp(op->a[0], "/")) fail(EINVAL, "destination `%.150s` is not a clean absolute path", op->a[0]);
            if (parse_uint(op->a[1], 07777, &v, 8)) fail(EINVAL, "bad mode for `%.150s`", op->a[0]);
            break;
        case OP_SYMLINK:
            if (!*op->a[0] || !is_clean_absolute(op->a[1])) fail(EINVAL, "bad symlink `%.150s`", op->a[1]);
            break;
        case OP_ROOT_READONLY: break;
        case OP_ENV:
            if (!strchr(op->a[0], '=') || op->a[0][0] == '=') fail(EINVAL, "environment entry `%.64s` is not NAME=VALUE", op->a[0]);
            envp_out[n_env++] = (char *)op->a[0];
            break;
        case OP_ARG: argv_out[n_args++] = (char *)op->a[0]; break;
        case OP_CWD:
            if (!is_clean_absolute(op->a[0])) fail(EINVAL, "working directory `%.150s` is not a clean absolute path", op->a[0]);
            want.cwd = op->a[0];
            break;
        case OP_CLEAN:
            if (!is_clean_absolute(op->a[0]) || !strcmp(op->a[0], "/")) fail(EINVAL, "clean path `%.150s` is not a clean absolute path below /", op->a[0]);
            want.clean = op->a[0];
            break;
        case OP_SECCOMP: want.seccomp = 1; break;
        case OP_CGROUP_V1:
        case OP_CGROUP_V2:
            if (!is_clean_absolute(op->a[0]) || strlen(op->a[0]) > 200) fail(EINVAL, "cgroup directory `%.150s` is not a clean absolute path", op->a[0]);
            if (want.n_cgroup_dirs == sizeof want.cgroup_dirs / sizeof want.cgroup_dirs[0]) fail(E2BIG, "too many cgroup directories");
            if (want.n_cgroup_dirs && want.cgroup_v2 != (op->kind == OP_CGROUP_V2)) fail(EINVAL, "cgroup v1 and v2 directories mixed");
            if (op->kind == OP_CGROUP_V2 && want.n_cgroup_dirs) fail(EINVAL, "more than one cgroup v2 directory");
            want.cgroup_v2 = op->kind == OP_CGROUP_V2;
            want.cgroup_dirs[want.n_cgroup_dirs++] = op->a[0];
            break;
        case OP_RLIMIT: {
            unsigned long long soft, hard;
            if ((strcmp(op->a[0], "core") && strcmp(op->a[0], "fsize") && strcmp(op->a[0], "nofile"))
                || parse_uint(op->a[1], ~0ull, &soft, 10) || parse_uint(op->a[2], ~0ull, &hard, 10) || soft > hard)
                fail(EINVAL, "bad rlimit `%.16s %.24s %.24s`", op->a[0], op->a[1], op->a[2]);
            break;
        }
        case OP_ORPHAN_RMDIR:
            if (!is_clean_absolute(op->a[0]) || !strcmp(op->a[0], "/")) fail(EINVAL, "orphan-rmdir path `%.150s` is not a clean absolute path", op->a[0]);
            want.orphan_rmdir = op->a[0];
            break;
        case OP_WALL:
            if (parse_uint(op->a[0], 7ull * 24 * 3600 * 1000, &want.wall_ms, 10) || !want.wall_ms
                || parse_uint(op->a[1], 7ull * 24 * 3600 * 1000, &want.grace_ms, 10))
                fail(EINVAL, "bad wall-clock limit");
            break;
        case OP_LANDLOCK:
            if (want.landlock || parse_uint(op->a[0], ~0ull, &want.landlock_fs, 16) || parse_uint(op->a[1], ~0ull, &want.landlock_net, 16)
                || parse_uint(op->a[2], ~0ull, &want.landlock_scoped, 16) || !want.landlock_fs)
                fail(EINVAL, "bad landlock ruleset");
            want.landlock = 1;
            break;
        case OP_LANDLOCK_PATH:
            if (!want.landlock) fail(EINVAL, "landlock-path before landlock");
            if (parse_uint(op->a[0], ~0ull, &v, 16) || (v & ~want.landlock_fs)) fail(EINVAL, "bad landlock access for `%.150s`", op->a[1]);
            if (!is_clean_absolute(op->a[1])) fail(EINVAL, "landlock path `%.150s` is not a clean absolute path", op->a[1]);
            if (strcmp(op->a[2], "try") && strcmp(op->a[2], "must")) fail(EINVAL, "landlock-path takes try or must");
            break;
        case OP_LANDLOCK_PORT:
            if (!want.landlock) fail(EINVAL, "landlock-port before landlock");
            if (parse_uint(op->a[0], ~0ull, &v, 16) || !v || (v & ~want.landlock_net) || parse_uint(op->a[1], 65535, &v, 10))
                fail(EINVAL, "bad landlock port rule `%.32s`", op->a[1]);
            break;
        }
    }
    /* The launcher builds a private root, so these two are not optional. */
    /* A private root needs user and mount namespaces; init's kill(-1) needs its own pid namespace. */
    const uint64_t required = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID;
    if ((want.clone_flags & required) != required) fail(EINVAL, "the spec must ask for user, mount and pid namespaces");
    if (!want.uid_host || !want.gid_host) fail(EINVAL, "the spec has no uid or gid mapping");
    if (strtoul(want.uid_host, NULL, 10) == 0 || strtoul(want.gid_host, NULL, 10) == 0)
        fail(EPERM, "the sandbox may never be host uid or gid 0");
    if (n_args == 0) fail(EINVAL, "the spec has no command");
    /* The relay listens on the sandbox's own loopback: never on the host's, and never with lo down. */
    if (want.relay_socket && (!(want.clone_flags & CLONE_NEWNET) || !want.loopback))
        fail(EINVAL, "proxy-relay needs a net namespace of its own with loopback up");
    if (!want.cwd) want.cwd = "/";
    argv_out[n_args] = NULL;
    envp_out[n_env] = NULL;
}

/* Reads and checks the seccomp programs; the kernel checks each program itself when it is loaded. */
static void read_seccomp(int fd) {
    size_t len = 0;
    for (;;) {
        ssize_t n = pread(fd, seccomp_wire + len, sizeof seccomp_wire - len, (off_t)len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(errno, "cannot read the seccomp programs");
        if (n == 0) break;
        len += (size_t)n;
        if (len == sizeof seccomp_wire) fail(EFBIG, "seccomp programs larger than %zu bytes", sizeof seccomp_wire);
    }
    size_t off = 0;
    while (off < len) {
        if (n_seccomp_programs == SECCOMP_PROGRAMS_MAX) fail(E2BIG, "more than %d seccomp programs", SECCOMP_PROGRAMS_MAX);
        if (len - off < 4) fail(EINVAL, "truncated seccomp program header");
        uint32_t count = (uint32_t)seccomp_wire[off] | (uint32_t)seccomp_wire[off + 1] << 8
                         | (uint32_t)seccomp_wire[off + 2] << 16 | (uint32_t)seccomp_wire[off + 3] << 24;
        off += 4;
        if (count == 0 || count > BPF_MAXINSNS || (len - off) / sizeof(struct sock_filter) < count)
            fail(EINVAL, "seccomp program %zu has a bad length (%u instructions)", n_seccomp_programs + 1, count);
        seccomp_programs[n_seccomp_programs].len = (unsigned short)count;
        seccomp_programs[n_seccomp_programs].filter = (struct sock_filter *)(void *)(seccomp_wire + off);
        n_seccomp_programs++;
        off += count * sizeof(struct sock_filter);
    }
    if (n_seccomp_programs == 0) fail(EINVAL, "the spec asks for seccomp but no program was passed");
}

/* ---- signal forwarding in the monitor ---- */

static volatile pid_t monitor_child;

static void monitor_forward(int sig) {
    int saved = errno;
    if (monitor_child > 0) kill(monitor_child, sig);
    errno = saved;
}

static void monitor_on_sigchld(int sig) { (void)sig; }

static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGTSTP, SIGCONT};
#define N_FORWARDED (sizeof forwarded_signals / sizeof forwarded_signals[0])

/* ---- the new root (init, inside all new namespaces) ---- */

/*
 * Opens (creating as needed) the mount point `path` inside the new root, one
 * component at a time with O_NOFOLLOW, so that no symlink -- including one a
 * previous bind brought in from a host directory -- can redirect a mount.
 * `as_dir` says whether the last component is a directory or a file.
 */
static int open_mountpoint(int root_fd, const char *path, int as_dir, mode_t mode) {
    char comp[NAME_MAX + 1];
    int cur = dup(root_fd);
    if (cur < 0) fail(errno, "dup");
    const char *c = path;
    while (*c == '/') c++;
    while (*c) {
        const char *end = strchrnul(c, '/');
        size_t len = (size_t)(end - c);
        if (len > NAME_MAX) fail(ENAMETOOLONG, "`%.150s`", path);
        memcpy(comp, c, len);
        comp[len] = '\0';
        const char *rest = end;
        while (*rest == '/') rest++;
        int last = (*rest == '\0');
        int next, create_err = 0;
        if (!last || as_dir) {
            if (mkdirat(cur, comp, last ? mode : 0755) < 0 && errno != EEXIST) create_err = errno;
            next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } else {
            /*
             * An existing file is used as it is; a missing one is created. It is never opened
             * for writing: a FIFO placed there by the workspace would block us forever.
             */
            next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (next < 0 && errno == ENOENT) {
                int f = openat(cur, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
                if (f < 0) create_err = errno;
                else close(f);
                next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            }
            struct stat st;
            if (next >= 0 && (fstat(next, &st) < 0 || !S_ISREG(st.st_mode)))
                fail(EINVAL, "mount point `%.150s` exists and is not a regular file", path);
        }
        if (next < 0 && errno == ENOENT && create_err)
            fail(create_err, "cannot create mount point `%.150s` (component `%s`): is it below a read-only bind?", path, comp);
        if (next < 0) fail(errno, "cannot open `%.150s` in the new root without following symlinks", path);
        close(cur);
        cur = next;
        c = rest;
    }
    return cur;
}

/* Attaches a detached mount (from open_tree or fsmount) on top of the mount point fd. */
static void attach(int mnt_fd, int target_fd, const char *what) {
    if (sys_move_mount(mnt_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        fail(errno, "cannot attach %.150s", what);
    close(mnt_fd);
    close(target_fd);
}

/*
 * A detached clone of the host path `path`, opened beneath the old root with
 * RESOLVE_NO_SYMLINKS: otk canonicalized it, so a symlink appearing now means the host
 * changed between deciding and executing, and the open fails. `attrs` are set on the clone
 * (on its submounts too with `recursive`) before it is ever attached: there is no moment
 * when it is, say, writable in the new root. Returns -1 only for a missing path with
 * `missing_ok`; fills *st when given.
 */
static int open_host_path(int dirfd, const char *path) {
    return sys_openat2(dirfd, path[1] ? path + 1 : ".", O_PATH | O_CLOEXEC, RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
}

/* `fd`: the path opened already (an O_PATH descriptor), or -1 to open it here under oldroot_fd. */
static int clone_host_path(int oldroot_fd, int fd, const char *path, uint64_t attrs, int recursive, int missing_ok, struct stat *st) {
    if (fd < 0) fd = open_host_path(oldroot_fd, path);
    if (fd < 0) {
        if (missing_ok && errno == ENOENT) return -1;
        fail(errno, "cannot open host path `%.150s`", path);
    }
    if (st && fstat(fd, st) < 0) fail(errno, "cannot stat host path `%.150s`", path);
    int tree = sys_open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
    if (tree < 0) fail(errno, "cannot clone the mount of `%.150s`", path);
    close(fd);
    if (sys_mount_setattr(tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), attrs) < 0)
        fail(errno, "cannot set mount flags on the clone of `%.150s`", path);
    return tree;
}

/* Binds a host path into the new root, read-only (recursively) or read-write, nosuid and nodev. */
static void do_bind(int oldroot_fd, int root_fd, int src_fd, const char *src, const char *dst, const char *mode) {
    int ro = !strncmp(mode, "ro", 2), try_only = strstr(mode, "try") != NULL;
    struct stat st;
    uint64_t attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (ro ? MOUNT_ATTR_RDONLY : 0);
    int tree = clone_host_path(oldroot_fd, src_fd, src, attrs, 1, try_only, &st);
    if (tree < 0) return;
    attach(tree, open_mountpoint(root_fd, dst, S_ISDIR(st.st_mode), 0755), dst);
}

/*
 * A new, still detached filesystem instance (tmpfs, proc, devpts) from the fsopen API.
 * `options` are key/value pairs, NULL-terminated; a NULL value sets a flag option.
 */
static int new_fs(const char *fstype, const char *const *options, unsigned attrs, const char *dst) {
    int fs = sys_fsopen(fstype, FSOPEN_CLOEXEC);
    if (fs < 0) fail(errno, "cannot open a %s filesystem for `%.150s`", fstype, dst);
    for (const char *const *o = options; o && o[0]; o += 2) {
        int rc = o[1] ? sys_fsconfig(fs, OTK_FSCONFIG_SET_STRING, o[0], o[1], 0)
                      : sys_fsconfig(fs, OTK_FSCONFIG_SET_FLAG, o[0], NULL, 0);
        if (rc < 0) fail(errno, "%s option %s for `%.120s`", fstype, o[0], dst);
    }
    if (sys_fsconfig(fs, OTK_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        fail(errno, "cannot create the %s filesystem for `%.150s`", fstype, dst);
    int mnt = sys_fsmount(fs, FSMOUNT_CLOEXEC, attrs);
    if (mnt < 0) fail(errno, "cannot mount %s at `%.150s`", fstype, dst);
    close(fs);
    return mnt;
}

/* A new filesystem instance attached at dst, which is created as a directory if needed. */
static void do_fs(int root_fd, const char *fstype, const char *dst, const char *const *options, unsigned attrs) {
    attach(new_fs(fstype, options, attrs, dst), open_mountpoint(root_fd, dst, 1, 0755), dst);
}

static void do_tmpfs(int root_fd, const char *dst, const char *size, const char *mode) {
    const char *opts[] = {"size", size, "mode", mode, NULL};
    do_fs(root_fd, "tmpfs", dst, opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
}

/* Opens an existing path in the new root without following symlinks; -1 if it does not exist. */
static int open_existing(int root_fd, const char *path) {
    int fd = sys_openat2(root_fd, path + 1, O_PATH | O_CLOEXEC, RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH);
    if (fd < 0 && errno != ENOENT) fail(errno, "cannot open `%.150s` in the new root", path);
    return fd;
}

/* Hides a path: an empty read-only tmpfs over a directory, the host's /dev/null over a file. */
static void do_mask(int oldroot_fd, int root_fd, const char *path) {
    int fd = open_existing(root_fd, path);
    if (fd < 0) return;
    struct stat st;
    if (fstat(fd, &st) < 0) fail(errno, "cannot stat `%.150s`", path);
    if (S_ISDIR(st.st_mode)) {
        const char *opts[] = {"size", "0", "mode", "0555", NULL};
        int mnt = new_fs("tmpfs", opts, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, path);
        attach(mnt, fd, path);
    } else {
        int tree = clone_host_path(oldroot_fd, -1, "/dev/null", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0, 0, NULL);
        attach(tree, fd, path);
    }
}

/* Makes an existing path read-only by binding it onto itself, read-only, recursively. */
static void do_readonly(int root_fd, const char *path) {
    int fd = open_existing(root_fd, path);
    if (fd < 0) return;
    int tree = sys_open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0) fail(errno, "cannot clone `%.150s` to make it read-only", path);
    if (sys_mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV) < 0)
        fail(errno, "cannot make `%.150s` read-only", path);
    attach(tree, fd, path);
}

/*
 * A minimal /dev: a tmpfs holding binds of six host device nodes (a user
 * namespace cannot mknod), a private devpts instance, the usual symlinks and an
 * empty shm directory; then the tmpfs itself is made read-only.
 */
static void do_dev(int oldroot_fd, int root_fd, const char *dst) {
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    char path[PATH_MAX];
    const char *opts[] = {"size", "65536", "mode", "0755", NULL};
    do_fs(root_fd, "tmpfs", dst, opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        char host[32];
        snprintf(host, sizeof host, "/dev/%s", nodes[i]);
        /* nodev would make the node useless; nosuid and noexec cost nothing. */
        int tree = clone_host_path(oldroot_fd, -1, host, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0, 0, NULL);
        snprintf(path, sizeof path, "%s/%s", dst, nodes[i]);
        attach(tree, open_mountpoint(root_fd, path, 0, 0), path);
    }
    snprintf(path, sizeof path, "%s/pts", dst);
    /* Every devpts mount is a private instance (Linux 4.7+): the host's ptys are not in it. */
    const char *pts_opts[] = {"ptmxmode", "0666", "mode", "0620", NULL};
    int mnt = new_fs("devpts", pts_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, path);
    attach(mnt, open_mountpoint(root_fd, path, 1, 0755), path);

    static const char *const links[][2] = {
        {"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
        {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
    };
    int dev_fd = open_existing(root_fd, dst);
    if (dev_fd < 0) fail(ENOENT, "%.150s vanished", dst);
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlinkat(links[i][0], dev_fd, links[i][1]) < 0) fail(errno, "cannot create %s/%s", dst, links[i][1]);
    if (mkdirat(dev_fd, "shm", 01777) < 0) fail(errno, "cannot create %s/shm", dst);
    if (sys_mount_setattr(dev_fd, "", AT_EMPTY_PATH, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC) < 0)
        fail(errno, "cannot make %.150s read-only", dst);
    close(dev_fd);
}

static void do_dir(int root_fd, const char *dst, const char *mode) {
    close(open_mountpoint(root_fd, dst, 1, (mode_t)strtoul(mode, NULL, 8)));
}

/* Splits an absolute path into its parent (opened, created as needed, no symlinks followed) and last name. */
static int open_parent(int root_fd, const char *path, char *parent, size_t size, const char **name) {
    snprintf(parent, size, "%s", path);
    char *slash = strrchr(parent, '/');
    *name = path + (slash - parent) + 1;
    *slash = '\0';
    return parent[0] ? open_mountpoint(root_fd, parent, 1, 0755) : dup(root_fd);
}

/* Creates a symlink in the new root. O_PATH directory fds serve every *at() call. */
static void do_symlink(int root_fd, const char *target, const char *dst) {
    char parent[PATH_MAX];
    const char *name;
    int dir = open_parent(root_fd, dst, parent, sizeof parent, &name);
    if (dir < 0) fail(errno, "cannot open the parent of `%.150s`", dst);
    if (symlinkat(target, dir, name) < 0) fail(errno, "cannot create symlink `%.150s`", dst);
    close(dir);
}

/* Writes a small file (e.g. /etc/passwd) into the new root, refusing to follow or replace anything. */
static void do_file(int root_fd, const char *dst, const char *mode, const char *content) {
    char parent[PATH_MAX];
    const char *name;
    int dir = open_parent(root_fd, dst, parent, sizeof parent, &name);
    if (dir < 0) fail(errno, "cannot open the parent of `%.150s`", dst);
    int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)strtoul(mode, NULL, 8));
    if (fd < 0) fail(errno, "cannot create `%.150s`", dst);
    if (write_all(fd, content, strlen(content)) < 0) fail(errno, "cannot write `%.150s`", dst);
    close(fd);
    close(dir);
}

static void bring_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) fail(errno, "socket for the loopback interface");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail(errno, "cannot read the flags of lo");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail(errno, "cannot bring lo up");
    close(s);
}

/*
 * Builds the new root and enters it. The host root stays reachable at /oldroot
 * only until every bind source has been opened; then it is detached for good.
 */
static void build_root(void) {
    /* Private propagation before any mount, so nothing we mount leaks to the host. */
    current_step = "mount-private";
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail(errno, "cannot make / private");

    /* A scratch tmpfs over /tmp that holds the new root and, after pivot, the old one. */
    current_step = "mount-base";
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=65536,mode=0700") < 0) fail(errno, "cannot mount the scratch tmpfs on /tmp");
    if (mkdir("/tmp/newroot", 0755) < 0 || mkdir("/tmp/oldroot", 0700) < 0) fail(errno, "cannot create scratch directories");
    current_step = "pivot_root";
    if (sys_pivot_root("/tmp", "/tmp/oldroot") < 0) fail(errno, "cannot pivot into the scratch tmpfs");
    if (chdir("/") < 0) fail(errno, "chdir /");

    current_step = "mount-root";
    /* mode= at mount time: tmpfs ignores it on remount, and a 1777 / would let anyone write there. */
    char opts[64];
    snprintf(opts, sizeof opts, "size=%llu,mode=0755", want.root_size);
    if (mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) fail(errno, "cannot mount the root tmpfs");
    int root_fd = open("/newroot", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int oldroot_fd = open("/oldroot", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0 || oldroot_fd < 0) fail(errno, "cannot open /newroot or /oldroot");

    for (size_t i = 0; i < n_ops; i++) {
        struct op *op = &ops[i];
        switch (op->kind) {
        case OP_BIND: current_step = "bind"; do_bind(oldroot_fd, root_fd, bind_fd[i], op->a[0], op->a[1], op->a[2]); break;
        case OP_TMPFS: current_step = "tmpfs"; do_tmpfs(root_fd, op->a[0], op->a[1], op->a[2]); break;
        case OP_PROC: {
            current_step = "proc";
            do_fs(root_fd, "proc", op->a[0], NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
            break;
        }
        case OP_DEV: current_step = "dev"; do_dev(oldroot_fd, root_fd, op->a[0]); break;
        case OP_DIR: current_step = "dir"; do_dir(root_fd, op->a[0], op->a[1]); break;
        case OP_SYMLINK: current_step = "symlink"; do_symlink(root_fd, op->a[0], op->a[1]); break;
        case OP_FILE: current_step = "file"; do_file(root_fd, op->a[0], op->a[1], op->a[2]); break;
        case OP_MASK: current_step = "mask"; do_mask(oldroot_fd, root_fd, op->a[0]); break;
        case OP_READONLY: current_step = "readonly"; do_readonly(root_fd, op->a[0]); break;
        case OP_ROOT_READONLY:
            current_step = "root-readonly";
            if (sys_mount_setattr(root_fd, "", AT_EMPTY_PATH, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV) < 0)
                fail(errno, "cannot make the new root read-only");
            break;
        default: break;
        }
    }
    close(root_fd);
    close(oldroot_fd);

    /* Every source is bound: detach the host root so nothing can reach it again. */
    current_step = "detach-oldroot";
    if (umount2("/oldroot", MNT_DETACH) < 0) fail(errno, "cannot detach the host root");
    current_step = "pivot_root";
    if (chdir("/newroot") < 0) fail(errno, "chdir /newroot");
    /* pivot_root(".", ".") stacks the old root on top of the new; detaching "." then drops it. */
    if (sys_pivot_root(".", ".") < 0) fail(errno, "cannot pivot into the new root");
    if (umount2(".", MNT_DETACH) < 0) fail(errno, "cannot detach the scratch root");
    if (chdir("/") < 0) fail(errno, "chdir / in the new root");
}

/* Drops every privilege the sandbox's processes could hold, for init and so for the payload. */
static void drop_privileges(void) {
    current_step = "capabilities";
    /* The bounding set first: dropping it needs CAP_SETPCAP, which the next steps remove. */
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            fail(errno, "cannot drop capability %d from the bounding set", cap);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        fail(errno, "cannot clear the ambient capabilities");
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &hdr, data) < 0) fail(errno, "cannot clear the capability sets");
    /* With an empty bounding set no exec can grant a capability; no_new_privs also stops setuid and file capabilities. */
    current_step = "no_new_privs";
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail(errno, "cannot set no_new_privs");
}

/* ---- the payload's last two layers: Landlock, then seccomp ---- */

/* Landlock's UAPI (linux/landlock.h), which glibc 2.36's headers stop short of. */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif
struct otk_landlock_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net; /* ABI 4 */
    uint64_t scoped;             /* ABI 6 */
};
struct otk_landlock_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));
struct otk_landlock_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
};
#define OTK_LANDLOCK_RULE_PATH_BENEATH 1
#define OTK_LANDLOCK_RULE_NET_PORT 2
/* The rights that apply to a file (not a directory): execute, write, read, truncate, ioctl on devices. */
#define OTK_LANDLOCK_FILE_RIGHTS ((1ull << 0) | (1ull << 1) | (1ull << 2) | (1ull << 14) | (1ull << 15))

/*
 * After pivot_root, so that rules name the sandbox's own inodes; in the payload, so that init
 * (which must signal and clean up everything) is outside the domain. Every path is opened
 * without following symlinks: a rule must land on the mount otk made, not where a link points.
 */
static void apply_landlock(void) {
    current_step = "landlock";
    /* Sized for ABI 6; an older kernel accepts the larger struct as long as the fields it lacks are zero. */
    struct otk_landlock_ruleset_attr attr = {want.landlock_fs, want.landlock_net, want.landlock_scoped};
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (ruleset < 0)
        fail(errno, "cannot create the Landlock ruleset (fs %llx, net %llx, scoped %llx)", (unsigned long long)want.landlock_fs,
             (unsigned long long)want.landlock_net, (unsigned long long)want.landlock_scoped);
    for (size_t i = 0; i < n_ops; i++) {
        struct op *op = &ops[i];
        if (op->kind == OP_LANDLOCK_PATH) {
            current_step = "landlock-path";
            uint64_t access = strtoull(op->a[0], NULL, 16);
            int fd = sys_openat2(AT_FDCWD, op->a[1], O_PATH | O_CLOEXEC, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
            if (fd < 0) {
                if (errno == ENOENT && !strcmp(op->a[2], "try")) continue;
                fail(errno, "cannot open `%.150s` for its Landlock rule", op->a[1]);
            }
            struct stat st;
            if (fstat(fd, &st) < 0) fail(errno, "cannot stat `%.150s`", op->a[1]);
            if (!S_ISDIR(st.st_mode)) access &= OTK_LANDLOCK_FILE_RIGHTS;
            struct otk_landlock_path_beneath_attr rule = {.allowed_access = access, .parent_fd = fd};
            if (access && syscall(SYS_landlock_add_rule, ruleset, OTK_LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0)
                fail(errno, "cannot add the Landlock rule for `%.150s`", op->a[1]);
            close(fd);
        } else if (op->kind == OP_LANDLOCK_PORT) {
            current_step = "landlock-port";
            struct otk_landlock_net_port_attr rule = {.allowed_access = strtoull(op->a[0], NULL, 16), .port = strtoull(op->a[1], NULL, 10)};
            if (syscall(SYS_landlock_add_rule, ruleset, OTK_LANDLOCK_RULE_NET_PORT, &rule, 0) < 0)
                fail(errno, "cannot add the Landlock rule for TCP port %.8s", op->a[1]);
        }
    }
    /* no_new_privs is already set (init, before the fork), as landlock_restrict_self requires. */
    current_step = "landlock-restrict";
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0) fail(errno, "the kernel did not enforce the Landlock ruleset");
    close(ruleset);
}

/* Soft and hard alike: without CAP_SYS_RESOURCE the command cannot raise them again. */
static void apply_rlimits(void) {
    current_step = "rlimit";
    for (size_t i = 0; i < n_ops; i++) {
        if (ops[i].kind != OP_RLIMIT) continue;
        int resource = !strcmp(ops[i].a[0], "core") ? RLIMIT_CORE : !strcmp(ops[i].a[0], "fsize") ? RLIMIT_FSIZE : RLIMIT_NOFILE;
        struct rlimit rl = {.rlim_cur = strtoull(ops[i].a[1], NULL, 10), .rlim_max = strtoull(ops[i].a[2], NULL, 10)};
        if (setrlimit(resource, &rl) < 0) fail(errno, "cannot set the %s limit to %.24s", ops[i].a[0], ops[i].a[2]);
    }
}

/* Last before execve: from here on only what the filter allows, and execve is among it. */
static void apply_seccomp(void) {
    current_step = "seccomp";
    for (size_t i = 0; i < n_seccomp_programs; i++)
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &seccomp_programs[i]) < 0)
            fail(errno, "the kernel refused seccomp program %zu of %zu", i + 1, n_seccomp_programs);
}

/* ---- init: pid 1 of the sandbox ---- */

static volatile sig_atomic_t pending_signals[65];
static volatile sig_atomic_t child_changed;

static void init_on_signal(int sig) {
    if (sig == SIGCHLD) child_changed = 1;
    else if (sig > 0 && sig < 65) pending_signals[sig] = 1;
}

/* Exec the command, searching the sandbox's PATH like a shell when argv[0] has no slash. */
__attribute__((noreturn)) static void exec_payload(void) {
    current_step = "execve";
    const char *cmd = argv_out[0];
    if (strchr(cmd, '/')) {
        execve(cmd, argv_out, envp_out);
        fail(errno, "cannot execute `%.150s`", cmd);
    }
    const char *path = "/usr/local/bin:/usr/bin:/bin";
    for (char **e = envp_out; *e; e++)
        if (!strncmp(*e, "PATH=", 5)) path = *e + 5;
    int first_err = ENOENT;
    for (const char *dir = path; *dir;) {
        const char *end = strchrnul(dir, ':');
        char full[PATH_MAX];
        size_t dlen = (size_t)(end - dir);
        if (dlen == 0) { dir = *end ? end + 1 : end; continue; }
        if (dlen + 1 + strlen(cmd) + 1 <= sizeof full) {
            memcpy(full, dir, dlen);
            full[dlen] = '/';
            strcpy(full + dlen + 1, cmd);
            execve(full, argv_out, envp_out);
            if (errno != ENOENT && errno != ENOTDIR && first_err == ENOENT) first_err = errno;
        }
        dir = *end ? end + 1 : end;
    }
    fail(first_err, "cannot execute `%.150s`: not found in the sandbox's PATH (%.100s)", cmd, path);
}

__attribute__((noreturn)) static void payload(int lifeline_fd, int sync_fd) {
    /* Start from clean signal state: init's handlers and blocked mask are not the command's. */
    for (size_t i = 0; i < N_FORWARDED; i++) signal(forwarded_signals[i], SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    close(lifeline_fd);
    close(sync_fd);
    /* Nothing inherited reaches the command but stdio and the CLOEXEC status pipe. */
    current_step = "close-fds";
    if (status_fd > 3 && sys_close_range(3, (unsigned)status_fd - 1) < 0) fail(errno, "close_range");
    if (sys_close_range((unsigned)status_fd + 1, ~0u) < 0) fail(errno, "close_range");

    umask(022);
    current_step = "affinity";
    if (cpus_pinned && sched_setaffinity(0, sizeof original_cpus, &original_cpus) < 0) fail(errno, "cannot restore the CPU set");
    current_step = "chdir";
    if (chdir(want.cwd) < 0) fail(errno, "cannot enter the working directory `%.150s`", want.cwd);
    /* A new session has no controlling terminal, so TIOCSTI cannot push keystrokes into the host's. */
    current_step = "setsid";
    if (setsid() < 0) fail(errno, "setsid");
    apply_rlimits();
    if (want.landlock) apply_landlock();
    if (want.seccomp) apply_seccomp();
    exec_payload();
}

/* ---- the proxy relay (network mode proxy) ----
 *
 * The sandbox's net namespace has nothing but its own loopback. otk's egress proxy runs outside,
 * on a unix socket bound into the sandbox; this relay, a process of the sandbox started by init,
 * accepts TCP on 127.0.0.1:PORT inside and passes each connection's bytes to and from a new
 * connection to that socket. It decides nothing: the proxy checks every request. It allocates
 * nothing: connections and buffers are static (a connection past RELAY_MAX waits in the backlog).
 */
#define RELAY_MAX 64
#define RELAY_BUF 65536
struct relay_half {
    unsigned char buf[RELAY_BUF];
    size_t len, off;
    int eof;        /* the reading side sent EOF */
    int shut;       /* EOF passed on (shutdown SHUT_WR of the writing side) */
};
static struct relay_conn {
    int fd[2];                  /* [0] the TCP client inside, [1] the unix socket to otk */
    struct relay_half half[2];  /* half[i]: bytes read from fd[i], to be written to fd[1 - i] */
} relay_conns[RELAY_MAX];

static int relay_listen(void) {
    current_step = "proxy-relay";
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) fail(errno, "cannot create the proxy relay's socket");
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)want.relay_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) fail(errno, "cannot bind the proxy relay to 127.0.0.1:%u", want.relay_port);
    if (listen(s, 128) < 0) fail(errno, "cannot listen on 127.0.0.1:%u", want.relay_port);
    return s;
}

static void relay_close(struct relay_conn *c) {
    close(c->fd[0]);
    close(c->fd[1]);
    c->fd[0] = c->fd[1] = -1;
}

static void relay_accept(int listener) {
    for (;;) {
        size_t slot = 0;
        while (slot < RELAY_MAX && relay_conns[slot].fd[0] >= 0) slot++;
        if (slot == RELAY_MAX) return; /* full: the rest wait in the backlog */
        int client = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (client < 0) return;
        int up = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_un u = {.sun_family = AF_UNIX};
        strncpy(u.sun_path, want.relay_socket, sizeof u.sun_path - 1);
        /* A unix connect completes at once or fails (EAGAIN: otk's backlog is full): no connection then. */
        if (up < 0 || connect(up, (struct sockaddr *)&u, sizeof u) < 0) {
            if (up >= 0) close(up);
            close(client);
            continue;
        }
        struct relay_conn *c = &relay_conns[slot];
        memset(c->half, 0, sizeof c->half);
        c->fd[0] = client;
        c->fd[1] = up;
    }
}

/* Moves what can be moved on one connection; returns 0 when it is finished. */
static int relay_step(struct relay_conn *c, const struct pollfd *p) {
    for (int i = 0; i < 2; i++) {
        struct relay_half *h = &c->half[i];
        if (!h->eof && h->len == 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(c->fd[i], h->buf, sizeof h->buf);
            if (n > 0) { h->len = (size_t)n; h->off = 0; }
            else if (n == 0) h->eof = 1;
            else if (errno != EAGAIN && errno != EINTR) return 0;
        }
    }
    for (int i = 0; i < 2; i++) {
        struct relay_half *h = &c->half[i];
        int to = c->fd[1 - i];
        while (h->off < h->len) {
            ssize_t n = send(to, h->buf + h->off, h->len - h->off, MSG_NOSIGNAL);
            if (n > 0) h->off += (size_t)n;
            else if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
            else return 0;
        }
        if (h->off == h->len) h->len = h->off = 0;
        if (h->eof && h->len == 0 && !h->shut) {
            shutdown(to, SHUT_WR);
            h->shut = 1;
        }
    }
    return !(c->half[0].shut && c->half[1].shut);
}

__attribute__((noreturn)) static void relay_run(int listener) {
    for (size_t i = 0; i < RELAY_MAX; i++) relay_conns[i].fd[0] = relay_conns[i].fd[1] = -1;
    static struct pollfd fds[1 + 2 * RELAY_MAX];
    for (;;) {
        size_t n = 0;
        fds[n++] = (struct pollfd){.fd = listener, .events = POLLIN};
        for (size_t i = 0; i < RELAY_MAX; i++) {
            struct relay_conn *c = &relay_conns[i];
            for (int k = 0; k < 2; k++) {
                short ev = 0;
                if (c->fd[0] >= 0) {
                    if (!c->half[k].eof && c->half[k].len == 0) ev |= POLLIN;
                    if (c->half[1 - k].len > c->half[1 - k].off) ev |= POLLOUT;
                }
                /* A finished or empty slot is polled as fd -1, which poll ignores. */
                fds[n++] = (struct pollfd){.fd = c->fd[0] >= 0 ? c->fd[k] : -1, .events = ev};
            }
        }
        if (poll(fds, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) continue;
            _exit(1);
        }
        for (size_t i = 0; i < RELAY_MAX; i++)
            if (relay_conns[i].fd[0] >= 0 && !relay_step(&relay_conns[i], &fds[1 + 2 * i])) relay_close(&relay_conns[i]);
        if (fds[0].revents & POLLIN) relay_accept(listener);
    }
}

/* The relay's own process: nothing of init's but the listening socket and the spec. */
static void start_relay(int listener, int lifeline_fd, int sync_fd) {
    current_step = "proxy-relay";
    pid_t pid = fork();
    if (pid < 0) fail(errno, "cannot fork the proxy relay");
    if (pid > 0) return;
    for (size_t i = 0; i < N_FORWARDED; i++) signal(forwarded_signals[i], SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    close(lifeline_fd);
    close(sync_fd);
    close(status_fd);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != 1) _exit(0); /* init is gone already */
    relay_run(listener);
}

/* Reaps children; returns 1 once the payload has exited, with its status in *status. */
static int reap(pid_t payload_pid, int *status) {
    int done = 0, st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0)
        if (p == payload_pid) { *status = st; done = 1; }
    return done;
}

struct otk_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/*
 * Empties a directory as the sandbox's own user, inside the sandbox's mount namespace:
 * every name resolves in the sandbox, nothing is followed, so a hostile tree (symlinks,
 * renames racing us) can only make us delete what the command could delete itself.
 * No allocation: getdents64 into a stack buffer per level. Depth is bounded (each level
 * holds an fd): a deeper subtree is renamed up to the top and emptied by the next pass.
 * Returns how many subtrees were moved up.
 */
#define CLEAN_DEPTH 128
static int remove_contents(int top_fd, int dfd, int depth) {
    static unsigned moved_serial;
    int moved = 0;
    char buf[1024];
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (n <= 0) return moved;
        for (long off = 0; off < n;) {
            struct otk_dirent64 *e = (struct otk_dirent64 *)(buf + off);
            off += e->d_reclen;
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            if (unlinkat(dfd, e->d_name, 0) == 0 || (errno != EISDIR && errno != EPERM)) continue;
            /*
             * Never into another mount: a bind below the workspace (the operator's read-write
             * data, or even the host's /) is not the workspace's to empty.
             */
            const uint64_t stay = RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH;
            int sub = sys_openat2(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, stay);
            if (sub < 0 && errno == EACCES) {
                /* Mode 000: make it ours to read through an O_PATH handle, never by name. */
                int handle = sys_openat2(dfd, e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, stay);
                if (handle >= 0) {
                    char proc_path[64];
                    snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", handle);
                    chmod(proc_path, 0700);
                    sub = openat(handle, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                    close(handle);
                }
            }
            if (sub < 0) continue;
            fchmod(sub, 0700); /* the command may have left it read-only; we are its owner */
            if (depth < CLEAN_DEPTH) {
                moved += remove_contents(top_fd, sub, depth + 1);
                close(sub);
                unlinkat(dfd, e->d_name, AT_REMOVEDIR);
                continue;
            }
            close(sub);
            char name[32];
            for (int tries = 0; tries < 16; tries++) {
                snprintf(name, sizeof name, ".otk-clean-%u", moved_serial++);
                if (renameat(dfd, e->d_name, top_fd, name) == 0) { moved++; break; }
                if (errno != EEXIST && errno != ENOTEMPTY) break;
            }
        }
    }
    return moved;
}

/* Kills everything else in the pid namespace and waits for it. Init itself is never hit by kill(-1). */
static void kill_all(void) {
    kill(-1, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
}

/* Everything else is dead: nothing can refill the workspace while it is emptied. Best effort; otk reports leftovers. */
static void clean_workspace(void) {
    if (!want.clean) return;
    int dfd = open(want.clean, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return;
    fchmod(dfd, 0700); /* the command may have made the workspace itself read-only */
    /* Each pass empties CLEAN_DEPTH levels and lifts what is deeper; a bounded number of passes. */
    for (int pass = 0; pass < 4096 && remove_contents(dfd, dfd, 0) > 0; pass++)
        lseek(dfd, 0, SEEK_SET);
    close(dfd);
}

__attribute__((noreturn)) static void sandbox_init(int lifeline_fd, int sync_fd) {
    /* The monitor's signal handlers were copied by clone3; in here they would do nothing useful. */
    for (size_t i = 0; i < N_FORWARDED; i++) signal(forwarded_signals[i], SIG_DFL);

    /* Wait until the monitor has written our id maps (and, later, placed us in cgroups). */
    current_step = "sync";
    char byte;
    ssize_t n;
    do n = read(sync_fd, &byte, 1); while (n < 0 && errno == EINTR);
    if (n != 1) _exit(127); /* the monitor died before releasing us: nothing to report to */

    /*
     * Become the mapped user before creating anything: files created while our
     * uid is unmapped fail with EOVERFLOW. NO_SETUID_FIXUP keeps the namespace's
     * capabilities across the switch; they are dropped deliberately later.
     */
    /*
     * Open the bind sources while our kernel uid is still otk's: a root-run otk binds toolchains
     * under directories only root may traverse (/root/.pyenv/versions/...), which the mapped user
     * cannot reach. O_PATH opens nothing for reading, and the resolve flags refuse every symlink.
     * A source that fails here is opened again as the sandbox user, which reports the error.
     */
    current_step = "bind-open";
    int host_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = 0; i < n_ops; i++)
        bind_fd[i] = ops[i].kind == OP_BIND && host_root >= 0 ? open_host_path(host_root, ops[i].a[0]) : -1;
    if (host_root >= 0) close(host_root);

    current_step = "identity";
    if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0) < 0) fail(errno, "cannot set securebits");
    if (want.setgroups_allow && syscall(SYS_setgroups, 0, NULL) < 0) fail(errno, "cannot clear supplementary groups");
    if (syscall(SYS_setresgid, want.gid, want.gid, want.gid) < 0) fail(errno, "cannot switch to gid %u", (unsigned)want.gid);
    if (syscall(SYS_setresuid, want.uid, want.uid, want.uid) < 0) fail(errno, "cannot switch to uid %u", (unsigned)want.uid);
    /*
     * A session keyring of our own, owned by the mapped user: the inherited one is otk's
     * caller's, whose keys (tokens, Kerberos caches) the command could read, change or add to.
     */
    current_step = "keyring";
    if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS)
        fail(errno, "cannot create a session keyring for the sandbox");

    /* On cgroup v1 the cgroup namespace must be made after the move into our cgroups, so it is rooted there. */
    if (want.unshare_cgroup) {
        current_step = "cgroup-namespace";
        if (unshare(CLONE_NEWCGROUP) < 0) fail(errno, "cannot create a cgroup namespace");
    }
    /* No nested user namespaces: they are the door to every other namespace and to much of the kernel. */
    if (want.deny_userns) {
        current_step = "deny-userns";
        if (write_file("/proc/sys/user/max_user_namespaces", "0") < 0) fail(errno, "cannot set user.max_user_namespaces to 0");
    }

    /* Modes in the spec are exact; the command gets the conventional 022 back before exec. */
    umask(0);
    build_root();

    if (want.hostname) {
        current_step = "hostname";
        if (sethostname(want.hostname, strlen(want.hostname)) < 0) fail(errno, "cannot set the hostname");
    }
    if (want.loopback) {
        current_step = "loopback";
        bring_loopback_up();
    }
    /* Listening before the command starts, so its first connection finds the relay. */
    int relay_listener = want.relay_socket ? relay_listen() : -1;

    drop_privileges();
    /* Not ptrace-able and no core dumps of init from inside the sandbox. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* After the last identity change, which would clear it: die with the monitor. */
    current_step = "pdeathsig";
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) fail(errno, "cannot set the parent-death signal");
    struct pollfd alive = {.fd = sync_fd, .events = POLLIN};
    if (poll(&alive, 1, 0) > 0) _exit(127); /* the monitor already died */

    /* Handlers, not SIG_DFL: the kernel drops default-disposition signals sent to a namespace's init. */
    sigset_t block, old;
    sigemptyset(&block);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = init_on_signal;
    sigfillset(&sa.sa_mask);
    for (size_t i = 0; i < N_FORWARDED; i++) {
        sigaction(forwarded_signals[i], &sa, NULL);
        sigaddset(&block, forwarded_signals[i]);
    }
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);

    current_step = "fork";
    pid_t pid = fork();
    if (pid < 0) fail(errno, "cannot fork the command");
    if (pid == 0) payload(lifeline_fd, sync_fd);
    if (relay_listener >= 0) {
        start_relay(relay_listener, lifeline_fd, sync_fd);
        close(relay_listener);
    }

    /* Only the payload reports exec failures from here on; init reports the exit. */
    int status = 0;
    struct pollfd fds[2] = {{.fd = lifeline_fd, .events = POLLIN}, {.fd = sync_fd, .events = POLLIN}};
    /*
     * The wall-clock limit, counted from the fork: at the limit every process of the sandbox
     * gets SIGTERM (kill(-1) from pid 1 reaches daemons that left the command's session too),
     * and after the grace period SIGKILL.
     */
    int timed_out = 0, terminated = 0, reaped = 0;
    struct timespec deadline = {0, 0};
    if (want.wall_ms) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += (time_t)(want.wall_ms / 1000);
        deadline.tv_nsec += (long)(want.wall_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
    }
    for (;;) {
        if (child_changed) {
            child_changed = 0;
            if (reap(pid, &status)) { reaped = 1; break; }
        }
        for (int s = 1; s < 65; s++)
            if (pending_signals[s]) {
                pending_signals[s] = 0;
                /*
                 * The payload leads its own session and process group. That group is orphaned
                 * (its parent, init, is in another session), and the kernel drops SIGTSTP sent to
                 * an orphaned group: stopping the command for otk's Ctrl-Z takes SIGSTOP.
                 */
                int fwd = s == SIGTSTP ? SIGSTOP : s;
                /* Stop and continue everything, not just one group: a setsid child must stop too. */
                if (fwd == SIGSTOP || fwd == SIGCONT) kill(-1, fwd);
                else if (kill(-pid, fwd) < 0) kill(pid, fwd);
            }
        struct timespec wait, now;
        if (want.wall_ms) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long left = (long long)(deadline.tv_sec - now.tv_sec) * 1000000000LL + (deadline.tv_nsec - now.tv_nsec);
            if (left <= 0) {
                if (terminated) break; /* the grace period is over: kill_all below */
                timed_out = terminated = 1;
                kill(-1, SIGTERM);
                deadline = now;
                deadline.tv_sec += (time_t)(want.grace_ms / 1000);
                deadline.tv_nsec += (long)(want.grace_ms % 1000) * 1000000L;
                if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
                continue;
            }
            wait.tv_sec = (time_t)(left / 1000000000LL);
            wait.tv_nsec = (long)(left % 1000000000LL);
        }
        int r = ppoll(fds, 2, want.wall_ms ? &wait : NULL, &old);
        if (r > 0 && (fds[0].revents || fds[1].revents)) {
            /* otk or the monitor is gone: nobody is left to answer to, so nothing may keep running. */
            kill_all();
            /* A temporary workspace is emptied still: the monitor removes the directory once we are gone. */
            clean_workspace();
            _exit(137);
        }
    }
    kill_all();
    clean_workspace();
    if (!reaped) status = SIGKILL; /* the wait status of a process killed by SIGKILL after the grace period */
    report_exit(status, timed_out);
    if (timed_out) _exit(124);
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    _exit(128 + WTERMSIG(status));
}

/*
 * otk is gone (its lifeline closed), so nobody else will remove the run's cgroups. Init has
 * been reaped, and the kernel reaps every process of a pid namespace before its init, so the
 * cgroups are empty now.
 */
static void remove_cgroups(void) {
    for (size_t i = 0; i < want.n_cgroup_dirs; i++) rmdir(want.cgroup_dirs[i]);
    /* The temporary workspace, which init emptied: rmdir removes only an empty directory and follows no symlink. */
    if (want.orphan_rmdir) rmdir(want.orphan_rmdir);
}

/* ---- `--check`: which namespaces this host lets us create (for otk doctor) ---- */

static int check_namespaces(void) {
    static const struct { const char *name; uint64_t flag; } kinds[] = {
        {"user", 0}, {"mount", CLONE_NEWNS}, {"pid", CLONE_NEWPID}, {"net", CLONE_NEWNET},
        {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"cgroup", CLONE_NEWCGROUP},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        /* Every kind is tried inside a new user namespace, as a real launch does. */
        struct otk_clone_args args = {.flags = CLONE_NEWUSER | kinds[i].flag, .exit_signal = SIGCHLD};
        long pid = sys_clone3(&args);
        if (pid == 0) _exit(0);
        int err = pid < 0 ? errno : 0;
        if (pid > 0) waitpid((pid_t)pid, NULL, 0);
        printf("%s %d\n", kinds[i].name, err);
    }
    return 0;
}

/* ---- the monitor ---- */

static int parse_fd(const char *s) {
    unsigned long long v;
    if (parse_uint(s, 1u << 20, &v, 10)) return -1;
    return (int)v;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--check")) return check_namespaces();
    if (argc != 4 && argc != 5) {
        dprintf(2, "usage: otk-launcher SPEC_FD STATUS_FD LIFELINE_FD [SECCOMP_FD] (spawned by otk, not run by hand)\n");
        return 2;
    }
    int spec_fd = parse_fd(argv[1]), lifeline_fd = parse_fd(argv[3]), seccomp_fd = argc == 5 ? parse_fd(argv[4]) : INT_MAX;
    status_fd = parse_fd(argv[2]);
    if (spec_fd < 3 || status_fd < 3 || lifeline_fd < 3 || seccomp_fd < 3) {
        status_fd = -1;
        fail(EBADF, "bad file descriptor arguments");
    }
    /* Whatever else otk's caller left open is not ours to keep, in any process of the sandbox. */
    int n_keep = argc - 1;
    int keep[4] = {spec_fd, status_fd, lifeline_fd, seccomp_fd};
    for (int i = 0; i < n_keep - 1; i++)
        for (int j = 0; j < n_keep - 1 - i; j++)
            if (keep[j] > keep[j + 1]) { int t = keep[j]; keep[j] = keep[j + 1]; keep[j + 1] = t; }
    unsigned from = 3;
    for (int i = 0; i < n_keep; i++) {
        if ((unsigned)keep[i] > from) sys_close_range(from, (unsigned)keep[i] - 1);
        from = (unsigned)keep[i] + 1;
    }
    sys_close_range(from, ~0u);
    if (fcntl(status_fd, F_SETFD, FD_CLOEXEC) < 0) fail(errno, "status pipe");
    if (fcntl(lifeline_fd, F_SETFD, FD_CLOEXEC) < 0) fail(errno, "lifeline pipe");

    /* Decide nothing, check everything: a malformed spec stops us before any namespace exists. */
    current_step = "spec";
    parse_spec(spec_fd);
    check_spec();
    close(spec_fd);
    /* A filter asked for and not given (or given and not asked for) is a broken launch, never a weaker one. */
    if (want.seccomp != (argc == 5)) fail(EINVAL, want.seccomp ? "the spec asks for seccomp but no program fd was passed" : "a seccomp fd was passed but the spec does not load it");
    if (want.seccomp) {
        current_step = "seccomp-read";
        read_seccomp(seccomp_fd);
        close(seccomp_fd);
    }

    /* Host root's supplementary groups (gid 0 among them) must not follow it into the sandbox. */
    current_step = "clear-groups";
    if (geteuid() == 0 && syscall(SYS_setgroups, 0, NULL) < 0) {
        /*
         * EPERM: we are uid 0 of a user namespace whose setgroups is denied (a
         * rootless container). Our groups are then no more than its creator's, and
         * the sandbox cannot clear them either: deny setgroups for it as well.
         */
        if (errno != EPERM) fail(errno, "cannot clear supplementary groups");
        want.setgroups_allow = 0;
    }

    int sync_pipe[2];
    current_step = "pipe";
    if (pipe2(sync_pipe, O_CLOEXEC) < 0) fail(errno, "cannot create the sync pipe");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = monitor_forward;
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < N_FORWARDED; i++) sigaction(forwarded_signals[i], &sa, NULL);

    if (sched_getaffinity(0, sizeof original_cpus, &original_cpus) == 0) {
        int cpu = sched_getcpu();
        cpu_set_t one;
        CPU_ZERO(&one);
        if (cpu >= 0) {
            CPU_SET(cpu, &one);
            cpus_pinned = sched_setaffinity(0, sizeof one, &one) == 0;
        }
    }

    /*
     * One clone3 creates every namespace at once, the user namespace first by
     * definition, so the others are owned by it and not by the host's.
     */
    current_step = "clone3";
    struct otk_clone_args args = {.flags = want.clone_flags, .exit_signal = SIGCHLD};
    /* cgroup v2: the sandbox starts inside its cgroup, so not one instruction of it runs outside the limits. */
    if (want.cgroup_v2) {
        current_step = "cgroup";
        int cgroup_fd = open(want.cgroup_dirs[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cgroup_fd < 0) fail(errno, "cannot open the cgroup `%.150s`", want.cgroup_dirs[0]);
        args.flags |= OTK_CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_fd;
        /* A failure now may be the namespaces' or the cgroup's: the step name says both are in play. */
        current_step = "clone3-cgroup";
    }
    long pid = sys_clone3(&args);
    /* The cgroup fd has done its job; neither the monitor nor init keeps it. */
    if (args.cgroup) close((int)args.cgroup);
    if (pid < 0) fail(errno, "cannot create the namespaces");
    if (pid == 0) {
        close(sync_pipe[1]);
        sandbox_init(lifeline_fd, sync_pipe[0]);
    }
    monitor_child = (pid_t)pid;
    close(sync_pipe[0]);

    /* setgroups must be denied before an unprivileged gid_map write; root may keep it so init can clear groups. */
    char path[64], map[64];
    current_step = "setgroups";
    snprintf(path, sizeof path, "/proc/%ld/setgroups", pid);
    if (write_file(path, want.setgroups_allow ? "allow" : "deny") < 0 && errno != ENOENT) goto map_failed;
    current_step = "uid_map";
    snprintf(path, sizeof path, "/proc/%ld/uid_map", pid);
    snprintf(map, sizeof map, "%s %s 1\n", want.uid_inside, want.uid_host);
    if (write_file(path, map) < 0) goto map_failed;
    current_step = "gid_map";
    snprintf(path, sizeof path, "/proc/%ld/gid_map", pid);
    snprintf(map, sizeof map, "%s %s 1\n", want.gid_inside, want.gid_host);
    if (write_file(path, map) < 0) goto map_failed;

    /* cgroup v1: into each hierarchy's cgroup before it runs a single instruction of its own. */
    current_step = "cgroup";
    for (size_t i = 0; !want.cgroup_v2 && i < want.n_cgroup_dirs; i++) {
        char procs[256], pid_text[24];
        snprintf(procs, sizeof procs, "%s/cgroup.procs", want.cgroup_dirs[i]);
        snprintf(pid_text, sizeof pid_text, "%ld\n", pid);
        if (write_file(procs, pid_text) < 0) {
            int err = errno;
            kill((pid_t)pid, SIGKILL);
            waitpid((pid_t)pid, NULL, 0);
            fail(err, "cannot move the sandbox into `%.150s`", want.cgroup_dirs[i]);
        }
    }

    current_step = "release";
    if (write_all(sync_pipe[1], "x", 1) < 0) goto map_failed;

    /*
     * Wait for init, and watch the lifeline meanwhile: if otk goes away while init is still
     * setting up (before it watches the lifeline itself), the monitor ends it.
     */
    struct sigaction chld;
    memset(&chld, 0, sizeof chld);
    chld.sa_handler = monitor_on_sigchld;
    chld.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &chld, NULL);
    sigset_t block_chld, unblocked;
    sigemptyset(&block_chld);
    sigaddset(&block_chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block_chld, &unblocked);
    sigdelset(&unblocked, SIGCHLD);
    int status;
    for (;;) {
        pid_t w = waitpid((pid_t)pid, &status, WNOHANG);
        if (w == (pid_t)pid) break;
        if (w < 0 && errno != EINTR) return 127;
        struct pollfd life = {.fd = lifeline_fd, .events = POLLIN};
        if (ppoll(&life, 1, NULL, &unblocked) > 0 && life.revents) {
            kill((pid_t)pid, SIGKILL);
            while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR) {}
            remove_cgroups();
            return 137;
        }
    }
    /* Init ended on its own; if that was because otk is gone, the cgroups are ours to remove. */
    struct pollfd life = {.fd = lifeline_fd, .events = POLLIN};
    if (poll(&life, 1, 0) > 0 && life.revents) remove_cgroups();
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);

map_failed: {
        int err = errno;
        kill((pid_t)pid, SIGKILL);
        waitpid((pid_t)pid, NULL, 0);
        fail(err, "cannot write %s (host uid %s, gid %s)", path, want.uid_host, want.gid_host);
    }
}
