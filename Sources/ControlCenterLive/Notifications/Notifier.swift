import CCurl
import ControlCenterCore
import Glibc

/// Sends alert notifications for the collector with libcurl's multi
/// interface: `enqueue` and `tick` only queue and advance transfers, never
/// wait on the network, so a receiver that hangs or is down never delays a
/// sample. The collector calls `tick` at every sample and records what it
/// returns (NotificationOutcome).
///
/// - One notification per alert and target at a time: a newer state of the
///   alert (resolved after firing, say) replaces one that waits for a retry
///   and goes out after one in flight; its retry count starts at zero.
/// - Failures are retried on `RetrySchedule`; when the attempts run out, or
///   the receiver refuses the request (DeliveryVerdict), one `failed` outcome
///   is returned, and no other for that alert and target until a delivery
///   to it succeeds.
/// - Alertmanager targets get each firing alert again every
///   `resendInterval`, with `endsAt` `endsAtAhead` in the future, and once
///   with `endsAt` = its resolution when it resolves: Alertmanager resolves
///   on its own an alert whose `endsAt` passes, so an alert whose collector
///   stopped does not fire forever.
/// - Requests are http or https only, never follow a redirect, use no
///   proxy, and connect only to addresses inside `allow`
///   (CC_ALERT_TARGET_ALLOW), checked on each address libcurl is about to
///   connect to (CURLOPT_OPENSOCKETFUNCTION), whatever the name resolves to now.
public final class Notifier {
    public struct Policy: Sendable {
        public var retry: RetrySchedule
        /// Seconds between two sends of a firing alert to an Alertmanager
        /// (Prometheus' `--rules.alert.resend-delay` default, 1 min).
        public var resendInterval: Double
        /// How far ahead of a send a firing alert's `endsAt` is: four re-send
        /// intervals, as Prometheus sets it, so that three lost sends in a row
        /// do not resolve the alert.
        public var endsAtAhead: Double
        /// Longest time one request may take, connect to answer (ms).
        public var timeoutMillis: Int
        public var connectTimeoutMillis: Int
        /// Requests in flight at once, over all targets.
        public var maxInFlight: Int

        public init(retry: RetrySchedule = RetrySchedule(), resendInterval: Double = 60, endsAtAhead: Double? = nil,
                    timeoutMillis: Int = 10_000, connectTimeoutMillis: Int = 5_000, maxInFlight: Int = 8) {
            self.retry = retry
            self.resendInterval = resendInterval
            self.endsAtAhead = endsAtAhead ?? 4 * resendInterval
            self.timeoutMillis = timeoutMillis
            self.connectTimeoutMillis = connectTimeoutMillis
            self.maxInFlight = maxInFlight
        }
    }

    private struct Key: Hashable {
        var target: NotificationTarget
        var fingerprint: String
    }

    /// The one notification of an alert to a target: waiting (`post` nil,
    /// sent at `due`) or in flight.
    private final class Delivery {
        var notice: AlertNotice
        var failures = 0
        var due: Double
        var post: CurlPost?
        /// A newer state that arrived while `notice` was in flight.
        var newer: AlertNotice?
        /// The address the socket check refused during this attempt.
        var refusedAddress: String?
        let allow: [CIDR]

        init(notice: AlertNotice, due: Double, allow: [CIDR]) {
            self.notice = notice
            self.due = due
            self.allow = allow
        }
    }

    private let multi: UnsafeMutableRawPointer
    private let allow: [CIDR]
    private let policy: Policy
    private let wallNow: () -> Double
    private let log: Log?
    private var deliveries: [Key: Delivery] = [:]
    /// Firing alerts to re-send to Alertmanager targets, and when.
    private var resends: [Key: (notice: AlertNotice, next: Double)] = [:]
    /// Alert and target pairs whose failure was reported and has not recovered.
    private var failing: Set<Key> = []
    private var idle: [CurlPost] = []

    /// - Parameters:
    ///   - allow: the networks targets may be in (Config.alertTargetAllow).
    ///   - wallNow: wall time in Unix seconds, for Alertmanager's `endsAt`.
    ///   - log: where failures and recoveries are logged (masked targets).
    /// nil when libcurl cannot be initialised.
    public init?(allow: [CIDR], policy: Policy = Policy(), wallNow: @escaping () -> Double = Clock.wallSeconds, log: Log?) {
        guard curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK, let m = curl_multi_init() else { return nil }
        multi = m
        self.allow = allow
        self.policy = policy
        self.wallNow = wallNow
        self.log = log
    }

    deinit {
        for d in deliveries.values { if let p = d.post { curl_multi_remove_handle(multi, p.easy) } }
        curl_multi_cleanup(multi)
    }

    /// Notifications waiting or in flight.
    public var pending: Int { deliveries.count }

    /// Queues `notice` for each of `targets`; `now` is monotonic seconds
    /// (Clock.monotonicSeconds). Sent from the next `tick`.
    /// A target no longer in `targets` gets no more re-sends of the alert
    /// (the rule's targets changed while it fired).
    public func enqueue(_ notice: AlertNotice, targets: [NotificationTarget], now: Double) {
        for key in resends.keys where key.fingerprint == notice.fingerprint && !targets.contains(key.target) {
            resends[key] = nil
        }
        for target in targets {
            let key = Key(target: target, fingerprint: notice.fingerprint)
            if target.type == .alertmanager {
                resends[key] = notice.state == .firing ? (notice, now + policy.resendInterval) : nil
            }
            if let d = deliveries[key] {
                if d.post != nil {
                    d.newer = notice
                } else {
                    d.notice = notice
                    d.failures = 0
                    d.due = now
                }
            } else {
                deliveries[key] = Delivery(notice: notice, due: now, allow: allow)
            }
        }
    }

    /// Advances the transfers without waiting, queues the Alertmanager
    /// re-sends that are due, starts the notifications that are due, and
    /// returns what finished. `now`: monotonic seconds.
    public func tick(now: Double) -> [NotificationOutcome] {
        var outcomes: [NotificationOutcome] = []
        var running: Int32 = 0
        curl_multi_perform(multi, &running)
        collectFinished(now: now, into: &outcomes)
        for (key, r) in resends where now >= r.next {
            resends[key]?.next = now + policy.resendInterval
            if deliveries[key] == nil { deliveries[key] = Delivery(notice: r.notice, due: now, allow: allow) }
        }
        var inFlight = deliveries.values.filter { $0.post != nil }.count
        for (key, d) in deliveries.sorted(by: { $0.value.due < $1.value.due })
        where d.post == nil && d.due <= now && inFlight < policy.maxInFlight {
            if start(key, d) { inFlight += 1 } else { fail(key, d, "cannot create a libcurl handle", now: now, into: &outcomes) }
        }
        curl_multi_perform(multi, &running)
        collectFinished(now: now, into: &outcomes)
        return outcomes
    }

    private func start(_ key: Key, _ d: Delivery) -> Bool {
        guard let post = idle.popLast() ?? CurlPost() else { return false }
        let url: String, body: [UInt8]
        switch key.target.type {
        case .webhook:
            url = key.target.url
            body = NotificationBody.webhook(d.notice)
        case .alertmanager:
            var base = key.target.url
            while base.hasSuffix("/") { base.removeLast() }
            url = base + "/api/v2/alerts"
            body = NotificationBody.alertmanager(d.notice, now: wallNow(), endsAtAhead: policy.endsAtAhead)
        }
        // "Expect:" keeps libcurl from waiting for a 100 Continue on larger bodies.
        let headers = ["Content-Type: application/json", "Expect:"]
            + key.target.headers.sorted(by: { $0.key < $1.key }).map { "\($0.key): \($0.value)" }
        post.prepare(url: url, headers: headers, body: body, timeoutMillis: policy.timeoutMillis, answerLimit: 4096)
        _ = cc_curl_easy_setopt_long(post.easy, CURLOPT_FOLLOWLOCATION, 0)
        _ = cc_curl_easy_setopt_string(post.easy, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = cc_curl_easy_setopt_string(post.easy, CURLOPT_NOPROXY, "*")
        _ = cc_curl_easy_setopt_long(post.easy, CURLOPT_CONNECTTIMEOUT_MS, policy.connectTimeoutMillis)
        d.refusedAddress = nil
        _ = cc_curl_easy_setopt_pointer(post.easy, CURLOPT_OPENSOCKETDATA, Unmanaged.passUnretained(d).toOpaque())
        _ = cc_curl_easy_setopt_opensocket(post.easy) { clientp, _, address in
            guard let clientp, let address else { return -1 }
            let d = Unmanaged<Delivery>.fromOpaque(clientp).takeUnretainedValue()
            guard let text = Notifier.addressText(address), NotificationTarget.isAllowed(text, allow: d.allow) else {
                d.refusedAddress = Notifier.addressText(address) ?? "an address of family \(address.pointee.family)"
                return -1 // CURL_SOCKET_BAD: libcurl tries the next address, or fails with COULDNT_CONNECT
            }
            return socket(address.pointee.family, address.pointee.socktype, address.pointee.protocol)
        }
        d.post = post
        curl_multi_add_handle(multi, post.easy)
        return true
    }

    private func collectFinished(now: Double, into outcomes: inout [NotificationOutcome]) {
        var left: Int32 = 0
        while let msg = curl_multi_info_read(multi, &left) {
            guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle,
                  let (key, d) = deliveries.first(where: { $0.value.post?.easy == easy }), let post = d.post else { continue }
            let result = msg.pointee.data.result
            let status = post.responseCode
            curl_multi_remove_handle(multi, easy)
            d.post = nil
            idle.append(post)
            let verdict = DeliveryVerdict.of(transportError: result == CURLE_OK ? nil : String(cString: curl_easy_strerror(result)),
                                             status: status, refusedAddress: d.refusedAddress)
            switch verdict {
            case .delivered:
                if failing.remove(key) != nil {
                    log?.info("alert notifications work again", ["target": key.target.masked.url, "fingerprint": key.fingerprint])
                }
                outcomes.append(outcome(.delivered, key, d.notice, attempts: d.failures + 1))
                finish(key, d, now: now)
            case .retry(let why):
                d.failures += 1
                if d.newer == nil, let delay = policy.retry.delay(afterFailures: d.failures) {
                    d.due = now + delay
                } else if d.newer != nil {
                    finish(key, d, now: now)
                } else {
                    fail(key, d, why, now: now, into: &outcomes)
                }
            case .permanent(let why):
                d.failures += 1
                fail(key, d, why, now: now, into: &outcomes)
            }
        }
    }

    /// Gives up on `d`'s notice: one outcome (and log line) per alert and
    /// target until a delivery to it succeeds.
    private func fail(_ key: Key, _ d: Delivery, _ why: String, now: Double, into outcomes: inout [NotificationOutcome]) {
        if failing.insert(key).inserted {
            log?.warning("alert notification failed", ["target": key.target.masked.url, "fingerprint": key.fingerprint,
                                                       "attempts": String(d.failures), "error": why])
            outcomes.append(outcome(.failed(reason: why), key, d.notice, attempts: d.failures))
        }
        finish(key, d, now: now)
    }

    /// Moves on to the newer notice of the pair, if one came, else forgets it.
    private func finish(_ key: Key, _ d: Delivery, now: Double) {
        if let newer = d.newer {
            d.notice = newer
            d.newer = nil
            d.failures = 0
            d.due = now
        } else {
            deliveries[key] = nil
        }
    }

    private func outcome(_ result: NotificationOutcome.Result, _ key: Key, _ n: AlertNotice, attempts: Int) -> NotificationOutcome {
        NotificationOutcome(result: result, target: key.target.masked, fingerprint: n.fingerprint,
                            alertname: n.labels["alertname"] ?? "", state: n.state, attempts: attempts)
    }

    /// The IP address libcurl is about to connect to, as inet_ntop(3) prints
    /// it. libcurl's `curl_sockaddr.addr` is the head of a sockaddr_storage,
    /// so an IPv6 address is read past the declared `struct sockaddr`.
    static func addressText(_ a: UnsafeMutablePointer<curl_sockaddr>) -> String? {
        guard let offset = MemoryLayout<curl_sockaddr>.offset(of: \curl_sockaddr.addr) else { return nil }
        let sa = UnsafeRawPointer(a) + offset
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch a.pointee.family {
        case AF_INET:
            var ip = sa.loadUnaligned(as: sockaddr_in.self).sin_addr
            guard inet_ntop(AF_INET, &ip, &buf, socklen_t(buf.count)) != nil else { return nil }
        case AF_INET6:
            var ip = sa.loadUnaligned(as: sockaddr_in6.self).sin6_addr
            guard inet_ntop(AF_INET6, &ip, &buf, socklen_t(buf.count)) != nil else { return nil }
        default:
            return nil
        }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
