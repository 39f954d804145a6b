#define _GNU_SOURCE
#include "cotk_system.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int cotk_memfd(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int cotk_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int cotk_dup_cloexec(int fd, int minimum) { return fcntl(fd, F_DUPFD_CLOEXEC, minimum); }

int cotk_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
               const int *inherit, int n_inherit, int null_stdin, const int outputs[2]) {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t actions;
    sigset_t none, all;
    int rc;
    sigemptyset(&none);
    sigfillset(&all);
    if ((rc = posix_spawnattr_init(&attr)) != 0) return rc;
    if ((rc = posix_spawn_file_actions_init(&actions)) != 0) {
        posix_spawnattr_destroy(&attr);
        return rc;
    }
    rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    /* Its own process group: a terminal's Ctrl-C reaches otk only, which forwards it once. */
    if (!rc) rc = posix_spawnattr_setpgroup(&attr, 0);
    if (!rc) rc = posix_spawnattr_setsigmask(&attr, &none);
    if (!rc) rc = posix_spawnattr_setsigdefault(&attr, &all);
    for (int i = 0; !rc && i < n_inherit; i++)
        rc = posix_spawn_file_actions_adddup2(&actions, inherit[i], 3 + i);
    if (!rc && null_stdin) rc = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    for (int i = 0; !rc && i < 2; i++)
        if (outputs && outputs[i] >= 0) rc = posix_spawn_file_actions_adddup2(&actions, outputs[i], 1 + i);
    if (!rc) rc = posix_spawn(pid, path, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc;
}

long cotk_landlock_abi(void) {
#ifdef SYS_landlock_create_ruleset
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, 1u /* LANDLOCK_CREATE_RULESET_VERSION */);
    return v < 0 ? -errno : v;
#else
    return -ENOSYS;
#endif
}

int cotk_seccomp_mode(void) {
    int v = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
    return v < 0 ? -errno : v;
}
