import COTKSystem
import Dispatch
import Foundation
import OTKConfig
import OTKModel

/// How a sandboxed command ended.
public struct SandboxOutcome: Sendable {
    /// The command's exit code, when it exited.
    public var exitCode: Int32?
    /// The signal that ended it, when one did.
    public var signal: Int32?
    /// Wall-clock time from spawning the launcher to reaping it.
    public var durationNanoseconds: UInt64
    /// The setup failure, when the command never ran.
    public var failure: LauncherRecord?
    /// The wall-clock limit ended the run.
    public var timedOut = false
    /// CPU time of the launcher and everything it (and the sandbox's init) waited for, in microseconds,
    /// and the largest resident set of any one of those processes.
    public var userMicroseconds: UInt64 = 0
    public var systemMicroseconds: UInt64 = 0
    public var maxResidentBytes: UInt64 = 0
    /// What otk relayed of stdout and stderr, when it relayed them.
    public var output: [OutputReport] = []


    /// The status a shell would report: the exit code, or 128 + the signal.
    public var shellStatus: Int32 {
        if let exitCode { return exitCode }
        if let signal { return 128 + signal }
        return 127
    }
}


/// How much of the command's stdout and stderr otk shows and keeps.
public struct OutputOptions: Sendable {
    /// Bytes of each stream relayed (and logged); the rest is counted and dropped, after a marker.
    public var cap: UInt64?
    /// A directory for `stdout.log` and `stderr.log`.
    public var logDirectory: String?

    public init(cap: UInt64?, logDirectory: String?) {
        self.cap = cap
        self.logDirectory = logDirectory
    }

    var relaysEverything: Bool { cap != nil || logDirectory != nil }
}

public struct OutputReport: Sendable, Codable, Equatable {
    public var stream: String
    public var bytes: UInt64
    public var discardedBytes: UInt64
    public var log: String?

    enum CodingKeys: String, CodingKey {
        case stream, bytes, log
        case discardedBytes = "discarded_bytes"
    }
}

/// Spawns otk-launcher for one launch spec and waits for it. The supervisor never
/// forks: all process creation below posix_spawn happens in the single-threaded launcher.
public struct Supervisor: Sendable {
    /// Path of the otk-launcher executable.
    public var launcherPath: String

    public init(launcherPath: String) {
        self.launcherPath = launcherPath
    }

    /// otk-launcher next to the running executable, or $OTK_LAUNCHER.
    public static func defaultLauncherPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let path = environment["OTK_LAUNCHER"], !path.isEmpty { return path }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("otk-launcher").path
    }

    /// The signals otk passes on to the sandbox instead of dying of them.
    static let forwardedSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]

    /// Runs the launch. With `withholdTerminal`, the command never holds otk's terminal: a
    /// terminal stdin becomes /dev/null, and a terminal stdout or stderr becomes a pipe that otk
    /// copies to the terminal. The command runs in a session of its own, where job control
    /// cannot stop it, and any terminal fd (even one opened write-only, which it could reopen
    /// read-write through /proc/self/fd) would let it read what the operator types.
    public func run(_ spec: LaunchSpec, withholdTerminal: Bool = false, output: OutputOptions = OutputOptions(cap: nil, logDirectory: nil)) throws(OTKError) -> SandboxOutcome {
        guard access(launcherPath, X_OK) == 0 else {
            throw OTKError(.internalError, "otk-launcher not found at `\(launcherPath)`",
                           remedy: "build the package (swift build) or set OTK_LAUNCHER to its path")
        }
        // The logs first, before anything needs undoing: a FIFO or worse in their place is refused here.
        var logs: [(stream: String, fd: Int32, path: String)] = []
        if let dir = output.logDirectory {
            for name in ["stdout", "stderr"] {
                let path = dir + "/" + name + ".log"
                // Non-blocking, so that a FIFO planted there cannot hang otk; then it must be a regular file.
                let logFD = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o644)
                var st = stat()
                guard logFD >= 0, fstat(logFD, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, ftruncate(logFD, 0) == 0 else {
                    let reason = logFD < 0 ? String(cString: strerror(Glibc.errno)) : "not a regular file"
                    if logFD >= 0 { close(logFD) }
                    for log in logs { close(log.fd) }
                    throw OTKError(.badInput, "cannot use the log `\(path)`: \(reason)")
                }
                _ = fcntl(logFD, F_SETFL, fcntl(logFD, F_GETFL) & ~O_NONBLOCK)
                logs.append((name, logFD, path))
            }
        }
        var relays: [OutputRelay] = []
        // A cap or a log means every byte passes through otk; otherwise only a terminal is relayed.
        for fd: Int32 in [1, 2] where output.relaysEverything || (withholdTerminal && isatty(fd) == 1) {
            let name = fd == 1 ? "stdout" : "stderr"
            let log = logs.first { $0.stream == name }.map { (fd: $0.fd, path: $0.path) }
            guard let relay = OutputRelay(to: fd, name: name, cap: output.cap, log: log) else {
                throw Self.systemError("pipe2 for the output relay", Glibc.errno)
            }
            relays.append(relay)
        }
        let outputs: [Int32] = [1, 2].map { fd in relays.first { $0.target == fd }?.writeEnd ?? -1 }
        defer { for relay in relays { relay.finish() } }
        let bytes = try spec.encoded()
        let specFD = cotk_memfd("otk-spec")
        guard specFD >= 0 else { throw Self.systemError("memfd_create", Glibc.errno) }
        defer { close(specFD) }
        let written = bytes.withUnsafeBytes { write(specFD, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw Self.systemError("write launch spec", Glibc.errno) }

        // The compiled seccomp programs travel on a memfd of their own (binary, unlike the spec).
        var seccompFD: Int32 = -1
        if spec.operations.contains(.seccomp) {
            guard let program = spec.seccompProgram, !program.isEmpty else {
                throw OTKError(.internalError, "the launch asks for a seccomp filter but none was compiled")
            }
            seccompFD = cotk_memfd("otk-seccomp")
            guard seccompFD >= 0 else { throw Self.systemError("memfd_create", Glibc.errno) }
            let n = program.withUnsafeBytes { write(seccompFD, $0.baseAddress, $0.count) }
            guard n == program.count else { close(seccompFD); throw Self.systemError("write seccomp program", Glibc.errno) }
        }
        defer { if seccompFD >= 0 { close(seccompFD) } }

        var status: [Int32] = [-1, -1]
        var lifeline: [Int32] = [-1, -1]
        guard cotk_pipe_cloexec(&status) == 0, cotk_pipe_cloexec(&lifeline) == 0 else {
            throw Self.systemError("pipe2", Glibc.errno)
        }
        // Moved above 10 first so that placing them on fds 3, 4, 5 cannot overwrite one another.
        var childFDs = ([specFD, status[1], lifeline[0]] + (seccompFD >= 0 ? [seccompFD] : [])).map { cotk_dup_cloexec($0, 10) }
        defer {
            for fd in childFDs where fd >= 0 { close(fd) }
            close(status[0]); close(lifeline[1])
        }
        close(status[1]); close(lifeline[0])
        guard !childFDs.contains(where: { $0 < 0 }) else { throw Self.systemError("dup", Glibc.errno) }

        // Forward termination signals to the launcher; it passes them to the sandbox's init.
        let sources = Self.forwardedSignals.map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            return DispatchSource.makeSignalSource(signal: sig, queue: .global())
        }
        defer {
            for (source, sig) in zip(sources, Self.forwardedSignals) {
                source.cancel()
                signal(sig, SIG_DFL)
            }
        }

        // Saved before the command can run: it shares the terminal and may change its modes.
        let terminal = TerminalState.save()
        defer { terminal.restore() }
        let nullStdin = withholdTerminal && isatty(0) == 1

        let start = DispatchTime.now().uptimeNanoseconds
        var pid: pid_t = 0
        let argv = [launcherPath, "3", "4", "5"] + (seccompFD >= 0 ? ["6"] : [])
        let rc = Self.withCStrings(argv) { cargv in
            var envp: [UnsafeMutablePointer<CChar>?] = [nil]
            return childFDs.withUnsafeBufferPointer { fds in
                outputs.withUnsafeBufferPointer { out in
                    cotk_spawn(&pid, launcherPath, cargv, &envp, fds.baseAddress, Int32(fds.count), nullStdin ? 1 : 0, out.baseAddress)
                }
            }
        }
        guard rc == 0 else { throw Self.systemError("posix_spawn \(launcherPath)", rc) }
        for source in sources {
            let launcher = pid
            let sig = Int32(source.handle)
            source.setEventHandler { kill(launcher, sig) }
            source.resume()
        }
        // Job control: Ctrl-Z stops the command (init turns it into SIGSTOP), then otk itself, so
        // the shell sees a stopped job; `fg`/`bg` continue otk, which continues the command.
        let jobControl = JobControl(launcher: pid)
        defer { jobControl.stop() }
        for relay in relays { relay.start() }
        // Our copies of the child's ends go now, or the status pipe would never reach EOF.
        for index in childFDs.indices {
            close(childFDs[index])
            childFDs[index] = -1
        }

        let records = Self.readAll(status[0])
        var waitStatus: Int32 = 0
        var usage = rusage()
        while wait4(pid, &waitStatus, 0, &usage) < 0 && Glibc.errno == EINTR {}
        // The launcher is reaped: from here its pid may be reused, so nothing more is sent to it,
        // and otk's own signals act as usual again.
        for (source, sig) in zip(sources, Self.forwardedSignals) {
            source.cancel()
            signal(sig, SIG_DFL)
        }
        jobControl.stop()
        // Everything the command wrote reaches the terminal before otk reports.
        for relay in relays { relay.finish() }
        let duration = DispatchTime.now().uptimeNanoseconds - start

        guard let decoded = LauncherRecord.decodeAll(records) else {
            throw OTKError(.internalError, "otk-launcher wrote a malformed status record (\(records.count) bytes)")
        }
        if let failure = decoded.first(where: { $0.kind == .failure }) {
            return SandboxOutcome(exitCode: nil, signal: nil, durationNanoseconds: duration, failure: failure)
        }
        if let exit = decoded.first(where: { $0.kind == .exit || $0.kind == .timeout }) {
            let ws = exit.value
            let signaled = (ws & 0x7f) != 0 && (ws & 0x7f) != 0x7f
            var outcome = SandboxOutcome(exitCode: signaled ? nil : (ws >> 8) & 0xff, signal: signaled ? ws & 0x7f : nil,
                                         durationNanoseconds: duration, failure: nil)
            outcome.timedOut = exit.kind == .timeout
            outcome.userMicroseconds = UInt64(usage.ru_utime.tv_sec) * 1_000_000 + UInt64(usage.ru_utime.tv_usec)
            outcome.systemMicroseconds = UInt64(usage.ru_stime.tv_sec) * 1_000_000 + UInt64(usage.ru_stime.tv_usec)
            outcome.maxResidentBytes = UInt64(usage.ru_maxrss) * 1024
            outcome.output = relays.map(\.report)
            return outcome
        }
        // No report at all: the launcher or init was killed from outside.
        let launcherSignal = (waitStatus & 0x7f)
        let how = launcherSignal != 0 ? "killed by signal \(launcherSignal)" : "exited with \((waitStatus >> 8) & 0xff)"
        // Not "nothing ran": the command may have run. Not a setup failure either.
        throw OTKError(.internalError, "the sandbox ended without reporting how its command ended (otk-launcher \(how))",
                       remedy: "killed from outside (e.g. by the OOM killer), or, under a profile without seccomp, by the command changing the limits of the sandbox's init; the command may have run in part")
    }

    /// Forwards SIGTSTP and SIGCONT between the terminal's job control and the sandbox.
    final class JobControl: @unchecked Sendable {
        private let sources: [DispatchSourceSignal]

        init(launcher: pid_t) {
            signal(SIGTSTP, SIG_IGN)
            let tstp = DispatchSource.makeSignalSource(signal: SIGTSTP, queue: .global())
            tstp.setEventHandler {
                kill(launcher, SIGTSTP)
                raise(SIGSTOP)
            }
            // SIGCONT keeps its default action (continue) and is also reported here.
            let cont = DispatchSource.makeSignalSource(signal: SIGCONT, queue: .global())
            cont.setEventHandler { kill(launcher, SIGCONT) }
            sources = [tstp, cont]
            for s in sources { s.resume() }
        }

        private var stopped = false

        func stop() {
            guard !stopped else { return }
            stopped = true
            for s in sources { s.cancel() }
            signal(SIGTSTP, SIG_DFL)
        }
    }

    /// The modes and file status flags of otk's terminal fds, put back after the command,
    /// which shares them and could leave e.g. echo off or O_NONBLOCK set, and the tty state
    /// beyond termios an interactive command could change: exclusive mode (TIOCEXCL, which
    /// makes later opens fail) and suspended output (TCOOFF). The line discipline cannot be
    /// changed: the seccomp filter denies TIOCSETD.
    struct TerminalState {
        var saved: [(fd: Int32, modes: termios, flags: Int32, exclusive: Int32)]

        static let tiocgexcl: UInt = 0x8004_5440
        static let tiocexcl: UInt = 0x540C
        static let tiocnxcl: UInt = 0x540D

        static func save() -> TerminalState {
            var saved: [(Int32, termios, Int32, Int32)] = []
            for fd: Int32 in 0...2 where isatty(fd) == 1 {
                var modes = termios()
                var exclusive: Int32 = 0
                if ioctl(fd, tiocgexcl, &exclusive) != 0 { exclusive = -1 }
                if tcgetattr(fd, &modes) == 0 { saved.append((fd, modes, fcntl(fd, F_GETFL), exclusive)) }
            }
            return TerminalState(saved: saved)
        }

        /// Only while otk is the terminal's foreground job (or the terminal is not otk's
        /// controlling one, so there are no jobs): from the background, the modes would land
        /// on whatever program the operator is using now (a password prompt, say).
        func restore() {
            for (fd, modes, flags, exclusive) in saved {
                let foreground = tcgetpgrp(fd)
                guard foreground == getpgrp() || foreground < 0 else { continue }
                var m = modes
                tcsetattr(fd, TCSANOW, &m)
                if flags >= 0 { _ = fcntl(fd, F_SETFL, flags) }
                if exclusive >= 0 { _ = ioctl(fd, exclusive != 0 ? Self.tiocexcl : Self.tiocnxcl) }
                _ = tcflow(fd, TCOON)
            }
        }
    }

    /// A pipe standing in for one of otk's terminal fds: the command writes into it, a thread
    /// of otk copies to the terminal. It stops at EOF, or when `finish()` is called once the
    /// launcher is reaped: then it copies what is buffered and ends, without waiting for an EOF
    /// that a command can postpone forever (a write end left in flight on a unix socket).
    final class OutputRelay: @unchecked Sendable {
        let target: Int32
        private(set) var writeEnd: Int32
        private let readEnd: Int32
        private let stopRead: Int32, stopWrite: Int32
        private let done = DispatchSemaphore(value: 0)
        private var started = false, finished = false
        let name: String
        let cap: UInt64?
        let log: (fd: Int32, path: String)?
        /// Written by the copying thread, read after `finish()` (which waits for it).
        private var copied: UInt64 = 0, discarded: UInt64 = 0

        var report: OutputReport { OutputReport(stream: name, bytes: copied, discardedBytes: discarded, log: log?.path) }

        init?(to target: Int32, name: String = "", cap: UInt64? = nil, log: (fd: Int32, path: String)? = nil) {
            self.name = name
            self.cap = cap
            self.log = log
            var data: [Int32] = [-1, -1], stop: [Int32] = [-1, -1]
            guard cotk_pipe_cloexec(&data) == 0 else { return nil }
            guard cotk_pipe_cloexec(&stop) == 0 else { close(data[0]); close(data[1]); return nil }
            self.target = target
            readEnd = data[0]
            // Above 10, like the launcher's fds: posix_spawn places those on 3-6 first, and a write end
            // sitting on one of those numbers would be overwritten before it is placed on fd 1 or 2.
            writeEnd = cotk_dup_cloexec(data[1], 10)
            close(data[1])
            guard writeEnd >= 0 else { close(data[0]); close(stop[0]); close(stop[1]); return nil }
            stopRead = stop[0]
            stopWrite = stop[1]
            _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
        }

        /// Starts copying; our copy of the write end goes, so EOF comes when every writer is gone.
        func start() {
            close(writeEnd)
            writeEnd = -1
            started = true
            let (source, stop, target, done) = (readEnd, stopRead, target, done)
            Thread {
                var buffer = [UInt8](repeating: 0, count: 65536)
                var stopping = false
                loop: while true {
                    var fds = [pollfd(fd: source, events: Int16(POLLIN), revents: 0), pollfd(fd: stop, events: Int16(POLLIN), revents: 0)]
                    if !stopping && poll(&fds, 2, -1) < 0 && Glibc.errno != EINTR { break }
                    if fds[1].revents != 0 { stopping = true }
                    // Copy whatever is there; when stopping, until nothing is left.
                    while true {
                        let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
                        if n > 0 { self.take(buffer[0..<n]); continue }
                        if n == 0 { break loop }
                        if Glibc.errno == EINTR { continue }
                        if stopping || Glibc.errno != EAGAIN { break loop }
                        break
                    }
                }
                done.signal()
            }.start()
        }

        /// Passes a chunk on to the target and the log, up to the cap; past it, counts and drops.
        /// The pipe is always drained, so a command that floods its output never blocks on it.
        private func take(_ chunk: ArraySlice<UInt8>) {
            let room = cap.map { $0 > copied ? $0 - copied : 0 } ?? UInt64.max
            let kept = chunk.prefix(Int(min(UInt64(chunk.count), room)))
            if !kept.isEmpty {
                Self.writeAll(target, kept)
                if let log { Self.writeAll(log.fd, kept) }
                copied += UInt64(kept.count)
            }
            let dropped = UInt64(chunk.count - kept.count)
            if dropped > 0 {
                if discarded == 0, let cap {
                    let marker = Array("\n[otk: \(name) truncated at \(ByteSize.format(cap)) (limits.output); the rest is discarded]\n".utf8)
                    Self.writeAll(target, marker[...])
                    if let log { Self.writeAll(log.fd, marker[...]) }
                }
                discarded += dropped
            }
        }

        /// Writes everything, waiting when the terminal is non-blocking and full; a terminal that
        /// is gone (EIO, EPIPE) gets nothing more, but the pipe is still drained.
        private static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) {
            var offset = bytes.startIndex
            while offset < bytes.endIndex {
                let w = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if w > 0 { offset += w; continue }
                if w < 0 && Glibc.errno == EINTR { continue }
                if w < 0 && Glibc.errno == EAGAIN {
                    var out = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&out, 1, 1000)
                    continue
                }
                return
            }
        }

        /// Ends the copy: call once the launcher is reaped (every writer in the sandbox is dead).
        func finish() {
            guard !finished else { return }
            finished = true
            if started {
                var byte: UInt8 = 1
                _ = write(stopWrite, &byte, 1)
                done.wait()
            }
            if writeEnd >= 0 { close(writeEnd) }
            if let log { close(log.fd) }
            close(readEnd)
            close(stopRead)
            close(stopWrite)
        }
    }

    private static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { out += buffer[0..<n]; continue }
            if n < 0 && Glibc.errno == EINTR { continue }
            return out
        }
    }

    static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for p in pointers { free(p) } }
        return body(&pointers)
    }

    static func systemError(_ what: String, _ err: Int32) -> OTKError {
        OTKError(.internalError, "\(what): \(String(cString: strerror(err)))", errno: err)
    }
}
