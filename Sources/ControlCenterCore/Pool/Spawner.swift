import CSupport
import Glibc

/// Starts a child process with posix_spawn.
///
/// Why spawn and not fork: fork from Swift is only safe while the process has
/// exactly one thread, and anything that touches Dispatch or Foundation's
/// threaded APIs breaks that silently; a forked child can then hang. A spawned
/// child is a fresh process image, and respawning also picks up a newly
/// deployed binary. It costs 12–30 ms and ~2 MB per worker, paid once per
/// worker start, not per request.
public enum Spawner {
    public struct SpawnError: Error, CustomStringConvertible {
        public let description: String
    }

    /// - Parameters:
    ///   - stdinFD: becomes fd 0 of the child (the FastCGI listening socket).
    ///   - signalsToDefault: reset in the child; the master blocks them.
    ///   - blockedSignals: stay blocked in the child until it installs its own
    ///     handlers (a worker's QUIT and USR1 wait, instead of hitting the
    ///     Swift runtime's crash handler during start-up).
    ///   - discardOutput: stdout and stderr go to /dev/null (a command whose
    ///     exit status is all the master reads).
    public static func spawn(executable: String, arguments: [String], environment: [String: String],
                             stdinFD: Int32?, blockedSignals: [Int32] = [], discardOutput: Bool = false) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdinFD {
            posix_spawn_file_actions_adddup2(&actions, stdinFD, 0)
        }
        if discardOutput {
            // Plain text from a command would land in the JSON logs the
            // master's stdout and stderr carry.
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // Nothing but stdio crosses: stray fds the master inherited would keep
        // pipes and locks (the pid file's) alive in every worker.
        cc_spawn_addclosefrom(&actions, 3)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var mask = sigset_t()
        sigemptyset(&mask)
        for s in blockedSignals { sigaddset(&mask, s) }
        posix_spawnattr_setsigmask(&attr, &mask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attr, argv, envp)
        guard rc == 0 else {
            throw SpawnError(description: "posix_spawn(\(executable)): \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// The running binary's path, resolved now so that a rebuilt binary at the
    /// same path is what later spawns run.
    public static func currentExecutable() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// How a child ended, decoded from a wait status.
public enum ExitStatus: Equatable, CustomStringConvertible, Sendable {
    case exited(Int32)
    case signaled(Int32)

    public init(waitStatus s: Int32) {
        if cc_wifexited(s) != 0 { self = .exited(cc_wexitstatus(s)) } else { self = .signaled(cc_wtermsig(s)) }
    }

    public var isClean: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let c): return "exit \(c)"
        case .signaled(let s): return "signal \(s) (\(Self.signalName(s)))"
        }
    }

    static func signalName(_ s: Int32) -> String {
        switch s {
        case SIGKILL: return "KILL"
        case SIGTERM: return "TERM"
        case SIGQUIT: return "QUIT"
        case SIGILL: return "ILL"
        case SIGSEGV: return "SEGV"
        case SIGABRT: return "ABRT"
        case SIGBUS: return "BUS"
        case SIGINT: return "INT"
        default: return "SIG\(s)"
        }
    }
}
