import Foundation
import OTKModel

/// Turns a launcher failure record into an error that names the layer, the reason and the remedy.
public enum Diagnosis {
    public static func explain(_ record: LauncherRecord, command: String, host: HostFacts) -> OTKError {
        let reason = record.errno != 0 ? String(cString: strerror(record.errno)) : "failed"
        let detail = record.detail.isEmpty ? "" : "\(record.detail): "
        func isolation(_ layer: String, _ remedy: String) -> OTKError {
            OTKError(.isolationUnavailable, "\(layer) unavailable: \(detail)\(reason)", remedy: remedy, step: record.step, errno: record.errno)
        }
        switch (record.step, record.errno) {
        case ("clone3", EPERM), ("clone3", ENOSPC), ("clone3", EUSERS), ("clone3", EINVAL), ("clone3", EACCES):
            return isolation("namespaces", host.userNamespaceRemedy)
        case ("clone3-cgroup", _):
            return isolation("namespaces or the cgroup v2 placement",
                             "clone3 creates the namespaces inside the run's cgroup (CLONE_INTO_CGROUP, Linux 5.7+); `otk doctor` shows whether namespaces work. If they do, the cgroup refused: an unprivileged otk needs write access to it and to the cgroup.procs of the cgroup above both (run it in a delegated cgroup: docs/limits.md)")
        case ("clone3", ENOSYS):
            return isolation("namespaces", "the kernel has no clone3 (Linux 5.3 or newer is needed)")
        case ("setgroups", _), ("uid_map", _), ("gid_map", _):
            return isolation("user namespace id mapping",
                             "the sandbox user is mapped to an unprivileged host id; run otk as root or as the user who owns the workspace")
        case ("proc", EPERM), ("proc", EACCES):
            return isolation("private /proc",
                             "the kernel refuses a new /proc when the host's is partly hidden, as inside most containers: run otk on the host, or use a profile with filesystem.proc = false")
        case ("deny-userns", _):
            return isolation("nested user namespace lock", "the kernel did not accept user.max_user_namespaces = 0 inside the sandbox")
        case ("mount-private", _), ("mount-base", _), ("mount-root", _), ("pivot_root", _), ("detach-oldroot", _):
            return isolation("private root", "the kernel refused a mount in a new user namespace; `otk doctor` shows which layers work")
        case ("landlock", _), ("landlock-restrict", _), ("landlock-port", _):
            return isolation("landlock", "the kernel would not build or enforce the ruleset; `otk doctor` shows its Landlock ABI, or use a profile with `[landlock] enforce = \"best_effort\"`")
        case ("landlock-path", ELOOP):
            return OTKError(.setupFailed, "landlock: a path of the ruleset is a symlink inside the sandbox: \(detail)\(reason)",
                            remedy: "rules are never placed through symlinks (the workspace's content is the command's side); nothing ran",
                            step: record.step, errno: record.errno)
        case ("seccomp", _), ("seccomp-read", _):
            return isolation("seccomp", "the kernel refused the filter otk compiled; `otk doctor` shows whether this kernel filters system calls")
        case ("execve", ENOENT), ("execve", ENOTDIR):
            return OTKError(.commandNotFound, "command `\(command)` not found in the sandbox: \(record.detail)",
                            remedy: "the sandbox sees only the profile's paths; use an absolute path, or bind the program's directory with --ro-bind",
                            step: record.step, errno: record.errno)
        case ("execve", _):
            return OTKError(.commandNotExecutable, "cannot execute `\(command)` in the sandbox: \(detail)\(reason)",
                            remedy: record.errno == EACCES ? "is it executable, readable by the sandbox's user, and inside a path the Landlock ruleset lets it read?"
                                : record.errno == EPERM ? "the profile's seccomp filter must allow execve" : nil,
                            step: record.step, errno: record.errno)
        case ("bind", _):
            return OTKError(.setupFailed, "sandbox setup failed at `bind`: \(detail)\(reason)",
                            remedy: record.errno == ELOOP ? "a host path became a symlink after otk checked it; nothing ran" : "check the path; nothing ran",
                            step: record.step, errno: record.errno)
        case ("spec", _):
            return OTKError(.internalError, "otk-launcher rejected the launch spec: \(detail)\(reason)",
                            remedy: "this is a bug in otk: please report it", step: record.step, errno: record.errno)
        default:
            return OTKError(.setupFailed, "sandbox setup failed at `\(record.step)`: \(detail)\(reason)",
                            remedy: "nothing ran; `otk doctor` shows which layers this host supports", step: record.step, errno: record.errno)
        }
    }
}
