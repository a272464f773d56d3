/// `/api/system/network` as one pre-rendered body. Byte rates come from the
/// counters the previous snapshot kept in its samples section.
final class NetworkBuilder: SnapshotBuilder {
    let interfaces = InterfaceScanner()
    let sockets = SocketScanner()

    func build(_ input: BuildInput) throws -> BuiltSnapshot {
        let ifs = interfaces.scan()
        let (tcp, udp) = sockets.stateCounts()
        let prev = previousCounters(input.previous)
        let interval = input.previous.map { Double(input.monoNanos &- $0.takenAtMonoNanos) / 1e9 } ?? 0

        var samples = ByteWriter()
        var w = JSONWriter(capacity: 4096)
        w.beginObject()
        w.beginArray("interfaces")
        var totals: [String: UInt64] = [:]
        for i in ifs {
            samples.string(i.name)
            samples.u64(i.counters["rx_bytes"] ?? 0)
            samples.u64(i.counters["tx_bytes"] ?? 0)
            w.beginObject()
            w.field("name", i.name)
            w.field("mac", i.mac)
            w.field("mtu", i.mtu)
            w.field("is_up", i.isUp)
            w.field("oper_state", i.operState)
            w.beginArray("addresses")
            for a in i.addresses {
                w.beginObject()
                w.field("family", a.family)
                w.field("address", a.address)
                w.field("prefix", a.prefix)
                w.field("label", a.label)
                w.endObject()
            }
            w.endArray()
            for c in InterfaceSample.counterNames {
                let v = i.counters[c]
                w.field(c, v.map { Int($0) })
                if let v { totals[c, default: 0] += v }
            }
            for dir in ["rx", "tx"] {
                let key = dir + "_bytes"
                if let now = i.counters[key], let before = prev[i.name]?[dir == "rx" ? 0 : 1], interval > 0, now >= before {
                    w.field(dir + "_bytes_per_sec", Double(now - before) / interval, places: 1)
                } else {
                    w.nullField(dir + "_bytes_per_sec")
                }
            }
            w.endObject()
        }
        w.endArray()
        w.beginObject("totals")
        for c in InterfaceSample.counterNames { w.field(c, Int(totals[c] ?? 0)) }
        // Old dashboard names.
        w.field("bytes_recv", Int(totals["rx_bytes"] ?? 0))
        w.field("bytes_sent", Int(totals["tx_bytes"] ?? 0))
        w.field("interface_count", ifs.count)
        w.endObject()
        w.beginObject("connections_summary")
        w.beginObject("tcp")
        for s in tcp.keys.sorted() { w.field(tcpStateName(s), tcp[s]!) }
        w.endObject()
        w.field("tcp_total", tcp.values.reduce(0, +))
        w.field("udp", udp)
        w.endObject()
        w.field("success", true)
        SnapshotTail.close(&w, takenAtMillis: input.takenAtMillis)
        var metrics = PrometheusText(capacity: 4096)
        NodeExporterMetrics.writeNetwork(&metrics, ifs)
        return BuiltSnapshot(itemCount: ifs.count, sections: [(.body, w.bytes), (.samples, samples.bytes),
                                                              (.metrics, metrics.bytes)])
    }

    private func previousCounters(_ f: SnapshotFile?) -> [String: [UInt64]] {
        guard let f else { return [:] }
        var r = ByteReader(f.section(.samples))
        var out: [String: [UInt64]] = [:]
        while !r.atEnd {
            guard let n = r.string(), let rx = r.u64(), let tx = r.u64() else { break }
            out[n] = [rx, tx]
        }
        return out
    }
}
