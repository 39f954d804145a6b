// Thin C shims for the few calls Swift cannot make directly (variadic syscall(2),
// posix_spawn attribute setup). No policy lives here.
#ifndef COTK_SYSTEM_H
#define COTK_SYSTEM_H
#include <sys/types.h>

/// memfd_create(name, MFD_CLOEXEC); -1 with errno on failure.
int cotk_memfd(const char *name);

/// pipe2(fds, O_CLOEXEC).
int cotk_pipe_cloexec(int fds[2]);

/// Duplicates fd to the lowest free fd >= minimum, close-on-exec.
int cotk_dup_cloexec(int fd, int minimum);

/// posix_spawn(path) with an empty signal mask and every signal at its default
/// disposition (a child of a Dispatch thread would otherwise inherit blocked
/// SIGINT/SIGTERM), after dup2-ing `inherit[i]` onto fd 3+i (these copies are not
/// close-on-exec), in a process group of its own. With `null_stdin`, fd 0 is /dev/null;
/// `outputs[i]` >= 0 (i = 0 for fd 1, 1 for fd 2) is dup2-ed onto that fd instead of otk's.
/// Returns 0 or an errno value.
int cotk_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
               const int *inherit, int n_inherit, int null_stdin, const int outputs[2]);

/// The Landlock ABI version the kernel offers, or -errno (e.g. -ENOSYS, -EOPNOTSUPP).
long cotk_landlock_abi(void);

/// The kernel's seccomp mode of this process from prctl(PR_GET_SECCOMP), or -errno.
int cotk_seccomp_mode(void);

#endif
