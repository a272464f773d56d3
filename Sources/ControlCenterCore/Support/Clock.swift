import Glibc

/// Monotonic time for durations, wall time for timestamps.
public enum Clock {
    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public static func monotonicSeconds() -> Double { Double(monotonicNanos()) / 1e9 }

    public static func wallSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static func wallMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// RFC 3339 UTC with milliseconds, without Foundation's formatter cost.
    public static func iso8601(_ seconds: Double) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        appendISO8601(seconds, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` to `out` with no intermediate
    /// strings: timestamps are written several times per request.
    public static func appendISO8601(_ seconds: Double, to out: inout [UInt8]) {
        // Whole milliseconds first: 1795928055.001 is 1795928055.000999… as a
        // Double, and truncating its fraction would print .000 for a time
        // that is .001 in milliseconds (as `taken_at_ms` says).
        let total = Int64((seconds * 1000).rounded())
        let msPart = total % 1000 < 0 ? total % 1000 + 1000 : total % 1000
        var t = time_t((total - msPart) / 1000)
        let ms = Int(msPart)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func digits(_ v: Int, _ width: Int) {
            var d = 1
            for _ in 1..<width { d *= 10 }
            var v = v
            while d > 0 {
                out.append(UInt8(ascii: "0") + UInt8((v / d) % 10))
                v %= d
                d /= 10
            }
        }
        digits(Int(tmv.tm_year) + 1900, 4); out.append(UInt8(ascii: "-"))
        digits(Int(tmv.tm_mon) + 1, 2); out.append(UInt8(ascii: "-"))
        digits(Int(tmv.tm_mday), 2); out.append(UInt8(ascii: "T"))
        digits(Int(tmv.tm_hour), 2); out.append(UInt8(ascii: ":"))
        digits(Int(tmv.tm_min), 2); out.append(UInt8(ascii: ":"))
        digits(Int(tmv.tm_sec), 2); out.append(UInt8(ascii: "."))
        digits(ms, 3); out.append(UInt8(ascii: "Z"))
    }

    /// RFC 9110 5.6.7 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`: the
    /// form of `Last-Modified`, which nginx writes from a file's mtime.
    public static func httpDate(seconds: Int) -> String {
        var t = time_t(seconds)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(tmv.tm_wday)]), \(two(tmv.tm_mday)) \(months[Int(tmv.tm_mon)]) \(tmv.tm_year + 1900) "
            + "\(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec)) GMT"
    }

    public static func sleep(seconds: Double) {
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var rem = timespec()
        while nanosleep(&ts, &rem) != 0 && errno == EINTR { ts = rem }
    }
}
