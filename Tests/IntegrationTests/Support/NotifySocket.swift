import ControlCenterCore
import Foundation
import Glibc

/// A datagram socket standing in for systemd's NOTIFY_SOCKET: a thread
/// records every message with the pids whose status files existed when it
/// arrived, so a test can tell what the pool looked like at READY=1.
final class NotifySocket: @unchecked Sendable {
    struct Message { var text: String; var statusPids: Set<pid_t> }

    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [Message] = []
    private var closed = false

    init(statusDir: String) {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("cc-notify-\(getpid())-\(UUID().uuidString.prefix(8)).sock").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [self] in
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                lock.lock(); let stop = closed; lock.unlock()
                if stop { return }
                let n = recv(fd, &buf, buf.count, 0)
                guard n > 0 else { continue }
                let pids = Set(WorkerStatusDirectory.readAll(directory: statusDir).map(\.pid))
                lock.lock()
                received.append(Message(text: String(decoding: buf.prefix(n), as: UTF8.self), statusPids: pids))
                lock.unlock()
            }
        }
        thread.start()
    }

    var messages: [Message] {
        lock.lock(); defer { lock.unlock() }
        return received
    }

    /// Waits for the `index`th message (0-based) and returns it.
    func message(_ index: Int, within seconds: Double = 15) -> Message? {
        _ = waitUntil(seconds) { self.messages.count > index }
        let all = messages
        return all.count > index ? all[index] : nil
    }

    /// Stops the thread (it holds this object until then) and removes the socket.
    func finish() {
        lock.lock(); closed = true; lock.unlock()
        usleep(300_000)
        close(fd)
        unlink(path)
    }
}
