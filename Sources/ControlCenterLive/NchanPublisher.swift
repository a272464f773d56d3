import CCurl
import ControlCenterCore
import Glibc

/// Publishes live messages to nginx's nchan publisher location
/// (`POST /pub/<channel>` on `$CC_STATE_DIR/run/nchan-publish.sock`,
/// control-center-http.conf) with libcurl's multi interface, so that the
/// collector's loop never blocks on a publish: nchan answers only after it
/// has fanned the message out (tens to hundreds of ms with thousands of
/// subscribers), and the loop waits for its next sample inside `run(until:)`.
///
/// One POST is in flight at a time, so a channel's messages reach nchan in
/// order. Of the system channel only the newest waiting message is kept: a
/// subscriber detects the dropped ones by their `seq` (LiveMessage).
///
/// Paced messages (the system channel's shards, LiveChannels) go one after
/// another with a pause between them as long as the previous shard's POST
/// took (nchan answers after its fan-out), at most `maxPacingGap`: nginx's
/// workers then spend at most about half of the spread fanning out and
/// serve HTTP requests in the pauses. Unpaced messages (events) never wait
/// for a pause.
final class NchanPublisher {
    struct Message {
        /// nchan channel id (`system.3`, `events`).
        var channel: String
        /// The body, given `published_at` (Unix ms) just before its POST.
        var body: (Int64) -> [UInt8]
        /// A newer replaceable message of the channel replaces it while it waits.
        var replaceable: Bool
        var paced: Bool
    }

    private let multi: UnsafeMutableRawPointer
    private let post: CurlPost
    private let socketPath: String
    private let timeoutMillis: Int
    private let maxPacingGap: Double
    private let log: Log
    private var waiting: [Message] = []
    private var inFlight: Message?
    /// Monotonic seconds: when the POST in flight started; when the next
    /// paced message may start.
    private var inFlightStart = 0.0
    private var pacedNotBefore = 0.0
    /// Failed publishes since the last success; the first is logged, then
    /// the recovery, so a stopped nginx costs two log lines, not one a second.
    private(set) var failures = 0
    private(set) var published = 0
    /// Subscribers of each channel id, from nchan's answer to its latest
    /// successful publish (the channel info's `subscribers`).
    private(set) var subscribers: [String: Int] = [:]
    /// Accept: nchan answers with the channel's info as JSON (subscribers).
    private static let headers = ["Content-Type: application/json", "Accept: application/json"]

    /// - Parameters:
    ///   - socketPath: nchan's publisher socket.
    ///   - timeoutMillis: the longest one POST may take (connect to answer).
    ///   - maxPacingGap: the longest pause between two paced POSTs, seconds.
    init?(socketPath: String, timeoutMillis: Int, maxPacingGap: Double, log: Log) {
        guard let p = CurlPost(), let m = curl_multi_init() else { return nil }
        multi = m
        post = p
        self.socketPath = socketPath
        self.timeoutMillis = timeoutMillis
        self.maxPacingGap = maxPacingGap
        self.log = log
    }

    deinit {
        if inFlight != nil { curl_multi_remove_handle(multi, post.easy) }
        curl_multi_cleanup(multi)
    }

    /// Messages that may wait while nginx does not answer; beyond it the
    /// oldest go (subscribers see the gap in `seq`).
    static let maxWaiting = 1000

    /// Queues one message for each of `channels`, in that order. A
    /// `replaceable` one drops the waiting replaceable messages of its
    /// channel (never one in flight, never a reset). `body` is called just
    /// before each POST with the time, so that each shard's `published_at`
    /// is its own.
    func enqueue(channels: [String], replaceable: Bool, paced: Bool, body: @escaping (Int64) -> [UInt8]) {
        if replaceable { waiting.removeAll { $0.replaceable && channels.contains($0.channel) } }
        for channel in channels {
            if waiting.count >= Self.maxWaiting { waiting.removeFirst(waiting.count - Self.maxWaiting + 1) }
            waiting.append(Message(channel: channel, body: body, replaceable: replaceable, paced: paced))
        }
        startNext()
    }

    /// The pause after a paced POST that took `postSeconds`: as long as it
    /// took (the fan-out it waited for), at most `maxGap`.
    static func pacingGap(postSeconds: Double, maxGap: Double) -> Double { min(max(0, postSeconds), maxGap) }

    /// Subscribers per channel (the system channel's shards summed), for
    /// run/live-subscribers.
    var subscribersByChannel: LiveSubscribers { LiveSubscribers(summingShards: subscribers) }

    /// Drives the transfers until the monotonic time `deadline` (seconds),
    /// until `stop()` says so, or until `wakeFD` (if any) is readable, and
    /// returns true in that last case.
    func run(until deadline: Double, wakeFD: Int32?, stop: () -> Bool) -> Bool {
        while !stop() {
            let now = Clock.monotonicSeconds()
            let left = deadline - now
            if left <= 0 { return false }
            startNext()
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            collectFinished()
            var extra = curl_waitfd(fd: wakeFD ?? -1, events: Int16(CURL_WAIT_POLLIN), revents: 0)
            var ready: Int32 = 0
            // curl_multi_poll sleeps the whole timeout when nothing is in flight.
            // Slices of at most 0.2 s, so that a QUIT (stop()) is seen quickly,
            // and no longer than the pause before the next paced message.
            var sliceSeconds = min(left, 0.2)
            if inFlight == nil && waiting.contains(where: { $0.paced }) {
                sliceSeconds = min(sliceSeconds, pacedNotBefore - now)
            }
            let millis = Int32(max(1, sliceSeconds * 1000))
            if wakeFD == nil {
                curl_multi_poll(multi, nil, 0, millis, &ready)
            } else {
                curl_multi_poll(multi, &extra, 1, millis, &ready)
            }
            if extra.revents != 0 { return true }
        }
        return false
    }

    /// A paced message waits or is in flight.
    var hasPacedWork: Bool { inFlight?.paced == true || waiting.contains { $0.paced } }

    /// `subscribers` of nchan's channel info (`{"messages": 5, "requested": 0,
    /// "subscribers": 1, "last_message_id": "…"}`), nil if absent. Read by
    /// a scan, not a JSON parser: it runs once per shard and second.
    static func subscribers(inChannelInfo bytes: [UInt8]) -> Int? {
        let key = Array(#""subscribers":"#.utf8)
        guard bytes.count > key.count,
              let at = (0...(bytes.count - key.count)).first(where: { bytes[$0..<($0 + key.count)].elementsEqual(key) })
        else { return nil }
        var i = at + key.count
        while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
        var n = 0, digits = 0
        while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]), digits < 12 {
            n = n * 10 + Int(bytes[i] - UInt8(ascii: "0"))
            i += 1
            digits += 1
        }
        return digits > 0 ? n : nil
    }

    private func startNext() {
        guard inFlight == nil else { return }
        let now = Clock.monotonicSeconds()
        guard let i = waiting.firstIndex(where: { !$0.paced || now >= pacedNotBefore }) else { return }
        let m = waiting.remove(at: i)
        post.prepare(url: "http://localhost/pub/\(m.channel)", headers: Self.headers, body: m.body(Clock.wallMillis()),
                     timeoutMillis: timeoutMillis, answerLimit: 64 << 10)
        _ = cc_curl_easy_setopt_string(post.easy, CURLOPT_UNIX_SOCKET_PATH, socketPath)
        curl_multi_add_handle(multi, post.easy)
        inFlight = m
        inFlightStart = now
        var running: Int32 = 0
        curl_multi_perform(multi, &running)
        collectFinished()
    }

    private func collectFinished() {
        var left: Int32 = 0
        while let msg = curl_multi_info_read(multi, &left) {
            guard msg.pointee.msg == CURLMSG_DONE else { continue }
            let result = msg.pointee.data.result
            let status = post.responseCode
            curl_multi_remove_handle(multi, post.easy)
            let channel = inFlight?.channel ?? "?"
            if inFlight?.paced == true {
                let now = Clock.monotonicSeconds()
                pacedNotBefore = now + Self.pacingGap(postSeconds: now - inFlightStart, maxGap: maxPacingGap)
            }
            inFlight = nil
            if result == CURLE_OK && (200..<300).contains(status) {
                if failures > 0 { log.info("live publish works again", ["failed": String(failures)]) }
                failures = 0
                published += 1
                if let n = Self.subscribers(inChannelInfo: post.answerBytes) { subscribers[channel] = n }
            } else {
                if failures == 0 {
                    let why = result == CURLE_OK ? "HTTP \(status)" : String(cString: curl_easy_strerror(result))
                    log.warning("live publish failed; retrying with the next message",
                                ["channel": channel, "error": why, "socket": socketPath])
                }
                failures += 1
            }
            startNext()
        }
    }
}
