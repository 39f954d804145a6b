/*
 * otk-probe: a test-only program that reports what it can and cannot do.
 *
 * The integration tests run it inside an otk sandbox (and, as a control,
 * outside one) and assert on its output.  It never decides whether a result
 * is "good"; it only attempts each action and says what happened.
 *
 * Usage:  otk-probe CHECK[=ARG] ...
 *
 * Every argument names one check; the checks run in order.  All arguments are
 * validated before the first check runs, so a usage error (unknown check,
 * missing, unexpected or malformed ARG) produces no JSON at all: a message
 * goes to stderr and the exit status is 2.  Otherwise the exit status is 0
 * whatever the checks found (except for the deliberate `exit=N` and
 * `signal=N` checks).
 *
 * Output: exactly one JSON object per check, one per line on stdout, written
 * with write(2) as soon as the check finishes (so a test can wait for a line
 * before, say, signalling a `sleep=` that follows it).  Every object has
 *
 *   "check"  the check name
 *   "arg"    the ARG as given, or "" when the check takes none
 *   "ok"     true when the probe was ABLE to do the thing
 *   "errno", "error"
 *            only when ok is false (and always for pivot-root): the errno
 *            value and its symbolic name ("EPERM"; "E<n>" if not in the
 *            table below).  When a forked child died from a signal instead
 *            of reporting an errno, errno is 0, error is "KILLED_BY_SIGNAL"
 *            and "signal" holds the signal number.
 *
 * plus per-check fields:
 *
 *   identity        uid/gid [real,effective,saved], groups, cap_inh, cap_prm,
 *                   cap_eff, cap_bnd, cap_amb (hex strings from
 *                   /proc/self/status, "" if unavailable), no_new_privs,
 *                   seccomp (-1 if unknown), pid, ppid, sid, hostname, cwd
 *                   ("" if getcwd fails)
 *   pids            pids: sorted numeric entries of /proc
 *   fds             fds: open fds >= 3; targets: readlink of each ("" if not
 *                   readable)
 *   read=PATH       type ("file"|"dir"|"other"); content (first <= 64 bytes,
 *                   regular files only); bytes (non-directories); entry (the
 *                   first name readdir returned, directories only)
 *   exists=PATH     type ("file"|"dir"|"link"|"other"), from lstat
 *   write=PATH      create a new file, write it, unlink it; detail on an
 *                   unlink failure (ok stays true)
 *   keep=PATH       like write but the file is left in place
 *   rewrite=PATH    write an existing file's own content (<= 4096 bytes)
 *                   back to it; detail names the step that failed
 *   mount=DIR       mount a 1 MiB tmpfs on DIR and unmount it again
 *   unshare-user, unshare-mount, unshare-net
 *                   a forked child tries unshare(CLONE_NEWUSER/NS/NET)
 *   pivot-root      pivot_root on a nonexistent path: ok means the kernel
 *                   did not refuse with EPERM (its first check)
 *   ptrace=PID      PTRACE_ATTACH, wait for the stop, PTRACE_DETACH
 *   kill=PID        kill(PID, SIGKILL)
 *   signal0=PID     kill(PID, 0)
 *   unix=PATH       connect an AF_UNIX stream socket to PATH
 *   abstract=NAME   connect an AF_UNIX stream socket to "\0NAME"
 *   tcp=HOST:PORT   TCP connect, 1 s limit (HOST: 1.2.3.4 or [::1])
 *   udp=HOST:PORT   send "otk-probe-ping", wait 1 s for a reply; content:
 *                   the reply
 *   sethostname     set the hostname to its current value
 *   sysv-msg=KEY, sysv-shm=KEY, sysv-sem=KEY
 *                   look up (never create) a SysV object; id on success.
 *                   KEY is parsed by strtol base 0 and taken modulo 2^32;
 *                   0 (IPC_PRIVATE) is refused because it would create one.
 *   setuid0         a forked child tries setuid(0)
 *   sleep=SECONDS   sleep (fractions allowed), then report
 *   exit=N          report, then exit with status N (0..255)
 *   signal=N        report, then raise signal N with its default action
 *   echo-env=NAME   value: the variable's value (ENOENT if unset)
 *   env             env: every environ entry
 *   stdin           content: all of stdin, up to 64 KiB
 *
 * Checks of the network a sandbox offers (HOST and PROXY as for tcp=):
 *
 *   interfaces      names: the interfaces of the probe's network namespace,
 *                   from /proc/net/dev or, if that cannot be read, by
 *                   SIOCGIFNAME for every index up to 65535; up: those of
 *                   them with IFF_UP (SIOCGIFFLAGS); source: "proc" or
 *                   "ioctl".  The ioctls go through an AF_UNIX (else
 *                   AF_INET) datagram socket: if neither can be made, ok is
 *                   false with that errno.  Not if_nameindex(): glibc asks
 *                   netlink for it, and sandboxes filter netlink sockets.
 *   resolve=NAME    getaddrinfo(NAME, NULL) with AF_UNSPEC, SOCK_STREAM, in
 *                   a forked child killed after 5 s (then ETIMEDOUT); ok
 *                   when it gave an address; addresses: numeric, in its
 *                   order, each once.  When it fails: errno 0, error the
 *                   EAI_ name ("EAI_NONAME", "EAI_AGAIN", ...) and detail
 *                   gai_strerror's text; for EAI_SYSTEM the errno it left
 *                   instead (detail as before); KILLED_BY_SIGNAL if the
 *                   child died; "NO_ADDRESS" if it succeeded without an
 *                   IPv4 or IPv6 address.  The probe is static:
 *                   glibc's files and dns lookups are built in and need only
 *                   /etc (nsswitch.conf, hosts, resolv.conf), but any other
 *                   NSS module nsswitch.conf names is loaded from the
 *                   host's glibc at run time, which is what the linker's
 *                   warning about getaddrinfo is about.
 *   dns=SERVER:PORT,NAME
 *                   one DNS query (type A, class IN, RD, random id) for NAME
 *                   over UDP from a connected socket; ok when a reply with
 *                   that id came within 2 s (others are ignored); rcode,
 *                   answers (ANCOUNT).  Errors: the send's errno
 *                   (ENETUNREACH, ...), ECONNREFUSED for an ICMP
 *                   unreachable, ETIMEDOUT.  NAME: labels of 1..63 bytes,
 *                   255 in all encoded; one trailing dot allowed, "." is the
 *                   root.
 *   proxy-connect=PROXY,HOST:PORT[,SNI]
 *                   TCP connect to PROXY (2 s), send "CONNECT HOST:PORT
 *                   HTTP/1.1" with "Host: HOST:PORT", read the reply's head
 *                   (up to "\r\n\r\n", at most 8 KiB, 5 s for sending and
 *                   reading); ok when its status is 200.  status (0 if no
 *                   status line "HTTP/x.y NNN" was parsed), reply (its first
 *                   line without the line end, at most 256 bytes), body (up
 *                   to 200 bytes after the head that came with it, e.g. a
 *                   refusal's explanation; "" if none).  status and reply
 *                   come from what arrived even if the head never ended.
 *                   With status 200 and SNI: through the tunnel, a
 *                   ClientHello record (TLS 1.3 and 1.2, see
 *                   build_client_hello) with server_name SNI, or none if
 *                   SNI is "-"; then read for 3 s or until the peer closes:
 *                   sent (bytes of the ClientHello sent), received (bytes
 *                   read back), first_byte (-1 if none; 22 is a TLS
 *                   handshake record, 21 an alert), closed (the peer closed
 *                   or reset), detail on a send or read error.
 *   proxy-get=PROXY,URL[,HOSTHEADER]
 *                   TCP connect to PROXY (2 s), send "GET URL HTTP/1.1" with
 *                   "Host: HOSTHEADER" (default: URL's authority, between
 *                   "://" and the next '/', '?' or '#') and "Connection:
 *                   close", read the response until EOF (at most 64 KiB, 5 s
 *                   for sending and reading); ok when its status is 2xx.
 *                   status, reply, body as for proxy-connect (body: the
 *                   first 200 bytes after the head).
 *
 *   Failures of the proxy checks: the errno of the connect or of sending
 *   the request, with "step":"connect" or "send" and no other fields; then,
 *   with status etc., errno 0 and error "HTTP_STATUS" when the status is not
 *   the wanted one; without a status line the errno that ended reading,
 *   with "step":"receive" (ETIMEDOUT included), or "NO_HTTP_STATUS" when
 *   the proxy closed (or filled the limit) first.
 *   A read error that did not decide the result is a detail ("recv:
 *   ETIMEDOUT" when a 2xx response did not end in EOF).  PROXY is a literal
 *   HOST:PORT; HOST:PORT, URL, SNI and HOSTHEADER may not contain commas,
 *   blanks or control characters; each is at most 1023 bytes, SNI at most
 *   255.
 *
 * Checks for the seccomp filter.  Each runs its attempt in a forked child,
 * so a filter that kills shows as KILLED_BY_SIGNAL ("signal":31 for SIGSYS)
 * instead of ending the probe, and makes the call with syscall(2) and the
 * kernel's numbers.  Arguments are harmless and, where the kernel allows,
 * get past its own permission test, so unsandboxed the result is not EPERM.
 * Besides the common fields they may add
 *   "step"      only when ok is false: the setup step that failed, or was
 *               under way when the child was killed (e.g. "open /dev/ptmx");
 *               absent when the result is the attempted call's own
 *   "detail"    "not x86_64" for x86-only attempts elsewhere (with ENOSYS)
 *   "injected"  tiocsti and tiocsti-high, only when ok: whether the byte
 *               came back (as the pty's echo) on the master
 *
 *   syscall=NAME    one call from the list below; ok when it returned >= 0
 *                   (whatever it made is closed or reaped again)
 *   socket=FAMILY   socket(): unix, inet, inet6 (SOCK_DGRAM, 0); netlink
 *                   (SOCK_RAW, NETLINK_ROUTE); packet (SOCK_DGRAM, 0);
 *                   vsock (SOCK_STREAM, 0); alg (SOCK_SEQPACKET, 0);
 *                   bluetooth (SOCK_DGRAM, 0); key (SOCK_RAW, PF_KEY_V2);
 *                   xdp (SOCK_RAW, 0)
 *   socketpair=FAMILY
 *                   socketpair(): unix or inet, SOCK_STREAM
 *   int80           getpid through `int $0x80` (the i386 entry point); ok
 *                   when it returned a positive value
 *   x32             getpid through the x32 ABI (nr 0x40000000 | 39)
 *   tiocsti, tiocsti-high, tioclinux
 *                   in a new session, make a fresh pty the controlling
 *                   terminal, then on it: ioctl TIOCSTI 'x'; the same with
 *                   the command TIOCSTI | 1 << 32 (the kernel drops the high
 *                   bits); ioctl TIOCLINUX TIOCL_GETSHIFTSTATE
 *
 * syscall NAMEs and the arguments they use (M = "/nonexistent-otk-probe"):
 *   ptrace (PTRACE_TRACEME); process_vm_readv, process_vm_writev (own pid,
 *   one small buffer to another); mount ("none", M, "tmpfs"); umount2 (M,
 *   MNT_DETACH); fsopen ("tmpfs"); fsmount (-1); fsconfig (-1,
 *   FSCONFIG_SET_FLAG "ro"); fspick (AT_FDCWD, "/"); open_tree (AT_FDCWD,
 *   "/", OPEN_TREE_CLONE); move_mount (-1, "", -1, ""); mount_setattr (-1,
 *   "", all-zero attributes: a no-op); pivot_root (M, M); chroot ("/");
 *   setns (own /proc/self/ns/uts, CLONE_NEWUTS); bpf (BPF_MAP_CREATE, a
 *   one-entry array); perf_event_open (PERF_COUNT_SW_CPU_CLOCK on itself,
 *   user space only); userfaultfd (UFFD_USER_MODE_ONLY); io_uring_setup (1
 *   entry); io_uring_enter, io_uring_register (fd -1); keyctl
 *   (KEYCTL_GET_KEYRING_ID of the session keyring); add_key ("user" key in
 *   the process keyring, then invalidated); request_key ("user",
 *   "otk-probe-none", no callout); kexec_load (17 segments: one more than
 *   allowed); kexec_file_load (fds -1); init_module (NULL, 0); finit_module
 *   (-1); delete_module ("otk_probe_none", O_NONBLOCK); reboot (a wrong
 *   second magic number); swapon, swapoff, acct (M); settimeofday (NULL,
 *   NULL: still needs CAP_SYS_TIME); clock_settime (CLOCK_REALTIME, the time
 *   just read); adjtimex, clock_adjtime (modes 0: reads); iopl (0); ioperm
 *   (0x80, 1, off); personality (PER_BSD, then restored); personality-query
 *   (0xffffffff); clone-newuser, clone-newns, clone-newnet (raw clone with
 *   that flag | SIGCHLD and no stack; the new process exits at once);
 *   clone3 (exit_signal SIGCHLD, size 88); unshare-newuser, unshare-newns,
 *   unshare-newtime, unshare-files (unshare with CLONE_NEWUSER, CLONE_NEWNS,
 *   CLONE_NEWTIME, CLONE_FILES); prlimit-init, prlimit-self (prlimit64 on
 *   pid 1 or 0, RLIMIT_NOFILE, read only); pidfd_getfd (fd 0 of a pidfd of
 *   itself; "step":"pidfd_open" if that fails); kcmp (itself twice,
 *   KCMP_FILE, fds 0 and 0); getpid; modify_ldt (0: read); syslog
 *   (SYSLOG_ACTION_SIZE_BUFFER); quotactl (Q_SYNC, no device);
 *   lookup_dcookie (0: ENOSYS since Linux 6.8); vhangup (after setsid(), so
 *   no terminal is hung up).  iopl, ioperm, modify_ldt, lookup_dcookie,
 *   int80 and x32 are x86_64 only.
 *
 * Strings are JSON-escaped.  Valid UTF-8 passes through; each byte of an
 * invalid sequence is written as \u00XX (its Latin-1 code point), so the
 * output is always valid JSON even for binary content.
 *
 * No check may hang: network waits are bounded to 1 second (except as
 * documented for resolve, dns and the proxy checks: at most 5, 2, 10 and 7
 * seconds in all), unix connects use a 1 second send timeout, reads open
 * with O_NONBLOCK (so a FIFO cannot block), the ptrace stop is awaited for
 * at most 2 seconds, and the tiocsti echo for at most 1 second.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* System call numbers older C library headers lack.  From 424 on they are
 * the same on every architecture except alpha, ia64 and mips. */
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_io_uring_enter
#define SYS_io_uring_enter 426
#endif
#ifndef SYS_io_uring_register
#define SYS_io_uring_register 427
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_fspick
#define SYS_fspick 433
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#if defined(__x86_64__)
#ifndef SYS_kcmp
#define SYS_kcmp 312
#endif
#ifndef SYS_kexec_file_load
#define SYS_kexec_file_load 320
#endif
#ifndef SYS_bpf
#define SYS_bpf 321
#endif
#ifndef SYS_userfaultfd
#define SYS_userfaultfd 323
#endif
#ifndef SYS_lookup_dcookie
#define SYS_lookup_dcookie 212      /* sys_ni_syscall (ENOSYS) since Linux 6.8 */
#endif
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

extern char **environ;

#define NET_TIMEOUT_MS 1000
#define PTRACE_STOP_TIMEOUT_MS 2000
#define READ_LIMIT 64
#define REWRITE_LIMIT 4096
#define STDIN_LIMIT (64 * 1024)
#define FD_SCAN_LIMIT 4096
#define PROBE_TEXT "otk-probe\n"
#define PING_TEXT "otk-probe-ping"
#define IFINDEX_SCAN_LIMIT 65535          /* interfaces without /proc/net/dev */
#define RESOLVE_TIMEOUT_MS 5000
#define RESOLVE_MAX_ADDRESSES 64
#define DNS_TIMEOUT_MS 2000
#define PROXY_CONNECT_TIMEOUT_MS 2000
#define PROXY_REPLY_TIMEOUT_MS 5000       /* send the request, read the reply */
#define TLS_REPLY_TIMEOUT_MS 3000
#define PROXY_HEAD_LIMIT (8 * 1024)
#define PROXY_GET_LIMIT (64 * 1024)
#define PROXY_TEXT_MAX 1024               /* HOST:PORT, URL, SNI, HOSTHEADER */
#define SNI_MAX 255
#define REPLY_LINE_LIMIT 256
#define BODY_EXCERPT 200

/* ------------------------------------------------------------------------ */
/* errno names                                                               */
/* ------------------------------------------------------------------------ */

/* strerrorname_np() only exists since glibc 2.32 and not in other libcs, so
 * keep our own table of the values the tests are likely to meet. */
static const struct {
    int value;
    const char *name;
} errno_names[] = {
#define ERRNO_NAME(e) { e, #e }
    ERRNO_NAME(EPERM), ERRNO_NAME(ENOENT), ERRNO_NAME(ESRCH),
    ERRNO_NAME(EINTR), ERRNO_NAME(EIO), ERRNO_NAME(ENXIO),
    ERRNO_NAME(E2BIG), ERRNO_NAME(ENOEXEC), ERRNO_NAME(EBADF),
    ERRNO_NAME(ECHILD), ERRNO_NAME(EAGAIN), ERRNO_NAME(ENOMEM),
    ERRNO_NAME(EACCES), ERRNO_NAME(EFAULT), ERRNO_NAME(EBUSY),
    ERRNO_NAME(EEXIST), ERRNO_NAME(EXDEV), ERRNO_NAME(ENODEV),
    ERRNO_NAME(ENOTDIR), ERRNO_NAME(EISDIR), ERRNO_NAME(EINVAL),
    ERRNO_NAME(ENFILE), ERRNO_NAME(EMFILE), ERRNO_NAME(ENOTTY),
    ERRNO_NAME(ETXTBSY), ERRNO_NAME(EFBIG), ERRNO_NAME(ENOSPC),
    ERRNO_NAME(ESPIPE), ERRNO_NAME(EROFS), ERRNO_NAME(EMLINK),
    ERRNO_NAME(EPIPE), ERRNO_NAME(ERANGE), ERRNO_NAME(ENAMETOOLONG),
    ERRNO_NAME(ENOSYS), ERRNO_NAME(ENOTEMPTY), ERRNO_NAME(ELOOP),
    ERRNO_NAME(ENOMSG), ERRNO_NAME(EIDRM), ERRNO_NAME(EOVERFLOW),
    ERRNO_NAME(ENOTSOCK), ERRNO_NAME(EPROTOTYPE),
    ERRNO_NAME(EPROTONOSUPPORT), ERRNO_NAME(EOPNOTSUPP),
    ERRNO_NAME(EAFNOSUPPORT), ERRNO_NAME(EADDRINUSE),
    ERRNO_NAME(EADDRNOTAVAIL), ERRNO_NAME(ENETDOWN),
    ERRNO_NAME(ENETUNREACH), ERRNO_NAME(ECONNABORTED),
    ERRNO_NAME(ECONNRESET), ERRNO_NAME(ENOBUFS), ERRNO_NAME(EISCONN),
    ERRNO_NAME(ENOTCONN), ERRNO_NAME(ETIMEDOUT),
    ERRNO_NAME(ECONNREFUSED), ERRNO_NAME(EHOSTUNREACH),
    ERRNO_NAME(EALREADY), ERRNO_NAME(EINPROGRESS), ERRNO_NAME(ESTALE),
    ERRNO_NAME(EDQUOT), ERRNO_NAME(ENOTSUP) /* == EOPNOTSUPP on Linux */,
    ERRNO_NAME(ESOCKTNOSUPPORT), ERRNO_NAME(ENOKEY),
#undef ERRNO_NAME
};

/* Returns a static name for err; the fallback buffer is reused per call,
 * which is fine because the caller copies it into the output at once. */
static const char *errno_name(int err)
{
    static char fallback[24];
    for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
        if (errno_names[i].value == err)
            return errno_names[i].name;
    snprintf(fallback, sizeof fallback, "E%d", err);
    return fallback;
}

/* ------------------------------------------------------------------------ */
/* Output: one JSON object per line                                          */
/* ------------------------------------------------------------------------ */

/* The line being built.  It is written out in one piece by line_end() so a
 * reader never sees half an object, even if the probe is killed right after. */
static struct {
    char *data;
    size_t len, cap;
    bool open;          /* line_begin() called, line_end() not yet */
    bool list_first;    /* no element written yet in the current list */
} line;

static void out_append(const char *p, size_t n)
{
    if (line.len + n + 1 > line.cap) {
        size_t cap = line.cap ? line.cap : 1024;
        while (line.len + n + 1 > cap)
            cap *= 2;
        char *data = realloc(line.data, cap);
        if (data == NULL) {
            fputs("otk-probe: out of memory\n", stderr);
            exit(1);
        }
        line.data = data;
        line.cap = cap;
    }
    memcpy(line.data + line.len, p, n);
    line.len += n;
}

static void out_puts(const char *s)
{
    out_append(s, strlen(s));
}

static void out_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out_printf(const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    /* Only used for numbers, which always fit. */
    if (n > 0)
        out_append(tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the well-formed UTF-8 sequence starting at p, or 0 if the bytes
 * there are not one (overlong forms, surrogates and values above U+10FFFF
 * count as malformed, as in RFC 3629). */
static size_t utf8_sequence_length(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;   /* allowed range of the 2nd byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;         /* overlong */
        if (c == 0xED) hi = 0x9F;         /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;         /* overlong */
        if (c == 0xF4) hi = 0x8F;         /* above U+10FFFF */
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* Appends p[0..n) as a quoted JSON string. */
static void out_json_string(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    char esc[8];

    out_append("\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t seq;
        switch (c) {
        case '"':  out_append("\\\"", 2); i++; continue;
        case '\\': out_append("\\\\", 2); i++; continue;
        case '\n': out_append("\\n", 2); i++; continue;
        case '\r': out_append("\\r", 2); i++; continue;
        case '\t': out_append("\\t", 2); i++; continue;
        default: break;
        }
        if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            out_append(esc, 6);
            i++;
        } else if ((seq = utf8_sequence_length(s + i, n - i)) > 0) {
            out_append(p + i, seq);
            i += seq;
        } else {
            /* Not UTF-8: keep the byte value visible instead of dropping it. */
            snprintf(esc, sizeof esc, "\\u%04x", c);
            out_append(esc, 6);
            i++;
        }
    }
    out_append("\"", 1);
}

static void out_key(const char *key)
{
    out_append(",", 1);
    out_json_string(key, strlen(key));
    out_append(":", 1);
}

static void field_str(const char *key, const char *value)
{
    out_key(key);
    out_json_string(value, strlen(value));
}

static void field_bytes(const char *key, const void *value, size_t n)
{
    out_key(key);
    out_json_string(value, n);
}

static void field_int(const char *key, long long value)
{
    out_key(key);
    out_printf("%lld", value);
}

static void field_bool(const char *key, bool value)
{
    out_key(key);
    out_puts(value ? "true" : "false");
}

static void field_errno(int err)
{
    field_int("errno", err);
    field_str("error", errno_name(err));
}

/* Each check writes exactly one of these first, so "ok" always follows
 * "check" and "arg". */
static void result_ok(void)
{
    out_puts(",\"ok\":true");
}

static void result_err(int err)
{
    out_puts(",\"ok\":false");
    field_errno(err);
}

/* A failure that is not an errno: errno 0 and a name of our own (an EAI_
 * code, "HTTP_STATUS", ...). */
static void result_fail(const char *error)
{
    out_puts(",\"ok\":false,\"errno\":0");
    field_str("error", error);
}

/* A forked child died from a signal instead of reporting. */
static void result_killed(int sig)
{
    result_fail("KILLED_BY_SIGNAL");
    field_int("signal", sig);
}

/* "detail" names a secondary failure, e.g. "unlink: EACCES". */
static void field_detail(const char *what, int err)
{
    char text[96];
    snprintf(text, sizeof text, "%s: %s", what, errno_name(err));
    field_str("detail", text);
}

static void list_begin(const char *key)
{
    out_key(key);
    out_append("[", 1);
    line.list_first = true;
}

static void list_separator(void)
{
    if (!line.list_first)
        out_append(",", 1);
    line.list_first = false;
}

static void list_int(long long value)
{
    list_separator();
    out_printf("%lld", value);
}

static void list_str(const char *value)
{
    list_separator();
    out_json_string(value, strlen(value));
}

static void list_end(void)
{
    out_append("]", 1);
}

static void line_begin(const char *check, const char *arg)
{
    line.len = 0;
    line.open = true;
    out_puts("{\"check\":");
    out_json_string(check, strlen(check));
    out_puts(",\"arg\":");
    out_json_string(arg, strlen(arg));
}

/* Finishes the object and writes it straight to fd 1.  Bypassing stdio means
 * there is no buffer to flush before fork(), exit() or a fatal signal. */
static void line_end(void)
{
    if (!line.open)
        return;
    line.open = false;
    out_append("}\n", 2);
    for (size_t done = 0; done < line.len;) {
        ssize_t n = write(STDOUT_FILENO, line.data + done, line.len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;     /* nobody is reading; nothing better to do */
        }
        done += (size_t)n;
    }
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

/* strtol with full validation: the whole string must be a number in
 * [min, max].  Leading blanks are refused (strtol would skip them). */
static bool parse_long(const char *s, int base, long min, long max, long *out)
{
    char *end;
    if (*s == '\0' || isspace((unsigned char)*s))
        return false;
    errno = 0;
    long v = strtol(s, &end, base);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_pid(const char *s, pid_t *pid)
{
    long v;
    /* Refuse 0 and negatives: kill(0/-1/-pgid) would signal whole groups. */
    if (!parse_long(s, 10, 1, INT_MAX, &v))
        return false;
    *pid = (pid_t)v;
    return true;
}

/* SysV keys are 32-bit; accept both signed and unsigned spellings
 * (ipcs prints them as unsigned hex).  0 is IPC_PRIVATE, which would make
 * the lookup create a fresh object, so it is refused. */
static bool parse_key(const char *s, key_t *key)
{
    long v;
    if (!parse_long(s, 0, INT32_MIN, (long)UINT32_MAX, &v) || v == 0)
        return false;
    *key = (key_t)(int32_t)(uint32_t)v;
    return true;
}

/* HOST:PORT with HOST an IPv4 literal or a bracketed IPv6 literal. */
static bool parse_inet(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_text;
    size_t host_len;
    long port;
    bool v6 = s[0] == '[';

    if (v6) {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return false;
        host_len = (size_t)(close - (s + 1));
        if (host_len >= sizeof host)
            return false;
        memcpy(host, s + 1, host_len);
        port_text = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        host_len = (size_t)(colon - s);
        if (host_len >= sizeof host)
            return false;
        memcpy(host, s, host_len);
        port_text = colon + 1;
    }
    host[host_len] = '\0';
    if (!parse_long(port_text, 10, 1, 65535, &port))
        return false;

    memset(ss, 0, sizeof *ss);
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return false;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *len = sizeof *sin6;
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return false;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *len = sizeof *sin;
    }
    return true;
}

/* Copies s up to the next ',' (or its end) into buf as a string.  Returns
 * where the copy stopped (at the ',' or the NUL), or NULL if it did not fit. */
static const char *take_field(const char *s, char *buf, size_t cap)
{
    size_t n = strcspn(s, ",");
    if (n >= cap)
        return NULL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return s + n;
}

/* Non-empty and safe inside an HTTP request line or header: no blanks, no
 * control characters (so no CR or LF). */
static bool is_header_text(const char *s)
{
    if (*s == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p <= 0x20 || *p == 0x7F)
            return false;
    return true;
}

/* The authority of a URL: from after "://" to the next '/', '?' or '#'.
 * Returns false if there is no "://" or the authority is empty. */
static bool url_authority(const char *url, const char **start, size_t *len)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return false;
    p += 3;
    *start = p;
    *len = strcspn(p, "/?#");
    return *len > 0;
}

/* dns=SERVER:PORT,NAME */
struct dns_arg {
    struct sockaddr_storage server;
    socklen_t server_len;
    unsigned char qname[255];   /* NAME in DNS wire format, root label included */
    size_t qname_len;
};

/* NAME becomes a QNAME: labels of 1..63 bytes, at most 255 bytes in all.
 * One trailing dot is allowed; "." alone is the root. */
static bool parse_dns_arg(const char *s, struct dns_arg *out)
{
    char server[64];
    const char *p = take_field(s, server, sizeof server);
    if (p == NULL || *p != ',' || !parse_inet(server, &out->server, &out->server_len))
        return false;
    const char *name = p + 1;
    size_t n = strlen(name);
    size_t pos = 0;
    if (n == 0)
        return false;
    if (strcmp(name, ".") != 0) {
        if (name[n - 1] == '.')
            n--;
        for (const char *label = name, *end = name + n;;) {
            const char *dot = memchr(label, '.', (size_t)(end - label));
            size_t len = (size_t)((dot ? dot : end) - label);
            /* room for this label's length byte, its bytes and the root label */
            if (len == 0 || len > 63 || pos + 1 + len + 1 > sizeof out->qname)
                return false;
            out->qname[pos++] = (unsigned char)len;
            memcpy(out->qname + pos, label, len);
            pos += len;
            if (dot == NULL)
                break;
            label = dot + 1;
        }
    }
    out->qname[pos++] = 0;
    out->qname_len = pos;
    return true;
}

/* proxy-connect=PROXY,HOST:PORT[,SNI] and proxy-get=PROXY,URL[,HOSTHEADER] */
struct proxy_arg {
    struct sockaddr_storage proxy;
    socklen_t proxy_len;
    char target[PROXY_TEXT_MAX];    /* HOST:PORT or URL */
    char extra[PROXY_TEXT_MAX];     /* SNI or HOSTHEADER; "" when not given */
};

/* PROXY is HOST:PORT as for tcp=; the other fields cannot contain commas and
 * must pass is_header_text().  For CONNECT the target must end in :PORT
 * after a non-empty host and SNI is at most 255 bytes; for GET a URL without
 * HOSTHEADER needs an authority to take the Host header from. */
static bool parse_proxy_arg(const char *s, bool get, struct proxy_arg *out)
{
    char proxy[64];
    const char *p = take_field(s, proxy, sizeof proxy);
    if (p == NULL || *p != ',' || !parse_inet(proxy, &out->proxy, &out->proxy_len))
        return false;
    p = take_field(p + 1, out->target, sizeof out->target);
    if (p == NULL || !is_header_text(out->target))
        return false;
    out->extra[0] = '\0';
    if (*p == ',') {
        p = take_field(p + 1, out->extra, sizeof out->extra);
        if (p == NULL || *p != '\0' || !is_header_text(out->extra))
            return false;
    }
    if (get) {
        const char *authority;
        size_t len;
        return out->extra[0] != '\0' || url_authority(out->target, &authority, &len);
    }
    const char *colon = strrchr(out->target, ':');
    long port;
    return colon != NULL && colon != out->target &&
           parse_long(colon + 1, 10, 1, 65535, &port) &&
           strlen(out->extra) <= SNI_MAX;
}

static bool parse_seconds(const char *s, double *seconds)
{
    char *end;
    if (*s == '\0' || isspace((unsigned char)*s))
        return false;
    errno = 0;
    double v = strtod(s, &end);
    /* The range test also rejects NaN and infinities. */
    if (errno != 0 || *end != '\0' || !(v >= 0 && v <= 1e7))
        return false;
    *seconds = v;
    return true;
}

static long long elapsed_ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000LL +
           (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* poll() one fd for at most timeout_ms in total, even across EINTR.
 * Returns 1 when ready, 0 on timeout, -1 with errno set on error. */
static int wait_fd(int fd, short events, int timeout_ms)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        long long left = timeout_ms - elapsed_ms_since(&start);
        if (left < 0)
            left = 0;
        struct pollfd pfd = { .fd = fd, .events = events };
        int n = poll(&pfd, 1, (int)left);
        if (n >= 0)
            return n > 0 ? 1 : 0;
        if (errno != EINTR)
            return -1;
    }
}

/* read() until n bytes, EOF or an error; returns the count or -1. */
static ssize_t read_full(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static bool write_full(int fd, const char *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, buf + done, n - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        done += (size_t)w;
    }
    return true;
}

/* Random bytes for DNS ids and the ClientHello.  If getrandom() fails (an
 * old kernel, a filter), the clock and pid stirred by xorshift64 do: these
 * values only need to differ between runs, not to be secret. */
static void random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, GRND_NONBLOCK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < n) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
                     ((uint64_t)getpid() << 16) ^ 1;
        for (; got < n; got++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p[got] = (unsigned char)(x >> 24);
        }
    }
}

/* Connects a non-blocking TCP socket to addr, waiting at most timeout_ms.
 * Returns the socket, or -1 with *err set (ETIMEDOUT when time ran out). */
static int connect_tcp(const struct sockaddr_storage *addr, socklen_t len,
                       int timeout_ms, int *err)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    *err = 0;
    if (connect(fd, (const struct sockaddr *)addr, len) != 0) {
        *err = errno;
        if (*err == EINPROGRESS || *err == EINTR) {
            int ready = wait_fd(fd, POLLOUT, timeout_ms);
            if (ready < 0) {
                *err = errno;
            } else if (ready == 0) {
                *err = ETIMEDOUT;
            } else {
                socklen_t elen = sizeof *err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &elen) != 0)
                    *err = errno;
            }
        }
    }
    if (*err != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends all of buf on a non-blocking socket within timeout_ms.  MSG_NOSIGNAL:
 * a peer that has gone gives EPIPE instead of killing the probe with
 * SIGPIPE.  Returns the bytes sent; *err is 0 if that is all of them, else
 * the errno (ETIMEDOUT when time ran out). */
static size_t send_within(int fd, const void *buf, size_t n, int timeout_ms, int *err)
{
    struct timespec start;
    size_t done = 0;
    clock_gettime(CLOCK_MONOTONIC, &start);
    *err = 0;
    while (done < n) {
        ssize_t w = send(fd, (const char *)buf + done, n - done, MSG_NOSIGNAL);
        if (w >= 0) {
            done += (size_t)w;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            *err = errno;
            break;
        }
        long long left = timeout_ms - elapsed_ms_since(&start);
        int ready = left > 0 ? wait_fd(fd, POLLOUT, (int)left) : 0;
        if (ready <= 0) {
            *err = ready < 0 ? errno : ETIMEDOUT;
            break;
        }
    }
    return done;
}

/* An HTTP response as far as it arrived. */
struct http_reply {
    size_t len;         /* bytes in the buffer */
    size_t head_len;    /* through the "\r\n\r\n" ending the head; 0 if none came */
    int status;         /* from the status line; 0 if none parsed */
    int err;            /* errno that ended reading (ETIMEDOUT included); 0 for EOF,
                           the buffer being full, or the head being complete */
};

/* Reads an HTTP response from a non-blocking socket into buf[0..cap) for at
 * most timeout_ms: until EOF or a full buffer, or with head_only until the
 * head is complete (bytes after it that came in the same reads stay in buf).
 * Then parses the status line "HTTP/x.y NNN ...". */
static void read_http(int fd, char *buf, size_t cap, int timeout_ms, bool head_only,
                      struct http_reply *r)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    *r = (struct http_reply){ 0 };
    while (r->len < cap) {
        ssize_t n = recv(fd, buf + r->len, cap - r->len, 0);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                r->err = errno;
                break;
            }
            long long left = timeout_ms - elapsed_ms_since(&start);
            int ready = left > 0 ? wait_fd(fd, POLLIN, (int)left) : 0;
            if (ready <= 0) {
                r->err = ready < 0 ? errno : ETIMEDOUT;
                break;
            }
            continue;
        }
        /* Look for the end of the head, including where it spans two reads. */
        size_t from = r->len >= 3 ? r->len - 3 : 0;
        r->len += (size_t)n;
        if (r->head_len == 0) {
            const char *end = memmem(buf + from, r->len - from, "\r\n\r\n", 4);
            if (end != NULL) {
                r->head_len = (size_t)(end - buf) + 4;
                if (head_only)
                    break;
            }
        }
    }

    /* "HTTP/" version SP three digits, then SP, CR/LF or the end. */
    const char *line_end = memchr(buf, '\n', r->len);
    size_t line_len = line_end ? (size_t)(line_end - buf) : r->len;
    const char *sp = memchr(buf, ' ', line_len);
    if (line_len >= 5 && memcmp(buf, "HTTP/", 5) == 0 && sp != NULL &&
        (size_t)(sp - buf) + 4 <= line_len &&
        isdigit((unsigned char)sp[1]) && isdigit((unsigned char)sp[2]) &&
        isdigit((unsigned char)sp[3]) &&
        ((size_t)(sp - buf) + 4 == line_len || sp[4] == ' ' || sp[4] == '\r'))
        r->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
}

static const char *mode_type(mode_t mode)
{
    if (S_ISREG(mode)) return "file";
    if (S_ISDIR(mode)) return "dir";
    if (S_ISLNK(mode)) return "link";
    return "other";
}

/* Waits for a child forked by a check and reports it.  The child's exit
 * status is 0 for success or the errno it saw.  Returns the "ok" written. */
static bool report_child(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            result_err(errno);
            return false;
        }
    }
    if (WIFEXITED(status)) {
        if (WEXITSTATUS(status) == 0) {
            result_ok();
            return true;
        }
        result_err(WEXITSTATUS(status));
    } else {
        /* e.g. a seccomp filter that kills instead of returning an errno */
        result_killed(WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    return false;
}

/* What a child forked by run_in_child() tells the probe beyond its exit
 * status.  It lives in a shared mapping, so the probe reads it even when a
 * seccomp filter killed the child halfway through. */
struct child_note {
    char step[48];      /* setup step under way; "" once the attempt runs */
    char detail[48];
    int injected;       /* tiocsti*: 1 if the byte came back, 0 if not; else -1 */
};

static struct child_note *child_note;   /* set in the child only */

static void child_step(const char *step)
{
    if (child_note != NULL)
        snprintf(child_note->step, sizeof child_note->step, "%s", step);
}

/* Runs attempt(ctx) in a forked child, so the probe survives a filter that
 * kills, and reports it: report_child()'s fields, then "step" (when not ok
 * and a setup step failed or was under way), "detail" and "injected".
 * attempt returns 0 for success or the errno to report. */
static void run_in_child(int (*attempt)(const void *ctx), const void *ctx)
{
    struct child_note *note = mmap(NULL, sizeof *note, PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (note == MAP_FAILED)
        note = NULL;        /* still run it; only the extra fields are lost */
    else
        *note = (struct child_note){ .injected = -1 };

    pid_t pid = fork();
    if (pid < 0) {
        result_err(errno);
    } else if (pid == 0) {
        child_note = note;
        int err = attempt(ctx);
        /* An exit status has 8 bits; no Linux errno needs more. */
        _exit(err >= 0 && err <= 255 ? err : EIO);
    } else {
        bool ok = report_child(pid);
        if (note != NULL) {
            if (!ok && note->step[0] != '\0')
                field_str("step", note->step);
            if (note->detail[0] != '\0')
                field_str("detail", note->detail);
            if (ok && note->injected >= 0)
                out_puts(note->injected ? ",\"injected\":true" : ",\"injected\":false");
        }
    }
    if (note != NULL)
        munmap(note, sizeof *note);
}

/* ------------------------------------------------------------------------ */
/* Checks                                                                    */
/* ------------------------------------------------------------------------ */

static void check_identity(const char *arg)
{
    (void)arg;
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    getresuid(&ruid, &euid, &suid);
    getresgid(&rgid, &egid, &sgid);

    /* Capabilities and seccomp mode as the kernel reports them; parsing the
     * status file avoids a libcap dependency. */
    static const char *const cap_keys[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
    static const char *const cap_fields[] = { "cap_inh", "cap_prm", "cap_eff", "cap_bnd", "cap_amb" };
    char caps[5][32] = { "", "", "", "", "" };
    long seccomp = -1;
    FILE *status = fopen("/proc/self/status", "re");
    if (status != NULL) {
        char text[512];
        while (fgets(text, sizeof text, status) != NULL) {
            char *colon = strchr(text, ':');
            if (colon == NULL)
                continue;
            *colon = '\0';
            char *value = colon + 1;
            value += strspn(value, " \t");
            value[strcspn(value, " \t\n")] = '\0';
            for (size_t i = 0; i < 5; i++)
                if (strcmp(text, cap_keys[i]) == 0)
                    snprintf(caps[i], sizeof caps[i], "%s", value);
            if (strcmp(text, "Seccomp") == 0)
                parse_long(value, 10, 0, INT_MAX, &seccomp);
        }
        fclose(status);
    }

    struct utsname uts;
    if (uname(&uts) != 0)
        uts.nodename[0] = '\0';
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
        cwd[0] = '\0';

    result_ok();
    list_begin("uid");
    list_int(ruid); list_int(euid); list_int(suid);
    list_end();
    list_begin("gid");
    list_int(rgid); list_int(egid); list_int(sgid);
    list_end();

    list_begin("groups");
    int ngroups = getgroups(0, NULL);
    if (ngroups > 0) {
        gid_t *groups = calloc((size_t)ngroups, sizeof *groups);
        if (groups != NULL) {
            ngroups = getgroups(ngroups, groups);
            for (int i = 0; i < ngroups; i++)
                list_int(groups[i]);
            free(groups);
        }
    }
    list_end();

    for (size_t i = 0; i < 5; i++)
        field_str(cap_fields[i], caps[i]);
    field_int("no_new_privs", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    field_int("seccomp", seccomp);
    field_int("pid", getpid());
    field_int("ppid", getppid());
    field_int("sid", getsid(0));
    field_str("hostname", uts.nodename);
    field_str("cwd", cwd);
}

static int compare_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void check_pids(const char *arg)
{
    (void)arg;
    DIR *proc = opendir("/proc");
    if (proc == NULL) {
        result_err(errno);
        return;
    }
    long *pids = NULL;
    size_t count = 0, cap = 0;
    struct dirent *entry;
    while ((entry = readdir(proc)) != NULL) {
        long pid;
        if (!isdigit((unsigned char)entry->d_name[0]) ||
            !parse_long(entry->d_name, 10, 1, LONG_MAX, &pid))
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            long *grown = realloc(pids, cap * sizeof *pids);
            if (grown == NULL)
                break;
            pids = grown;
        }
        pids[count++] = pid;
    }
    closedir(proc);
    if (count > 0)
        qsort(pids, count, sizeof *pids, compare_long);

    result_ok();
    list_begin("pids");
    for (size_t i = 0; i < count; i++)
        list_int(pids[i]);
    list_end();
    free(pids);
}

static void check_fds(const char *arg)
{
    (void)arg;
    /* F_GETFD rather than listing /proc/self/fd: that would need a directory
     * fd of our own, and must work even without /proc. */
    int fds[FD_SCAN_LIMIT];
    size_t count = 0;
    for (int fd = 3; fd < FD_SCAN_LIMIT; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            fds[count++] = fd;

    result_ok();
    list_begin("fds");
    for (size_t i = 0; i < count; i++)
        list_int(fds[i]);
    list_end();
    list_begin("targets");
    for (size_t i = 0; i < count; i++) {
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fds[i]);
        ssize_t n = readlink(link, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = '\0';
        list_str(target);
    }
    list_end();
}

static void check_read(const char *path)
{
    /* One open() for both cases, then fstat(): no race between deciding
     * the type and opening.  O_NONBLOCK keeps a FIFO from blocking. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        result_err(errno);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        result_err(errno);
        close(fd);
        return;
    }

    if (S_ISDIR(st.st_mode)) {
        DIR *dir = fdopendir(fd);   /* takes ownership of fd */
        if (dir == NULL) {
            result_err(errno);
            close(fd);
            return;
        }
        errno = 0;
        struct dirent *entry = readdir(dir);
        int err = errno;
        if (entry == NULL && err != 0) {
            result_err(err);
        } else {
            result_ok();
            field_str("type", "dir");
            field_str("entry", entry ? entry->d_name : "");
        }
        closedir(dir);
        return;
    }

    char buf[READ_LIMIT];
    ssize_t n = read_full(fd, buf, sizeof buf);
    int err = errno;
    close(fd);
    if (n < 0) {
        result_err(err);
        return;
    }
    result_ok();
    field_str("type", S_ISREG(st.st_mode) ? "file" : "other");
    field_int("bytes", n);
    if (S_ISREG(st.st_mode))
        field_bytes("content", buf, (size_t)n);
}

static void check_exists(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        result_err(errno);
        return;
    }
    result_ok();
    field_str("type", mode_type(st.st_mode));
}

/* Shared by write= and keep=.  O_EXCL|O_NOFOLLOW: never touch an existing
 * file or follow a planted symlink, only create a new one. */
static void create_file(const char *path, bool keep)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        result_err(errno);
        return;
    }
    bool written = write_full(fd, PROBE_TEXT, strlen(PROBE_TEXT));
    int err = errno;
    /* A failing close (e.g. a deferred ENOSPC/EDQUOT) means the data did
     * not land, so it counts as a write failure. */
    if (close(fd) != 0 && written) {
        written = false;
        err = errno;
    }

    if (!written) {
        result_err(err);
        if (!keep)
            unlink(path);   /* don't leave an empty file behind */
        return;
    }
    result_ok();
    if (!keep && unlink(path) != 0)
        field_detail("unlink", errno);
}

static void check_write(const char *path)
{
    create_file(path, false);
}

static void check_keep(const char *path)
{
    create_file(path, true);
}

static void check_rewrite(const char *path)
{
    /* One byte more than the limit tells us whether the file is longer;
     * rewriting only a prefix after O_TRUNC would destroy the rest. */
    char buf[REWRITE_LIMIT + 1];
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        result_err(errno);
        field_str("detail", "open for reading");
        return;
    }
    ssize_t n = read_full(fd, buf, sizeof buf);
    int err = errno;
    close(fd);
    if (n < 0) {
        result_err(err);
        field_str("detail", "read");
        return;
    }
    if (n > REWRITE_LIMIT) {
        result_err(EFBIG);
        field_str("detail", "longer than 4096 bytes; not rewritten");
        return;
    }

    fd = open(path, O_WRONLY | O_TRUNC | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        result_err(errno);
        field_str("detail", "open for writing");
        return;
    }
    /* A single write(): sysctl files take their whole value in one call. */
    ssize_t w = write(fd, buf, (size_t)n);
    err = errno;
    close(fd);
    if (w < 0) {
        result_err(err);
        field_str("detail", "write");
        return;
    }
    result_ok();
    field_int("bytes", w);
}

static void check_mount(const char *dir)
{
    if (mount("none", dir, "tmpfs", 0, "size=1m") != 0) {
        result_err(errno);
        return;
    }
    result_ok();
    if (umount2(dir, 0) != 0) {
        field_detail("umount", errno);
        /* Still must not leave it behind. */
        umount2(dir, MNT_DETACH);
    }
}

/* The unshare checks run in a child so the probe's own namespaces (and so
 * the later checks) stay as they were. */
static void try_unshare(int flag)
{
    pid_t pid = fork();
    if (pid < 0) {
        result_err(errno);
        return;
    }
    if (pid == 0)
        _exit(unshare(flag) == 0 ? 0 : errno);
    report_child(pid);
}

static void check_unshare_user(const char *arg)
{
    (void)arg;
    try_unshare(CLONE_NEWUSER);
}

static void check_unshare_mount(const char *arg)
{
    (void)arg;
    try_unshare(CLONE_NEWNS);
}

static void check_unshare_net(const char *arg)
{
    (void)arg;
    try_unshare(CLONE_NEWNET);
}

static void check_pivot_root(const char *arg)
{
    (void)arg;
    /* pivot_root() tests CAP_SYS_ADMIN in the mount namespace's user
     * namespace before it resolves any path, so EPERM means "not allowed"
     * and anything else (ENOENT here) means "allowed to try". */
    long r = syscall(SYS_pivot_root, "/nonexistent-otk-probe", "/nonexistent-otk-probe");
    int err = r == 0 ? 0 : errno;
    out_puts(err == EPERM ? ",\"ok\":false" : ",\"ok\":true");
    field_int("errno", err);
    field_str("error", err == 0 ? "" : errno_name(err));
}

static void check_ptrace(const char *arg)
{
    pid_t pid;
    if (!parse_pid(arg, &pid)) {     /* main() validated it already */
        result_err(EINVAL);
        return;
    }
    if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) != 0) {
        result_err(errno);
        return;
    }
    result_ok();

    /* Wait (bounded) for the SIGSTOP that PTRACE_ATTACH sent.  A different
     * signal may be reported first; pass it on and keep waiting, so the
     * tracee is left exactly as it was. */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, __WALL | WNOHANG);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            field_detail("waitpid", errno);
            break;
        }
        if (r == pid && WIFSTOPPED(status)) {
            if (WSTOPSIG(status) == SIGSTOP) {
                if (ptrace(PTRACE_DETACH, pid, NULL, NULL) != 0)
                    field_detail("detach", errno);
                return;
            }
            ptrace(PTRACE_CONT, pid, NULL, (void *)(long)WSTOPSIG(status));
            continue;
        }
        if (r == pid) {             /* exited or was killed meanwhile */
            field_str("detail", "tracee ended");
            return;
        }
        if (elapsed_ms_since(&start) > PTRACE_STOP_TIMEOUT_MS) {
            field_detail("waitpid", ETIMEDOUT);
            break;
        }
        usleep(10 * 1000);
    }
    /* No stop seen; try anyway.  Our exit would detach in any case. */
    ptrace(PTRACE_DETACH, pid, NULL, NULL);
}

static void send_signal(const char *arg, int sig)
{
    pid_t pid;
    if (!parse_pid(arg, &pid)) {     /* main() validated it already */
        result_err(EINVAL);
        return;
    }
    if (kill(pid, sig) != 0)
        result_err(errno);
    else
        result_ok();
}

static void check_kill(const char *arg)
{
    send_signal(arg, SIGKILL);
}

static void check_signal0(const char *arg)
{
    send_signal(arg, 0);
}

static void connect_unix(const struct sockaddr_un *addr, socklen_t len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        result_err(errno);
        return;
    }
    /* A unix connect to a listener with a full backlog blocks; the kernel
     * bounds that wait by the send timeout (then fails with EAGAIN). */
    struct timeval tv = { .tv_sec = NET_TIMEOUT_MS / 1000 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int r;
    do
        r = connect(fd, (const struct sockaddr *)addr, len);
    while (r != 0 && errno == EINTR);
    if (r != 0)
        result_err(errno);
    else
        result_ok();
    close(fd);
}

static void check_unix(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    memcpy(addr.sun_path, path, strlen(path) + 1);  /* length checked in validation */
    connect_unix(&addr, sizeof addr);
}

static void check_abstract(const char *name)
{
    /* Abstract names are the exact bytes after the leading NUL; the address
     * length must not include a trailing NUL or it becomes part of the name. */
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    size_t n = strlen(name);
    addr.sun_path[0] = '\0';
    memcpy(addr.sun_path + 1, name, n);
    connect_unix(&addr, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n));
}

static void check_tcp(const char *arg)
{
    struct sockaddr_storage addr;
    socklen_t len;
    if (!parse_inet(arg, &addr, &len)) {
        result_err(EINVAL);
        return;
    }

    int err;
    int fd = connect_tcp(&addr, len, NET_TIMEOUT_MS, &err);
    if (fd < 0) {
        result_err(err);
        return;
    }
    result_ok();
    close(fd);
}

static void check_udp(const char *arg)
{
    struct sockaddr_storage addr;
    socklen_t len;
    if (!parse_inet(arg, &addr, &len)) {
        result_err(EINVAL);
        return;
    }

    int fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        result_err(errno);
        return;
    }
    /* A connected socket only accepts replies from that peer and reports
     * ICMP port-unreachable as ECONNREFUSED. */
    char reply[512];
    ssize_t n = -1;
    int err = 0;
    if (connect(fd, (struct sockaddr *)&addr, len) != 0 ||
        send(fd, PING_TEXT, strlen(PING_TEXT), 0) < 0) {
        err = errno;
    } else {
        int ready = wait_fd(fd, POLLIN, NET_TIMEOUT_MS);
        if (ready < 0)
            err = errno;
        else if (ready == 0)
            err = ETIMEDOUT;
        else if ((n = recv(fd, reply, sizeof reply, MSG_DONTWAIT)) < 0)
            err = errno;
    }
    close(fd);
    if (err != 0) {
        result_err(err);
        return;
    }
    result_ok();
    field_bytes("content", reply, (size_t)n);
}

/* Interface names collected by check_interfaces(). */
struct if_names {
    char (*name)[IFNAMSIZ];
    size_t count, cap;
};

static void if_names_add(struct if_names *l, const char *name, size_t len)
{
    if (len == 0 || len >= IFNAMSIZ)
        return;         /* not an interface name */
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->name, cap * sizeof *l->name);
        if (p == NULL) {
            fputs("otk-probe: out of memory\n", stderr);
            exit(1);
        }
        l->name = p;
        l->cap = cap;
    }
    memcpy(l->name[l->count], name, len);
    l->name[l->count][len] = '\0';
    l->count++;
}

/* /proc/net/dev (a link into /proc/self/net, so always the probe's own
 * namespace) has two header lines, then "  NAME: counters" per interface.
 * Interface names cannot contain ':'.  Returns false if it cannot be read. */
static bool interfaces_from_proc(struct if_names *l)
{
    FILE *f = fopen("/proc/net/dev", "re");
    if (f == NULL)
        return false;
    char *text = NULL;
    size_t cap = 0;
    for (int lineno = 1; getline(&text, &cap, f) >= 0; lineno++) {
        char *colon = strchr(text, ':');
        if (lineno <= 2 || colon == NULL)
            continue;
        char *name = text;
        while (*name == ' ')
            name++;
        if (name < colon)
            if_names_add(l, name, (size_t)(colon - name));
    }
    free(text);
    fclose(f);
    return true;
}

/* Without /proc: ask for the name of every interface index in turn (indexes
 * are per namespace and start at 1; ENODEV means no such index).  Returns 0,
 * or the errno of an answer other than ENODEV. */
static int interfaces_from_ioctl(int sock, struct if_names *l)
{
    for (int index = 1; index <= IFINDEX_SCAN_LIMIT; index++) {
        struct ifreq ifr = { .ifr_ifindex = index };
        if (ioctl(sock, SIOCGIFNAME, &ifr) == 0)
            if_names_add(l, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
        else if (errno != ENODEV)
            return errno;
    }
    return 0;
}

static void check_interfaces(const char *arg)
{
    (void)arg;
    /* Any socket serves for the interface ioctls; they act on the namespace
     * of the socket, which is the probe's.  if_nameindex() is not used: glibc
     * implements it with a netlink socket, which sandboxes filter. */
    int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) {
        result_err(errno);
        return;
    }
    struct if_names l = { 0 };
    const char *source = "proc";
    if (!interfaces_from_proc(&l)) {
        source = "ioctl";
        int err = interfaces_from_ioctl(sock, &l);
        if (err != 0) {
            result_err(err);
            field_str("step", "SIOCGIFNAME");
            close(sock);
            free(l.name);
            return;
        }
    }
    result_ok();
    list_begin("names");
    for (size_t i = 0; i < l.count; i++)
        list_str(l.name[i]);
    list_end();
    list_begin("up");
    for (size_t i = 0; i < l.count; i++) {
        struct ifreq ifr = { 0 };
        memcpy(ifr.ifr_name, l.name[i], IFNAMSIZ);
        /* An interface that vanished meanwhile is simply not up. */
        if (ioctl(sock, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP))
            list_str(l.name[i]);
    }
    list_end();
    field_str("source", source);
    close(sock);
    free(l.name);
}

static const char *gai_error_name(int rc)
{
    static char fallback[24];
    switch (rc) {
#define GAI_NAME(e) case e: return #e
    GAI_NAME(EAI_BADFLAGS);
    GAI_NAME(EAI_NONAME);
    GAI_NAME(EAI_AGAIN);
    GAI_NAME(EAI_FAIL);
    GAI_NAME(EAI_FAMILY);
    GAI_NAME(EAI_SOCKTYPE);
    GAI_NAME(EAI_SERVICE);
    GAI_NAME(EAI_MEMORY);
    GAI_NAME(EAI_SYSTEM);
    GAI_NAME(EAI_OVERFLOW);
#ifdef EAI_NODATA
    GAI_NAME(EAI_NODATA);
#endif
#ifdef EAI_ADDRFAMILY
    GAI_NAME(EAI_ADDRFAMILY);
#endif
#undef GAI_NAME
    }
    snprintf(fallback, sizeof fallback, "EAI_%d", rc);
    return fallback;
}

/* What the resolving child sends back: "RC ERRNO\n", then one numeric
 * address per line. */
#define RESOLVE_TEXT_MAX (32 + RESOLVE_MAX_ADDRESSES * INET6_ADDRSTRLEN)

/* The child of check_resolve(): getaddrinfo, its result to fd, _exit. */
static void resolve_in_child(const char *name, int fd)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    char text[RESOLVE_TEXT_MAX];

    /* The probe kills it at RESOLVE_TIMEOUT_MS; this only covers a probe
     * that dies first. */
    alarm(RESOLVE_TIMEOUT_MS / 1000 + 2);
    errno = 0;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    int err = rc == EAI_SYSTEM ? errno : 0;
    size_t len = (size_t)snprintf(text, sizeof text, "%d %d\n", rc, err);
    int count = 0;
    for (struct addrinfo *ai = rc == 0 ? res : NULL;
         ai != NULL && count < RESOLVE_MAX_ADDRESSES; ai = ai->ai_next) {
        char line[INET6_ADDRSTRLEN + 2];    /* "\n" ADDRESS "\n" */
        const void *addr = ai->ai_family == AF_INET ?
                               (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr :
                           ai->ai_family == AF_INET6 ?
                               (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr :
                               NULL;
        line[0] = '\n';
        if (addr == NULL || inet_ntop(ai->ai_family, addr, line + 1, INET6_ADDRSTRLEN) == NULL)
            continue;
        size_t n = strlen(line);
        line[n++] = '\n';
        /* Once only, in getaddrinfo's order (the text so far ends in '\n'). */
        if (memmem(text, len, line, n) != NULL)
            continue;
        memcpy(text + len, line + 1, n - 1);
        len += n - 1;
        count++;
    }
    write_full(fd, text, len);
    _exit(0);
}

static void check_resolve(const char *name)
{
    /* getaddrinfo cannot be interrupted or given a deadline, so it runs in a
     * child that is killed when time is up. */
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        result_err(errno);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(fds[0]);
        close(fds[1]);
        result_err(err);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        resolve_in_child(name, fds[1]);
    }
    close(fds[1]);

    char text[RESOLVE_TEXT_MAX + 1];
    size_t len = 0;
    int err = 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (len < sizeof text - 1) {
        long long left = RESOLVE_TIMEOUT_MS - elapsed_ms_since(&start);
        int ready = left > 0 ? wait_fd(fds[0], POLLIN, (int)left) : 0;
        if (ready <= 0) {
            err = ready < 0 ? errno : ETIMEDOUT;
            break;
        }
        ssize_t n = read(fds[0], text + len, sizeof text - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = errno;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fds[0]);
    if (err != 0)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (err != 0) {
        result_err(err);
        return;
    }
    if (WIFSIGNALED(status)) {
        result_killed(WTERMSIG(status));
        return;
    }

    text[len] = '\0';
    int rc, sys_errno;
    char *addresses = strchr(text, '\n');
    if (addresses == NULL || sscanf(text, "%d %d", &rc, &sys_errno) != 2) {
        result_err(EIO);    /* the child did not report */
        return;
    }
    addresses++;
    if (rc != 0) {
        if (rc == EAI_SYSTEM && sys_errno != 0)
            result_err(sys_errno);
        else
            result_fail(gai_error_name(rc));
        field_str("detail", gai_strerror(rc));
        return;
    }
    if (*addresses == '\0') {
        result_fail("NO_ADDRESS");
        return;
    }
    result_ok();
    list_begin("addresses");
    for (char *p = addresses, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        *nl = '\0';
        list_str(p);
    }
    list_end();
}

static void check_dns(const char *arg)
{
    struct dns_arg dns;
    if (!parse_dns_arg(arg, &dns)) {
        result_err(EINVAL);
        return;
    }

    /* Header: ID, flags with only RD (recursion desired) set, QDCOUNT 1,
     * ANCOUNT, NSCOUNT and ARCOUNT 0.  Question: QNAME, QTYPE A (1), QCLASS
     * IN (1).  All numbers big-endian. */
    unsigned char query[12 + sizeof dns.qname + 4] = { 0 };
    random_bytes(query, 2);
    query[2] = 0x01;
    query[5] = 1;
    memcpy(query + 12, dns.qname, dns.qname_len);
    size_t len = 12 + dns.qname_len;
    query[len++] = 0;
    query[len++] = 1;
    query[len++] = 0;
    query[len++] = 1;

    int fd = socket(dns.server.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        result_err(errno);
        return;
    }
    /* Connected, as for udp=: only the server's datagrams arrive, and an
     * ICMP port-unreachable shows as ECONNREFUSED. */
    unsigned char reply[512];
    int err = 0;
    if (connect(fd, (struct sockaddr *)&dns.server, dns.server_len) != 0 ||
        send(fd, query, len, 0) < 0) {
        err = errno;
    } else {
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
            long long left = DNS_TIMEOUT_MS - elapsed_ms_since(&start);
            int ready = left > 0 ? wait_fd(fd, POLLIN, (int)left) : 0;
            if (ready <= 0) {
                err = ready < 0 ? errno : ETIMEDOUT;
                break;
            }
            /* A longer datagram is cut to the buffer; only the header counts. */
            ssize_t n = recv(fd, reply, sizeof reply, MSG_DONTWAIT);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n < 0) {
                err = errno;
                break;
            }
            if (n >= 12 && reply[0] == query[0] && reply[1] == query[1])
                break;
            /* anything else (a stale reply, junk) is ignored */
        }
    }
    close(fd);
    if (err != 0) {
        result_err(err);
        return;
    }
    result_ok();
    field_int("rcode", reply[3] & 0x0F);
    field_int("answers", reply[6] << 8 | reply[7]);
}

/* The ClientHello is written into a struct wire, big-endian.  Every length
 * field is reserved before what it measures (wire_open) and filled in
 * afterwards from what was actually written (wire_close), so no length is
 * computed by hand. */
struct wire {
    unsigned char *p;
    size_t len, cap;    /* len may pass cap: then only counted, not stored */
};

static void wire_bytes(struct wire *w, const void *bytes, size_t n)
{
    if (w->len <= w->cap && n <= w->cap - w->len)
        memcpy(w->p + w->len, bytes, n);
    w->len += n;
}

static void wire_u8(struct wire *w, unsigned v)
{
    unsigned char b = (unsigned char)v;
    wire_bytes(w, &b, 1);
}

static void wire_u16(struct wire *w, unsigned v)
{
    unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };
    wire_bytes(w, b, 2);
}

/* Reserves a length field of width bytes (1..3); returns its offset. */
static size_t wire_open(struct wire *w, size_t width)
{
    static const unsigned char zero[3];
    size_t at = w->len;
    wire_bytes(w, zero, width);
    return at;
}

/* Sets the length field at `at` to the number of bytes written after it. */
static void wire_close(struct wire *w, size_t at, size_t width)
{
    size_t n = w->len - at - width;
    for (size_t i = 0; i < width; i++)
        if (at + i < w->cap)
            w->p[at + i] = (unsigned char)(n >> (8 * (width - 1 - i)));
}

/* Builds one TLS record holding a ClientHello (RFC 8446 section 4.1.2, in
 * the TLS 1.2-compatible form every TLS 1.3 client sends).  With sni NULL
 * there is no server_name extension.  Returns the record's length, or 0 if
 * it does not fit in cap. */
static size_t build_client_hello(unsigned char *buf, size_t cap, const char *sni)
{
    static const unsigned cipher_suites[] = {
        0x1301,     /* TLS_AES_128_GCM_SHA256 (TLS 1.3) */
        0x1302,     /* TLS_AES_256_GCM_SHA384 (TLS 1.3) */
        0x1303,     /* TLS_CHACHA20_POLY1305_SHA256 (TLS 1.3) */
        0xc02b,     /* TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 */
        0xc02f,     /* TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 */
        0xc030,     /* TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 */
        0x009c,     /* TLS_RSA_WITH_AES_128_GCM_SHA256 */
    };
    static const unsigned signature_schemes[] = {
        0x0403,     /* ecdsa_secp256r1_sha256 */
        0x0804,     /* rsa_pss_rsae_sha256 */
        0x0401,     /* rsa_pkcs1_sha256 */
        0x0503,     /* ecdsa_secp384r1_sha384 */
        0x0805,     /* rsa_pss_rsae_sha384 */
        0x0501,     /* rsa_pkcs1_sha384 */
    };
    struct wire w = { .p = buf, .cap = cap };
    unsigned char random[32], key_share[32];
    size_t sni_len = sni != NULL ? strlen(sni) : 0;
    if (sni_len > SNI_MAX)
        return 0;
    random_bytes(random, sizeof random);
    /* Any 32 bytes are an X25519 public key a server accepts, so a TLS 1.3
     * server answers with a ServerHello rather than a HelloRetryRequest. */
    random_bytes(key_share, sizeof key_share);

    /* TLSPlaintext: content type handshake, legacy version TLS 1.0. */
    wire_u8(&w, 0x16);
    wire_u16(&w, 0x0301);
    size_t record = wire_open(&w, 2);

    /* Handshake: msg_type client_hello, 24-bit length. */
    wire_u8(&w, 0x01);
    size_t handshake = wire_open(&w, 3);

    wire_u16(&w, 0x0303);                       /* legacy_version TLS 1.2 */
    wire_bytes(&w, random, sizeof random);
    wire_u8(&w, 0);                             /* legacy_session_id: empty */
    size_t suites = wire_open(&w, 2);
    for (size_t i = 0; i < sizeof cipher_suites / sizeof cipher_suites[0]; i++)
        wire_u16(&w, cipher_suites[i]);
    wire_close(&w, suites, 2);
    wire_u8(&w, 1);                             /* compression methods: */
    wire_u8(&w, 0);                             /*   null only */

    size_t extensions = wire_open(&w, 2);
    if (sni != NULL) {
        /* server_name (RFC 6066): a ServerNameList with one host_name. */
        wire_u16(&w, 0x0000);
        size_t ext = wire_open(&w, 2);
        size_t list = wire_open(&w, 2);
        wire_u8(&w, 0);                         /* name_type host_name */
        size_t name = wire_open(&w, 2);
        wire_bytes(&w, sni, sni_len);
        wire_close(&w, name, 2);
        wire_close(&w, list, 2);
        wire_close(&w, ext, 2);
    }
    /* supported_groups: x25519, secp256r1, secp384r1. */
    wire_u16(&w, 0x000a);
    size_t ext = wire_open(&w, 2);
    size_t list = wire_open(&w, 2);
    wire_u16(&w, 0x001d);
    wire_u16(&w, 0x0017);
    wire_u16(&w, 0x0018);
    wire_close(&w, list, 2);
    wire_close(&w, ext, 2);
    /* ec_point_formats: uncompressed (for the TLS 1.2 ECDHE suites). */
    wire_u16(&w, 0x000b);
    ext = wire_open(&w, 2);
    list = wire_open(&w, 1);
    wire_u8(&w, 0);
    wire_close(&w, list, 1);
    wire_close(&w, ext, 2);
    /* signature_algorithms */
    wire_u16(&w, 0x000d);
    ext = wire_open(&w, 2);
    list = wire_open(&w, 2);
    for (size_t i = 0; i < sizeof signature_schemes / sizeof signature_schemes[0]; i++)
        wire_u16(&w, signature_schemes[i]);
    wire_close(&w, list, 2);
    wire_close(&w, ext, 2);
    /* supported_versions: TLS 1.3, TLS 1.2 (a one-byte list length). */
    wire_u16(&w, 0x002b);
    ext = wire_open(&w, 2);
    list = wire_open(&w, 1);
    wire_u16(&w, 0x0304);
    wire_u16(&w, 0x0303);
    wire_close(&w, list, 1);
    wire_close(&w, ext, 2);
    /* key_share: one KeyShareEntry, x25519. */
    wire_u16(&w, 0x0033);
    ext = wire_open(&w, 2);
    list = wire_open(&w, 2);
    wire_u16(&w, 0x001d);
    size_t key = wire_open(&w, 2);
    wire_bytes(&w, key_share, sizeof key_share);
    wire_close(&w, key, 2);
    wire_close(&w, list, 2);
    wire_close(&w, ext, 2);
    wire_close(&w, extensions, 2);

    wire_close(&w, handshake, 3);
    wire_close(&w, record, 2);
    return w.len <= w.cap ? w.len : 0;
}

/* Through an established tunnel: sends a ClientHello (with sni as its
 * server_name, none if NULL) and reads what comes back until the peer closes
 * or TLS_REPLY_TIMEOUT_MS pass.  Adds sent, received, first_byte, closed,
 * and detail when sending or reading failed. */
static void tls_hello_exchange(int fd, const char *sni)
{
    unsigned char hello[512 + SNI_MAX];
    size_t len = build_client_hello(hello, sizeof hello, sni);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int err;
    size_t sent = send_within(fd, hello, len, TLS_REPLY_TIMEOUT_MS, &err);
    long long received = 0;
    int first_byte = -1;
    bool closed = false;
    if (err != 0) {
        closed = err == EPIPE || err == ECONNRESET;
    } else {
        for (;;) {
            unsigned char buf[4096];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                if (first_byte < 0)
                    first_byte = buf[0];
                received += n;
                continue;
            }
            if (n == 0) {
                closed = true;
                break;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                err = errno;    /* ECONNRESET, mostly */
                closed = true;
                break;
            }
            long long left = TLS_REPLY_TIMEOUT_MS - elapsed_ms_since(&start);
            int ready = left > 0 ? wait_fd(fd, POLLIN, (int)left) : 0;
            if (ready < 0)
                err = errno;
            if (ready <= 0)
                break;      /* time is up and the peer is still there */
        }
    }
    field_int("sent", (long long)sent);
    field_int("received", received);
    field_int("first_byte", first_byte);
    field_bool("closed", closed);
    if (err != 0)
        field_detail(sent < len ? "send" : "recv", err);
}

/* Connects to the proxy, sends request and reads the reply into buf (only
 * its head with head_only).  Returns the socket, or -1 after reporting the
 * failure ("step" says whether connect or send failed). */
static int proxy_exchange(const struct proxy_arg *pa, const char *request, size_t request_len,
                          char *buf, size_t cap, bool head_only, struct http_reply *r)
{
    int err;
    int fd = connect_tcp(&pa->proxy, pa->proxy_len, PROXY_CONNECT_TIMEOUT_MS, &err);
    if (fd < 0) {
        result_err(err);
        field_str("step", "connect");
        return -1;
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    send_within(fd, request, request_len, PROXY_REPLY_TIMEOUT_MS, &err);
    if (err != 0) {
        close(fd);
        result_err(err);
        field_str("step", "send");
        return -1;
    }
    long long left = PROXY_REPLY_TIMEOUT_MS - elapsed_ms_since(&start);
    read_http(fd, buf, cap, left > 0 ? (int)left : 0, head_only, r);
    return fd;
}

/* The result of a proxy check that got a connection: ok, or why not.  A
 * status line with another status is "HTTP_STATUS"; without one it is the
 * errno that ended reading ("step":"receive"), or "NO_HTTP_STATUS" when the
 * proxy closed (or filled the limit) first.  A read error that did not
 * decide the result becomes "detail". */
static void result_http(bool ok, const struct http_reply *r)
{
    if (ok) {
        result_ok();
    } else if (r->status != 0) {
        result_fail("HTTP_STATUS");
    } else if (r->err != 0) {
        result_err(r->err);
        field_str("step", "receive");
    } else {
        result_fail("NO_HTTP_STATUS");
    }
    if (r->err != 0 && (ok || r->status != 0))
        field_detail("recv", r->err);
}

/* status; reply: the first line without its line end (at most
 * REPLY_LINE_LIMIT bytes); body: up to BODY_EXCERPT bytes after the head. */
static void field_http_reply(const char *buf, const struct http_reply *r)
{
    const char *nl = memchr(buf, '\n', r->len);
    size_t line = nl ? (size_t)(nl - buf) : r->len;
    if (line > 0 && buf[line - 1] == '\r')
        line--;
    size_t body = r->head_len ? r->len - r->head_len : 0;
    field_int("status", r->status);
    field_bytes("reply", buf, line < REPLY_LINE_LIMIT ? line : REPLY_LINE_LIMIT);
    field_bytes("body", buf + r->head_len, body < BODY_EXCERPT ? body : BODY_EXCERPT);
}

static void check_proxy_connect(const char *arg)
{
    struct proxy_arg pa;
    if (!parse_proxy_arg(arg, false, &pa)) {
        result_err(EINVAL);
        return;
    }
    char request[2 * PROXY_TEXT_MAX + 64];
    int n = snprintf(request, sizeof request, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n",
                     pa.target, pa.target);
    char head[PROXY_HEAD_LIMIT];
    struct http_reply r;
    int fd = proxy_exchange(&pa, request, (size_t)n, head, sizeof head, true, &r);
    if (fd < 0)
        return;
    bool ok = r.status == 200;
    result_http(ok, &r);
    field_http_reply(head, &r);
    if (ok && pa.extra[0] != '\0')
        tls_hello_exchange(fd, strcmp(pa.extra, "-") == 0 ? NULL : pa.extra);
    close(fd);
}

static void check_proxy_get(const char *arg)
{
    struct proxy_arg pa;
    const char *host = NULL;
    size_t host_len = 0;
    if (!parse_proxy_arg(arg, true, &pa)) {
        result_err(EINVAL);
        return;
    }
    if (pa.extra[0] != '\0') {
        host = pa.extra;
        host_len = strlen(pa.extra);
    } else {
        url_authority(pa.target, &host, &host_len);     /* checked in validation */
    }
    char request[2 * PROXY_TEXT_MAX + 64];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %.*s\r\nConnection: close\r\n\r\n",
                     pa.target, (int)host_len, host);
    char *buf = malloc(PROXY_GET_LIMIT);
    if (buf == NULL) {
        result_err(ENOMEM);
        return;
    }
    struct http_reply r;
    int fd = proxy_exchange(&pa, request, (size_t)n, buf, PROXY_GET_LIMIT, false, &r);
    if (fd >= 0) {
        result_http(r.status >= 200 && r.status < 300, &r);
        field_http_reply(buf, &r);
        close(fd);
    }
    free(buf);
}

static void check_sethostname(const char *arg)
{
    (void)arg;
    /* Setting the current value: permission is what we learn, nothing changes. */
    char name[HOST_NAME_MAX + 1];
    if (gethostname(name, sizeof name) != 0) {
        result_err(errno);
        field_str("detail", "gethostname");
        return;
    }
    name[HOST_NAME_MAX] = '\0';
    if (sethostname(name, strlen(name)) != 0)
        result_err(errno);
    else
        result_ok();
}

static void check_session_keys(const char *arg)
{
    (void)arg;
    /* KEYCTL_READ on a keyring returns the serials of the keys it holds. */
    int32_t serials[64];
    long n = syscall(SYS_keyctl, 11 /* KEYCTL_READ */, -3 /* KEY_SPEC_SESSION_KEYRING */, serials, sizeof serials);
    if (n < 0) {
        result_err(errno);
        return;
    }
    result_ok();
    field_int("keys", (long long)(n / (long)sizeof serials[0]));
}

/* flags 0 (no IPC_CREAT): these only look up an existing object. */
static void report_ipc_id(int id)
{
    if (id < 0) {
        result_err(errno);
        return;
    }
    result_ok();
    field_int("id", id);
}

static void check_sysv_msg(const char *arg)
{
    key_t key;
    if (!parse_key(arg, &key)) {
        result_err(EINVAL);
        return;
    }
    report_ipc_id(msgget(key, 0));
}

static void check_sysv_shm(const char *arg)
{
    key_t key;
    if (!parse_key(arg, &key)) {
        result_err(EINVAL);
        return;
    }
    report_ipc_id(shmget(key, 0, 0));
}

static void check_sysv_sem(const char *arg)
{
    key_t key;
    if (!parse_key(arg, &key)) {
        result_err(EINVAL);
        return;
    }
    report_ipc_id(semget(key, 0, 0));
}

static void check_setuid0(const char *arg)
{
    (void)arg;
    /* In a child so that a success does not change the probe's own ids. */
    pid_t pid = fork();
    if (pid < 0) {
        result_err(errno);
        return;
    }
    if (pid == 0)
        _exit(setuid(0) == 0 ? 0 : errno);
    report_child(pid);
}

static void check_sleep(const char *arg)
{
    double seconds;
    if (!parse_seconds(arg, &seconds)) {
        result_err(EINVAL);
        return;
    }
    struct timespec left = {
        .tv_sec = (time_t)seconds,
        .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9),
    };
    /* Signals with a handler-less default action end the probe, which is the
     * point; anything else that interrupts just resumes the sleep. */
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
    result_ok();
}

static void check_exit(const char *arg)
{
    long status;
    if (!parse_long(arg, 10, 0, 255, &status)) {
        result_err(EINVAL);
        return;
    }
    result_ok();
    line_end();
    exit((int)status);
}

static void check_signal(const char *arg)
{
    long sig;
    if (!parse_long(arg, 10, 1, SIGRTMAX, &sig)) {
        result_err(EINVAL);
        return;
    }
    result_ok();
    line_end();
    /* Default action and unblocked, so the result does not depend on what
     * the sandbox's parent left us. (Fails harmlessly for SIGKILL/SIGSTOP.) */
    signal((int)sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, (int)sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    kill(getpid(), (int)sig);
    /* Still here: the default action was to ignore or stop; carry on. */
}

static void check_echo_env(const char *name)
{
    const char *value = getenv(name);
    if (value == NULL) {
        result_err(ENOENT);
        return;
    }
    result_ok();
    field_str("value", value);
}

static void check_env(const char *arg)
{
    (void)arg;
    result_ok();
    list_begin("env");
    for (char **e = environ; e != NULL && *e != NULL; e++)
        list_str(*e);
    list_end();
}

static void check_stdin(const char *arg)
{
    (void)arg;
    static char buf[STDIN_LIMIT];
    ssize_t n = read_full(STDIN_FILENO, buf, sizeof buf);
    if (n < 0) {
        result_err(errno);
        return;
    }
    result_ok();
    field_bytes("content", buf, (size_t)n);
}

/* ------------------------------------------------------------------------ */
/* Checks for the seccomp filter                                             */
/* ------------------------------------------------------------------------ */

/* Every attempt runs in a child (run_in_child) and makes the raw system
 * call, so what is tested is the call the filter sees.  The arguments are
 * harmless, and where possible they get past the kernel's own permission
 * test, so that outside a sandbox the result is not EPERM. */

/* A path that does not exist: calls taking one pass the permission test
 * and then fail with ENOENT, without touching anything. */
#define MISSING_PATH "/nonexistent-otk-probe"

/* For calls that return a new fd: close it again, keeping the result. */
static long closing(long fd)
{
    if (fd >= 0)
        close((int)fd);
    return fd;
}

/* For the clone calls: the new process exits at once and is reaped. */
static long reaping(long pid)
{
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
            ;
    return pid;
}

#if !defined(__x86_64__)
static long not_x86_64(void)
{
    if (child_note != NULL)
        snprintf(child_note->detail, sizeof child_note->detail, "not x86_64");
    errno = ENOSYS;
    return -1;
}
#endif

static long call_ptrace(void)
{
    return syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL);
}

/* Copies one small buffer to another within the calling process. */
static long process_vm(bool write)
{
    char from[8] = "otk", to[8] = "";
    struct iovec local = { to, sizeof to }, remote = { from, sizeof from };
    if (write) {
        local.iov_base = from;
        remote.iov_base = to;
    }
    return syscall(write ? SYS_process_vm_writev : SYS_process_vm_readv,
                   getpid(), &local, 1, &remote, 1, 0);
}

static long call_process_vm_readv(void)
{
    return process_vm(false);
}

static long call_process_vm_writev(void)
{
    return process_vm(true);
}

static long call_mount(void)
{
    return syscall(SYS_mount, "none", MISSING_PATH, "tmpfs", 0, NULL);
}

static long call_umount2(void)
{
    return syscall(SYS_umount2, MISSING_PATH, MNT_DETACH);
}

static long call_fsopen(void)
{
    return closing(syscall(SYS_fsopen, "tmpfs", 1 /* FSOPEN_CLOEXEC */));
}

static long call_fsmount(void)
{
    return syscall(SYS_fsmount, -1, 0, 0);
}

static long call_fsconfig(void)
{
    return syscall(SYS_fsconfig, -1, 0 /* FSCONFIG_SET_FLAG */, "ro", NULL, 0);
}

static long call_fspick(void)
{
    /* Only opens a context for reconfiguring "/"; closing it changes nothing. */
    return closing(syscall(SYS_fspick, AT_FDCWD, "/", 1 /* FSPICK_CLOEXEC */));
}

static long call_open_tree(void)
{
    /* A detached copy of the root mount, dissolved again by the close. */
    return closing(syscall(SYS_open_tree, AT_FDCWD, "/",
                           1 /* OPEN_TREE_CLONE */ | O_CLOEXEC));
}

static long call_move_mount(void)
{
    return syscall(SYS_move_mount, -1, "", -1, "", 0);
}

static long call_mount_setattr(void)
{
    /* struct mount_attr, all zero: the kernel returns 0 without looking
     * up the path, after its permission test. */
    uint64_t attr[4] = { 0 };
    return syscall(SYS_mount_setattr, -1, "", 0, attr, sizeof attr);
}

static long call_pivot_root(void)
{
    return syscall(SYS_pivot_root, MISSING_PATH, MISSING_PATH);
}

static long call_chroot(void)
{
    return syscall(SYS_chroot, "/");
}

static long call_setns(void)
{
    child_step("open /proc/self/ns/uts");
    int fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    child_step("");
    long r = syscall(SYS_setns, fd, CLONE_NEWUTS);
    int err = errno;
    close(fd);
    errno = err;
    return r;
}

static long call_bpf(void)
{
    /* The head of union bpf_attr for BPF_MAP_CREATE: map_type, key_size,
     * value_size, max_entries, map_flags. */
    uint32_t attr[5] = { 2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1, 0 };
    return closing(syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr));
}

static long call_perf_event_open(void)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    return closing(syscall(SYS_perf_event_open, &attr, 0, -1, -1,
                           8 /* PERF_FLAG_FD_CLOEXEC */));
}

static long call_userfaultfd(void)
{
    return closing(syscall(SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */ | O_CLOEXEC));
}

static long call_io_uring_setup(void)
{
    uint32_t params[30] = { 0 };    /* struct io_uring_params, 120 bytes */
    return closing(syscall(SYS_io_uring_setup, 1, params));
}

static long call_io_uring_enter(void)
{
    return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
}

static long call_io_uring_register(void)
{
    return syscall(SYS_io_uring_register, -1, 0, NULL, 0);
}

static long call_keyctl(void)
{
    return syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */,
                   -3 /* KEY_SPEC_SESSION_KEYRING */, 0);
}

static long call_add_key(void)
{
    /* The process keyring is the child's own and goes when it exits. */
    long key = syscall(SYS_add_key, "user", "otk-probe", "x", 1,
                       -2 /* KEY_SPEC_PROCESS_KEYRING */);
    if (key >= 0)
        syscall(SYS_keyctl, 21 /* KEYCTL_INVALIDATE */, key);
    return key;
}

static long call_request_key(void)
{
    return syscall(SYS_request_key, "user", "otk-probe-none", NULL, 0);
}

static long call_kexec_load(void)
{
    /* More segments than KEXEC_SEGMENT_MAX (16): refused with EINVAL right
     * after the permission test.  (0 segments would unload a loaded image.) */
    return syscall(SYS_kexec_load, 0, 17, NULL, 0);
}

static long call_kexec_file_load(void)
{
    return syscall(SYS_kexec_file_load, -1, -1, 0, "", 0);
}

static long call_init_module(void)
{
    return syscall(SYS_init_module, NULL, 0, "");
}

static long call_finit_module(void)
{
    return syscall(SYS_finit_module, -1, "", 0);
}

static long call_delete_module(void)
{
    return syscall(SYS_delete_module, "otk_probe_none", O_NONBLOCK);
}

static long call_reboot(void)
{
    /* A wrong second magic number: EINVAL right after the permission test,
     * where LINUX_REBOOT_CMD_CAD_OFF would change the Ctrl-Alt-Del setting. */
    return syscall(SYS_reboot, 0xfee1dead /* LINUX_REBOOT_MAGIC1 */, 0,
                   0 /* LINUX_REBOOT_CMD_CAD_OFF */, NULL);
}

static long call_swapon(void)
{
    return syscall(SYS_swapon, MISSING_PATH, 0);
}

static long call_swapoff(void)
{
    return syscall(SYS_swapoff, MISSING_PATH);
}

static long call_acct(void)
{
    /* acct(NULL) would switch off process accounting. */
    return syscall(SYS_acct, MISSING_PATH);
}

static long call_settimeofday(void)
{
    /* Neither time nor zone: the kernel still tests CAP_SYS_TIME, then
     * changes nothing. */
    return syscall(SYS_settimeofday, NULL, NULL);
}

static long call_clock_settime(void)
{
    /* Sets the clock to what it reads: at most a step of microseconds. */
    struct timespec now;
    child_step("clock_gettime");
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return -1;
    child_step("");
    return syscall(SYS_clock_settime, CLOCK_REALTIME, &now);
}

static long call_adjtimex(void)
{
    struct timex tx;
    memset(&tx, 0, sizeof tx);      /* modes 0: only reads */
    return syscall(SYS_adjtimex, &tx);
}

static long call_clock_adjtime(void)
{
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    return syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx);
}

static long call_iopl(void)
{
#if defined(__x86_64__)
    return syscall(SYS_iopl, 0);
#else
    return not_x86_64();
#endif
}

static long call_ioperm(void)
{
#if defined(__x86_64__)
    return syscall(SYS_ioperm, 0x80, 1, 0);     /* turns access off */
#else
    return not_x86_64();
#endif
}

static long call_personality(void)
{
    long old = syscall(SYS_personality, 0x0006 /* PER_BSD */);
    if (old >= 0)
        syscall(SYS_personality, old);
    return old;
}

static long call_personality_query(void)
{
    return syscall(SYS_personality, 0xffffffff);
}

/* Raw clone with no stack: fork semantics. */
static long clone_with(unsigned long flags)
{
    return reaping(syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL));
}

static long call_clone_newuser(void)
{
    return clone_with(CLONE_NEWUSER);
}

static long call_clone_newns(void)
{
    return clone_with(CLONE_NEWNS);
}

static long call_clone_newnet(void)
{
    return clone_with(CLONE_NEWNET);
}

static long call_clone3(void)
{
    struct {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack,
                 stack_size, tls, set_tid, set_tid_size, cgroup;
    } args;                         /* struct clone_args, 88 bytes */
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    return reaping(syscall(SYS_clone3, &args, sizeof args));
}

static long call_unshare_newuser(void)
{
    return syscall(SYS_unshare, CLONE_NEWUSER);
}

static long call_unshare_newns(void)
{
    return syscall(SYS_unshare, CLONE_NEWNS);
}

static long call_unshare_newtime(void)
{
    return syscall(SYS_unshare, 0x80 /* CLONE_NEWTIME */);
}

static long call_unshare_files(void)
{
    return syscall(SYS_unshare, CLONE_FILES);
}

static long prlimit_nofile(pid_t pid)
{
    uint64_t old[2];                /* struct rlimit64 */
    return syscall(SYS_prlimit64, pid, RLIMIT_NOFILE, NULL, old);
}

static long call_prlimit_init(void)
{
    return prlimit_nofile(1);
}

static long call_prlimit_self(void)
{
    return prlimit_nofile(0);
}

static long call_pidfd_getfd(void)
{
    /* Our own fd 0: the kernel's ptrace test always passes for oneself. */
    child_step("pidfd_open");
    long pidfd = syscall(SYS_pidfd_open, getpid(), 0);
    if (pidfd < 0)
        return -1;
    child_step("");
    long r = closing(syscall(SYS_pidfd_getfd, pidfd, 0, 0));
    int err = errno;
    close((int)pidfd);
    errno = err;
    return r;
}

static long call_kcmp(void)
{
    return syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 0, 0);
}

static long call_getpid(void)
{
    return syscall(SYS_getpid);
}

static long call_modify_ldt(void)
{
#if defined(__x86_64__)
    char buf[16];
    return syscall(SYS_modify_ldt, 0 /* read */, buf, sizeof buf);
#else
    return not_x86_64();
#endif
}

static long call_syslog(void)
{
    return syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
}

static long call_quotactl(void)
{
    /* QCMD(Q_SYNC, USRQUOTA) with no device: syncs quota everywhere. */
    return syscall(SYS_quotactl, 0x800001 << 8, NULL, 0, NULL);
}

static long call_lookup_dcookie(void)
{
#if defined(__x86_64__)
    return syscall(SYS_lookup_dcookie, 0, NULL, 0);
#else
    return not_x86_64();
#endif
}

static long call_vhangup(void)
{
    /* Without a controlling terminal first, root would hang up ours. */
    child_step("setsid");
    if (setsid() < 0)
        return -1;
    child_step("");
    return syscall(SYS_vhangup);
}

static const struct raw_call {
    const char *name;
    long (*call)(void);     /* >= 0, or -1 with errno set */
} raw_calls[] = {
    { "ptrace",             call_ptrace },
    { "process_vm_readv",   call_process_vm_readv },
    { "process_vm_writev",  call_process_vm_writev },
    { "mount",              call_mount },
    { "umount2",            call_umount2 },
    { "fsopen",             call_fsopen },
    { "fsmount",            call_fsmount },
    { "fsconfig",           call_fsconfig },
    { "fspick",             call_fspick },
    { "open_tree",          call_open_tree },
    { "move_mount",         call_move_mount },
    { "mount_setattr",      call_mount_setattr },
    { "pivot_root",         call_pivot_root },
    { "chroot",             call_chroot },
    { "setns",              call_setns },
    { "bpf",                call_bpf },
    { "perf_event_open",    call_perf_event_open },
    { "userfaultfd",        call_userfaultfd },
    { "io_uring_setup",     call_io_uring_setup },
    { "io_uring_enter",     call_io_uring_enter },
    { "io_uring_register",  call_io_uring_register },
    { "keyctl",             call_keyctl },
    { "add_key",            call_add_key },
    { "request_key",        call_request_key },
    { "kexec_load",         call_kexec_load },
    { "kexec_file_load",    call_kexec_file_load },
    { "init_module",        call_init_module },
    { "finit_module",       call_finit_module },
    { "delete_module",      call_delete_module },
    { "reboot",             call_reboot },
    { "swapon",             call_swapon },
    { "swapoff",            call_swapoff },
    { "acct",               call_acct },
    { "settimeofday",       call_settimeofday },
    { "clock_settime",      call_clock_settime },
    { "adjtimex",           call_adjtimex },
    { "clock_adjtime",      call_clock_adjtime },
    { "iopl",               call_iopl },
    { "ioperm",             call_ioperm },
    { "personality",        call_personality },
    { "personality-query",  call_personality_query },
    { "clone-newuser",      call_clone_newuser },
    { "clone-newns",        call_clone_newns },
    { "clone-newnet",       call_clone_newnet },
    { "clone3",             call_clone3 },
    { "unshare-newuser",    call_unshare_newuser },
    { "unshare-newns",      call_unshare_newns },
    { "unshare-newtime",    call_unshare_newtime },
    { "unshare-files",      call_unshare_files },
    { "prlimit-init",       call_prlimit_init },
    { "prlimit-self",       call_prlimit_self },
    { "pidfd_getfd",        call_pidfd_getfd },
    { "kcmp",               call_kcmp },
    { "getpid",             call_getpid },
    { "modify_ldt",         call_modify_ldt },
    { "syslog",             call_syslog },
    { "quotactl",           call_quotactl },
    { "lookup_dcookie",     call_lookup_dcookie },
    { "vhangup",            call_vhangup },
};

#define RAW_CALL_COUNT (sizeof raw_calls / sizeof raw_calls[0])

static const struct raw_call *find_raw_call(const char *name)
{
    for (size_t i = 0; i < RAW_CALL_COUNT; i++)
        if (strcmp(raw_calls[i].name, name) == 0)
            return &raw_calls[i];
    return NULL;
}

static int errno_or_eio(void)
{
    return errno != 0 ? errno : EIO;
}

static int attempt_raw_call(const void *ctx)
{
    const struct raw_call *c = ctx;
    errno = 0;
    return c->call() >= 0 ? 0 : errno_or_eio();
}

static void check_syscall(const char *name)
{
    const struct raw_call *c = find_raw_call(name);
    if (c == NULL) {                /* main() validated it already */
        result_err(EINVAL);
        return;
    }
    run_in_child(attempt_raw_call, c);
}

struct socket_kind {
    const char *name;
    int family, type, protocol;
};

static const struct socket_kind socket_kinds[] = {
    { "unix",      AF_UNIX,      SOCK_DGRAM,     0 },
    { "inet",      AF_INET,      SOCK_DGRAM,     0 },
    { "inet6",     AF_INET6,     SOCK_DGRAM,     0 },
    { "netlink",   AF_NETLINK,   SOCK_RAW,       0 /* NETLINK_ROUTE */ },
    { "packet",    AF_PACKET,    SOCK_DGRAM,     0 },
    { "vsock",     AF_VSOCK,     SOCK_STREAM,    0 },
    { "alg",       AF_ALG,       SOCK_SEQPACKET, 0 },
    { "bluetooth", AF_BLUETOOTH, SOCK_DGRAM,     0 /* BTPROTO_L2CAP */ },
    { "key",       AF_KEY,       SOCK_RAW,       2 /* PF_KEY_V2 */ },
    { "xdp",       AF_XDP,       SOCK_RAW,       0 },
};

static const struct socket_kind socketpair_kinds[] = {
    { "unix",      AF_UNIX,      SOCK_STREAM,    0 },
    { "inet",      AF_INET,      SOCK_STREAM,    0 },
};

#define SOCKET_KIND_COUNT (sizeof socket_kinds / sizeof socket_kinds[0])
#define SOCKETPAIR_KIND_COUNT (sizeof socketpair_kinds / sizeof socketpair_kinds[0])

static const struct socket_kind *find_socket_kind(const struct socket_kind *kinds,
                                                  size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return &kinds[i];
    return NULL;
}

static int attempt_socket(const void *ctx)
{
    const struct socket_kind *k = ctx;
    errno = 0;
    return closing(syscall(SYS_socket, k->family, k->type, k->protocol)) >= 0
        ? 0 : errno_or_eio();
}

static int attempt_socketpair(const void *ctx)
{
    const struct socket_kind *k = ctx;
    int sv[2];
    errno = 0;
    if (syscall(SYS_socketpair, k->family, k->type, k->protocol, sv) != 0)
        return errno_or_eio();
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static void check_socket(const char *family)
{
    const struct socket_kind *k = find_socket_kind(socket_kinds, SOCKET_KIND_COUNT, family);
    if (k == NULL) {                /* main() validated it already */
        result_err(EINVAL);
        return;
    }
    run_in_child(attempt_socket, k);
}

static void check_socketpair(const char *family)
{
    const struct socket_kind *k = find_socket_kind(socketpair_kinds, SOCKETPAIR_KIND_COUNT, family);
    if (k == NULL) {                /* main() validated it already */
        result_err(EINVAL);
        return;
    }
    run_in_child(attempt_socketpair, k);
}

#if defined(__x86_64__)
/* getpid through the 32-bit entry point.  That path may zero r8-r11. */
static int attempt_int80(const void *ctx)
{
    (void)ctx;
    long r = 20;                    /* __NR_getpid on i386 */
    __asm__ volatile ("int $0x80"
                      : "+a"(r)
                      :
                      : "r8", "r9", "r10", "r11", "memory", "cc");
    int v = (int)r;                 /* the result is 32-bit */
    if (v > 0)
        return 0;
    return v < 0 && v >= -4095 ? -v : EIO;
}

static int attempt_x32(const void *ctx)
{
    (void)ctx;
    errno = 0;
    return syscall(0x40000000 /* __X32_SYSCALL_BIT */ | 39 /* getpid */) >= 0
        ? 0 : errno_or_eio();
}
#endif

static void check_int80(const char *arg)
{
    (void)arg;
#if defined(__x86_64__)
    run_in_child(attempt_int80, NULL);
#else
    result_err(ENOSYS);
    field_str("detail", "not x86_64");
#endif
}

static void check_x32(const char *arg)
{
    (void)arg;
#if defined(__x86_64__)
    run_in_child(attempt_x32, NULL);
#else
    result_err(ENOSYS);
    field_str("detail", "not x86_64");
#endif
}

enum tty_request { TTY_TIOCSTI, TTY_TIOCSTI_HIGH, TTY_TIOCLINUX };

/* In a new session, makes a fresh pty the controlling terminal (the kernel
 * refuses TIOCSTI and TIOCLINUX on other terminals without CAP_SYS_ADMIN),
 * then tries the request on it.  A setup failure leaves its step set. */
static int attempt_tty(const void *ctx)
{
    enum tty_request request = *(const enum tty_request *)ctx;

    /* Closing the master hangs up our controlling terminal, and the SIGHUP
     * that follows must not be mistaken for a filter's kill. */
    signal(SIGHUP, SIG_IGN);
    child_step("setsid");
    if (setsid() < 0)
        return errno_or_eio();
    child_step("open /dev/ptmx");
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        return errno_or_eio();
    child_step("unlockpt");
    if (unlockpt(master) != 0)
        return errno_or_eio();
    child_step("open pty");
    int pty = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (pty < 0 && (errno == EINVAL || errno == ENOTTY)) {
        /* Before Linux 4.13: by name. */
        char name[64];
        if (ptsname_r(master, name, sizeof name) != 0)
            return errno_or_eio();
        pty = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    }
    if (pty < 0)
        return errno_or_eio();
    child_step("TIOCSCTTY");
    if (ioctl(pty, TIOCSCTTY, 0) != 0)
        return errno_or_eio();
    child_step("");

    char c = 'x';
    char subcode[2] = { 6 /* TIOCL_GETSHIFTSTATE */, 0 };
    long r;
    errno = 0;
    switch (request) {
    case TTY_TIOCSTI:
        r = syscall(SYS_ioctl, pty, TIOCSTI, &c);
        break;
    case TTY_TIOCSTI_HIGH:
        /* The kernel takes the command as 32 bits, so this is TIOCSTI to it,
         * but a filter comparing all 64 bits sees another number.  (Where
         * long is 32 bits the cast drops the high bit again.) */
        r = syscall(SYS_ioctl, pty, (unsigned long)(TIOCSTI | (1ULL << 32)), &c);
        break;
    default:
        r = syscall(SYS_ioctl, pty, TIOCLINUX, subcode);
        break;
    }
    if (r < 0)
        return errno_or_eio();

    if (request != TTY_TIOCLINUX && child_note != NULL) {
        /* An injected byte is input on the pty side; with ECHO (the default)
         * the line discipline copies it out to the master. */
        char echo[64];
        ssize_t n = 0;
        if (wait_fd(master, POLLIN, NET_TIMEOUT_MS) == 1)
            n = read(master, echo, sizeof echo);
        child_note->injected = n > 0 && memchr(echo, 'x', (size_t)n) != NULL;
    }
    close(pty);
    close(master);
    return 0;
}

static void run_tty(enum tty_request request)
{
    run_in_child(attempt_tty, &request);
}

static void check_tiocsti(const char *arg)
{
    (void)arg;
    run_tty(TTY_TIOCSTI);
}

static void check_tiocsti_high(const char *arg)
{
    (void)arg;
    run_tty(TTY_TIOCSTI_HIGH);
}

static void check_tioclinux(const char *arg)
{
    (void)arg;
    run_tty(TTY_TIOCLINUX);
}

/* ------------------------------------------------------------------------ */
/* Check table and argument validation                                       */
/* ------------------------------------------------------------------------ */

enum arg_kind {
    ARG_NONE,       /* no "=ARG" allowed */
    ARG_TEXT,       /* any non-empty string (paths, variable names) */
    ARG_SOCKPATH,   /* fits in sun_path with its NUL */
    ARG_ABSTRACT,   /* fits in sun_path after the leading NUL */
    ARG_PID,
    ARG_KEY,
    ARG_INET,
    ARG_SECONDS,
    ARG_STATUS,     /* 0..255 */
    ARG_SIGNAL,     /* 1..SIGRTMAX */
    ARG_SYSCALL,    /* a name in raw_calls */
    ARG_SOCKET,     /* a name in socket_kinds */
    ARG_SOCKETPAIR, /* a name in socketpair_kinds */
    ARG_DNS,        /* SERVER:PORT,NAME (parse_dns_arg) */
    ARG_PROXY_CONNECT, /* PROXY,HOST:PORT[,SNI] (parse_proxy_arg) */
    ARG_PROXY_GET,  /* PROXY,URL[,HOSTHEADER] (parse_proxy_arg) */
};

struct check {
    const char *name;
    enum arg_kind kind;
    const char *arg_help;
    void (*run)(const char *arg);
};

static const struct check checks[] = {
    { "identity",      ARG_NONE,     NULL,        check_identity },
    { "pids",          ARG_NONE,     NULL,        check_pids },
    { "fds",           ARG_NONE,     NULL,        check_fds },
    { "read",          ARG_TEXT,     "PATH",      check_read },
    { "exists",        ARG_TEXT,     "PATH",      check_exists },
    { "write",         ARG_TEXT,     "PATH",      check_write },
    { "keep",          ARG_TEXT,     "PATH",      check_keep },
    { "rewrite",       ARG_TEXT,     "PATH",      check_rewrite },
    { "mount",         ARG_TEXT,     "DIR",       check_mount },
    { "unshare-user",  ARG_NONE,     NULL,        check_unshare_user },
    { "unshare-mount", ARG_NONE,     NULL,        check_unshare_mount },
    { "unshare-net",   ARG_NONE,     NULL,        check_unshare_net },
    { "pivot-root",    ARG_NONE,     NULL,        check_pivot_root },
    { "ptrace",        ARG_PID,      "PID",       check_ptrace },
    { "kill",          ARG_PID,      "PID",       check_kill },
    { "signal0",       ARG_PID,      "PID",       check_signal0 },
    { "unix",          ARG_SOCKPATH, "PATH",      check_unix },
    { "abstract",      ARG_ABSTRACT, "NAME",      check_abstract },
    { "tcp",           ARG_INET,     "HOST:PORT", check_tcp },
    { "udp",           ARG_INET,     "HOST:PORT", check_udp },
    { "interfaces",    ARG_NONE,     NULL,        check_interfaces },
    { "resolve",       ARG_TEXT,     "NAME",      check_resolve },
    { "dns",           ARG_DNS,      "SERVER:PORT,NAME", check_dns },
    { "proxy-connect", ARG_PROXY_CONNECT, "PROXY,HOST:PORT[,SNI]", check_proxy_connect },
    { "proxy-get",     ARG_PROXY_GET, "PROXY,URL[,HOSTHEADER]", check_proxy_get },
    { "sethostname",   ARG_NONE,     NULL,        check_sethostname },
    { "session-keys",  ARG_NONE,     NULL,        check_session_keys },
    { "sysv-msg",      ARG_KEY,      "KEY",       check_sysv_msg },
    { "sysv-shm",      ARG_KEY,      "KEY",       check_sysv_shm },
    { "sysv-sem",      ARG_KEY,      "KEY",       check_sysv_sem },
    { "setuid0",       ARG_NONE,     NULL,        check_setuid0 },
    { "sleep",         ARG_SECONDS,  "SECONDS",   check_sleep },
    { "exit",          ARG_STATUS,   "N",         check_exit },
    { "signal",        ARG_SIGNAL,   "N",         check_signal },
    { "echo-env",      ARG_TEXT,     "NAME",      check_echo_env },
    { "env",           ARG_NONE,     NULL,        check_env },
    { "stdin",         ARG_NONE,     NULL,        check_stdin },
    { "syscall",       ARG_SYSCALL,  "NAME",      check_syscall },
    { "socket",        ARG_SOCKET,   "FAMILY",    check_socket },
    { "socketpair",    ARG_SOCKETPAIR, "FAMILY",  check_socketpair },
    { "int80",         ARG_NONE,     NULL,        check_int80 },
    { "x32",           ARG_NONE,     NULL,        check_x32 },
    { "tiocsti",       ARG_NONE,     NULL,        check_tiocsti },
    { "tiocsti-high",  ARG_NONE,     NULL,        check_tiocsti_high },
    { "tioclinux",     ARG_NONE,     NULL,        check_tioclinux },
};

#define CHECK_COUNT (sizeof checks / sizeof checks[0])

static bool arg_is_valid(enum arg_kind kind, const char *arg)
{
    struct sockaddr_storage ss;
    socklen_t len;
    pid_t pid;
    key_t key;
    double seconds;
    long v;
    struct dns_arg dns;
    struct proxy_arg proxy;

    switch (kind) {
    case ARG_NONE:     return arg == NULL;
    case ARG_TEXT:     return arg != NULL && *arg != '\0';
    case ARG_SOCKPATH: return arg != NULL && *arg != '\0' &&
                              strlen(arg) < sizeof ((struct sockaddr_un *)0)->sun_path;
    case ARG_ABSTRACT: return arg != NULL && *arg != '\0' &&
                              strlen(arg) < sizeof ((struct sockaddr_un *)0)->sun_path;
    case ARG_PID:      return arg != NULL && parse_pid(arg, &pid);
    case ARG_KEY:      return arg != NULL && parse_key(arg, &key);
    case ARG_INET:     return arg != NULL && parse_inet(arg, &ss, &len);
    case ARG_SECONDS:  return arg != NULL && parse_seconds(arg, &seconds);
    case ARG_STATUS:   return arg != NULL && parse_long(arg, 10, 0, 255, &v);
    case ARG_SIGNAL:   return arg != NULL && parse_long(arg, 10, 1, SIGRTMAX, &v);
    case ARG_SYSCALL:  return arg != NULL && find_raw_call(arg) != NULL;
    case ARG_SOCKET:   return arg != NULL &&
                              find_socket_kind(socket_kinds, SOCKET_KIND_COUNT, arg) != NULL;
    case ARG_SOCKETPAIR: return arg != NULL &&
                              find_socket_kind(socketpair_kinds, SOCKETPAIR_KIND_COUNT, arg) != NULL;
    case ARG_DNS:      return arg != NULL && parse_dns_arg(arg, &dns);
    case ARG_PROXY_CONNECT: return arg != NULL && parse_proxy_arg(arg, false, &proxy);
    case ARG_PROXY_GET: return arg != NULL && parse_proxy_arg(arg, true, &proxy);
    }
    return false;
}

/* For a usage error: the valid values of an ARG taken from a fixed list. */
static void print_choices(enum arg_kind kind, const char *arg_help, FILE *to)
{
    size_t count = 0;
    switch (kind) {
    case ARG_SYSCALL:    count = RAW_CALL_COUNT; break;
    case ARG_SOCKET:     count = SOCKET_KIND_COUNT; break;
    case ARG_SOCKETPAIR: count = SOCKETPAIR_KIND_COUNT; break;
    default:             return;
    }
    fprintf(to, "otk-probe: %s is one of:", arg_help);
    for (size_t i = 0; i < count; i++)
        fprintf(to, " %s", kind == ARG_SYSCALL ? raw_calls[i].name :
                           kind == ARG_SOCKET ? socket_kinds[i].name :
                           socketpair_kinds[i].name);
    fputc('\n', to);
}

static void usage(FILE *to)
{
    fputs("usage: otk-probe CHECK[=ARG] ...\nchecks:", to);
    for (size_t i = 0; i < CHECK_COUNT; i++)
        fprintf(to, " %s%s%s", checks[i].name,
                checks[i].arg_help ? "=" : "",
                checks[i].arg_help ? checks[i].arg_help : "");
    fputc('\n', to);
}

static const struct check *find_check(const char *name, size_t len)
{
    for (size_t i = 0; i < CHECK_COUNT; i++)
        if (strlen(checks[i].name) == len && strncmp(checks[i].name, name, len) == 0)
            return &checks[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }

    /* Validate everything first, so a typo never yields partial results. */
    const struct check **plan = calloc((size_t)argc, sizeof *plan);
    const char **args = calloc((size_t)argc, sizeof *args);
    if (plan == NULL || args == NULL) {
        fputs("otk-probe: out of memory\n", stderr);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t name_len = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        const struct check *c = find_check(argv[i], name_len);
        if (c == NULL) {
            fprintf(stderr, "otk-probe: unknown check '%.*s'\n", (int)name_len, argv[i]);
            usage(stderr);
            return 2;
        }
        const char *arg = eq ? eq + 1 : NULL;
        if (!arg_is_valid(c->kind, arg)) {
            if (c->kind == ARG_NONE)
                fprintf(stderr, "otk-probe: check '%s' takes no argument\n", c->name);
            else
                fprintf(stderr, "otk-probe: check '%s' needs a valid %s, got '%s'\n",
                        c->name, c->arg_help, arg ? arg : "");
            print_choices(c->kind, c->arg_help, stderr);
            return 2;
        }
        plan[i] = c;
        args[i] = arg;
    }

    for (int i = 1; i < argc; i++) {
        const char *arg = args[i] ? args[i] : "";
        line_begin(plan[i]->name, arg);
        plan[i]->run(arg);
        line_end();
    }
    free(plan);
    free(args);
    return 0;
}
