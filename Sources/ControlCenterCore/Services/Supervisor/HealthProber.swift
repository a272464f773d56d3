import CCurl
import CSupport
import Foundation
import Glibc

/// Runs the services' health probes without ever blocking the supervisor's
/// loop: HTTP GETs and TCP connects are libcurl multi transfers (a TCP probe
/// is a `CURLOPT_CONNECT_ONLY` transfer), waited on together with the
/// supervisor's own descriptors in `wait`; an `exec` probe is a child
/// process (argv, no shell, as the service's user, in a session of its own)
/// whose exit the supervisor's reaping hands to `reaped`, and whose whole
/// process group gets SIGKILL at its timeout (while the unreaped leader
/// still pins the group id).
///
/// At most one probe per service is in flight. A result is a failure reason,
/// or nil for a success.
final class HealthProber {
    struct Result {
        var service: String
        var error: String?
    }

    private let multi: UnsafeMutableRawPointer
    /// Easy handle → (service, expected HTTP status or nil for a TCP connect, timeout in seconds).
    private var transfers: [UnsafeMutableRawPointer: (service: String, expected: Int?, timeout: Double)] = [:]
    /// Probe pid → (service, monotonic deadline, timeout).
    private var execs: [Int32: (service: String, deadline: Double, timeout: Double)] = [:]
    /// Probes killed at their timeout or cancelled, not yet reaped.
    private var abandoned: Set<Int32> = []
    private var finished: [Result] = []

    init?() {
        guard curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK, let m = curl_multi_init() else { return nil }
        multi = m
    }

    deinit {
        for h in transfers.keys {
            curl_multi_remove_handle(multi, h)
            curl_easy_cleanup(h)
        }
        curl_multi_cleanup(multi)
    }

    /// The services with a probe in flight.
    var inFlight: Set<String> {
        Set(transfers.values.map(\.service)).union(execs.values.map(\.service))
    }

    /// Monotonic times at which exec probes in flight time out (HTTP and TCP
    /// timeouts are libcurl's, and bound `wait` by themselves).
    var execDeadlines: [Double] { execs.values.map(\.deadline) }

    func isProbing(_ service: String) -> Bool {
        transfers.values.contains { $0.service == service } || execs.values.contains { $0.service == service }
    }

    /// Starts a probe of `def`'s `check`; a probe that cannot even start
    /// (an exec that fails) is a failed result at once. An exec probe runs
    /// as the service does (`defaultUser`: `CC_SERVICES_USER`, see `ServiceAccount`).
    func start(_ def: ServiceDefinition, _ check: ServiceDefinition.HealthCheck, defaultUser: String, now: Double) {
        switch check.kind {
        case .http(let url, let expected):
            transfer(def.name, url: url, expected: expected, timeout: check.timeoutSeconds)
        case .tcp(let port):
            transfer(def.name, url: "http://127.0.0.1:\(port)/", expected: nil, timeout: check.timeoutSeconds)
        case .exec(let command):
            let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
            defer { if null >= 0 { close(null) } }
            do {
                let account = try ServiceAccount.resolve(def, defaultUser: defaultUser)
                let pid = try ServiceLauncher.spawn(def, as: account, argv: command, output: null, marked: false)
                execs[pid] = (def.name, now + check.timeoutSeconds, check.timeoutSeconds)
            } catch {
                finished.append(Result(service: def.name, error: "cannot run the probe: \(error)"))
            }
        }
    }

    private func transfer(_ service: String, url: String, expected: Int?, timeout: Double) {
        guard let h = curl_easy_init() else {
            finished.append(Result(service: service, error: "curl_easy_init failed"))
            return
        }
        _ = cc_curl_easy_setopt_string(h, CURLOPT_URL, url)
        // http_proxy in the environment must not turn a loopback probe into a proxy request.
        _ = cc_curl_easy_setopt_string(h, CURLOPT_PROXY, "")
        _ = cc_curl_easy_setopt_long(h, CURLOPT_TIMEOUT_MS, Int(timeout * 1000))
        _ = cc_curl_easy_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        // Each probe is a new connection: a kept one would prove nothing about accepting.
        _ = cc_curl_easy_setopt_long(h, CURLOPT_FRESH_CONNECT, 1)
        _ = cc_curl_easy_setopt_long(h, CURLOPT_FORBID_REUSE, 1)
        if expected == nil {
            _ = cc_curl_easy_setopt_long(h, CURLOPT_CONNECT_ONLY, 1)
        } else {
            _ = cc_curl_easy_setopt_write(h) { _, size, count, _ in size * count }
        }
        transfers[h] = (service, expected, timeout)
        curl_multi_add_handle(multi, h)
    }

    /// Ends the probe of `service` in flight, if any, with no result.
    func cancel(_ service: String) {
        for (h, t) in transfers where t.service == service {
            curl_multi_remove_handle(multi, h)
            curl_easy_cleanup(h)
            transfers.removeValue(forKey: h)
        }
        for (pid, e) in execs where e.service == service {
            kill(-pid, SIGKILL)
            execs.removeValue(forKey: pid)
            abandoned.insert(pid)
        }
    }

    /// Waits up to `millis` (shortened by libcurl to its own next timeout)
    /// for one of `fds` (the supervisor's) or a probe's socket, then moves
    /// the transfers along. Returns with `fds`' revents set.
    func wait(_ fds: inout [curl_waitfd], millis: Int32) {
        var ready: Int32 = 0
        var running: Int32 = 0
        curl_multi_perform(multi, &running)
        curl_multi_poll(multi, &fds, UInt32(fds.count), millis, &ready)
        curl_multi_perform(multi, &running)
    }

    /// Takes the exit of a reaped child if it was an exec probe (a
    /// `waitpid(2)` status): exit code 0 is a success.
    func reaped(_ pid: Int32, status: Int32) -> Bool {
        if abandoned.remove(pid) != nil { return true }
        guard let e = execs.removeValue(forKey: pid) else { return false }
        // No kill of its group here: once the leader is reaped its pid (the
        // group id) may be reused. Its own children, if any, reparent to the
        // supervisor (a subreaper) and are reaped when they end.
        let error: String?
        if cc_wifexited(status) != 0 {
            let code = cc_wexitstatus(status)
            error = code == 0 ? nil : "exit code \(code)"
        } else {
            error = "killed by signal \(cc_wtermsig(status))"
        }
        finished.append(Result(service: e.service, error: error))
        return true
    }

    /// Results since the last call: finished transfers and exits, and exec
    /// probes past their timeout (killed now, with their process group).
    func collect(now: Double) -> [Result] {
        var left: Int32 = 0
        while let msg = curl_multi_info_read(multi, &left) {
            guard msg.pointee.msg == CURLMSG_DONE, let h = msg.pointee.easy_handle,
                  let t = transfers.removeValue(forKey: h) else { continue }
            let code = msg.pointee.data.result
            var status = 0
            _ = cc_curl_easy_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
            curl_multi_remove_handle(multi, h)
            curl_easy_cleanup(h)
            let error: String?
            if code == CURLE_OPERATION_TIMEDOUT {
                error = "timed out after \(t.timeout.formatted()) s"
            } else if code != CURLE_OK {
                error = String(cString: curl_easy_strerror(code))
            } else if let expected = t.expected, status != expected {
                error = "HTTP \(status), expected \(expected)"
            } else {
                error = nil
            }
            finished.append(Result(service: t.service, error: error))
        }
        for (pid, e) in execs where now >= e.deadline {
            kill(-pid, SIGKILL)
            execs.removeValue(forKey: pid)
            abandoned.insert(pid)
            finished.append(Result(service: e.service, error: "timed out after \(e.timeout.formatted()) s"))
        }
        defer { finished.removeAll() }
        return finished
    }
}
