/// The messages of the live channels (`/ws` and `/api/stream/system`: the
/// system channel; `/api/stream/events`: the events channel), written
/// by the collector and fanned out by nginx's nchan; docs/openapi.yaml
/// (`LiveSystemStats`, `LiveReset`) describes them.
///
/// Every message carries `epoch` (the collector's start, Unix ms) and `seq`
/// (1, 2, … per channel and epoch). The documented client rule: a `seq` that is not the
/// previous one plus 1, a changed `epoch`, or a `type:"reset"` message means
/// messages were missed; back-fill from the REST API (`/api/system/stats`).
public enum LiveMessage {
    /// `{"type":"system_stats", epoch, seq, published_at, published_at_ms,
    /// network{rx_bytes_per_sec, tx_bytes_per_sec}, …}` followed by every
    /// field of `/api/system/stats` (cpu{usage, usage_percent, per_core,
    /// load_avg, …}, memory{percent, used_gb, total_gb, …}, disk{…},
    /// timestamp, snapshot{taken_at, taken_at_ms}): the old dashboard's
    /// `/ws` message, with more fields beside its own.
    ///
    /// - Parameters:
    ///   - stats: a stats snapshot; its body is `/api/system/stats`'s answer.
    ///   - publishedAtMillis: Unix ms just before the publish POST.
    ///   - network: bytes per second received and sent over every interface
    ///     but loopback, nil before a second reading.
    public static func systemStats(stats: LoadedSnapshot, epoch: Int64, seq: Int, publishedAtMillis: Int64,
                                   network: NetworkRates.Rates?) -> [UInt8] {
        systemStats(statsBody: stats.file.section(.body), epoch: epoch, seq: seq,
                    publishedAtMillis: publishedAtMillis, network: network)
    }

    static func systemStats(statsBody: ArraySlice<UInt8>, epoch: Int64, seq: Int,
                            publishedAtMillis: Int64, network: NetworkRates.Rates?) -> [UInt8] {
        var w = JSONWriter(capacity: statsBody.count + 256)
        w.beginObject()
        header(&w, type: "system_stats", epoch: epoch, seq: seq, publishedAtMillis: publishedAtMillis)
        w.beginObject("network")
        w.field("rx_bytes_per_sec", network?.rxBytesPerSecond, places: 1)
        w.field("tx_bytes_per_sec", network?.txBytesPerSecond, places: 1)
        w.endObject()
        var out = w.bytes
        // The snapshot body's own fields follow, without its opening brace.
        guard statsBody.first == UInt8(ascii: "{") else { return out + Array("}".utf8) }
        out.append(UInt8(ascii: ","))
        out.append(contentsOf: statsBody.dropFirst())
        return out
    }

    /// `{"type":"event", epoch, seq, published_at, published_at_ms, event}`
    /// on the events channel; `event` is the row as `GET /api/events` lists it.
    public static func event(_ e: Event, epoch: Int64, seq: Int, publishedAtMillis: Int64) -> [UInt8] {
        var w = JSONWriter(capacity: 512)
        w.beginObject()
        header(&w, type: "event", epoch: epoch, seq: seq, publishedAtMillis: publishedAtMillis)
        w.key("event")
        e.write(&w)
        w.endObject()
        return w.bytes
    }

    /// `{"type":"reset", epoch, seq:0, reason, published_at, published_at_ms}`:
    /// the first message of every collector start; whatever a client held
    /// before it may have missed messages.
    public static func reset(epoch: Int64, publishedAtMillis: Int64, reason: String) -> [UInt8] {
        var w = JSONWriter(capacity: 160)
        w.beginObject()
        header(&w, type: "reset", epoch: epoch, seq: 0, publishedAtMillis: publishedAtMillis)
        w.field("reason", reason)
        w.endObject()
        return w.bytes
    }

    private static func header(_ w: inout JSONWriter, type: String, epoch: Int64, seq: Int, publishedAtMillis: Int64) {
        w.field("type", type)
        w.field("epoch", Int(epoch))
        w.field("seq", seq)
        w.field("published_at", Clock.iso8601(Double(publishedAtMillis) / 1000))
        w.field("published_at_ms", Int(publishedAtMillis))
    }
}
