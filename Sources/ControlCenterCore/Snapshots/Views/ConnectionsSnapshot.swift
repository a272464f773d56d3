/// One socket in the connections snapshot (also a port when listening).
struct ConnectionRow {
    var proto: UInt8
    var state: UInt8
    var listening: Bool
    var localPort: UInt16
    var remotePort: UInt16
    var pid: Int32              // -1: unknown owner
    var item: Range<Int>        // connection JSON in .items
    var portItem: Range<Int>    // port JSON in .portItems (empty unless listening)

    var stateName: String {
        SocketSample(proto: SocketSample.Proto(rawValue: proto) ?? .tcp, localAddress: "", localPort: localPort,
                     remoteAddress: "", remotePort: remotePort, state: state, uid: 0, inode: 0).stateName
    }

    func encode(_ w: inout ByteWriter) {
        w.u8(proto); w.u8(state); w.u8(listening ? 1 : 0); w.u16(localPort); w.u16(remotePort); w.i32(pid)
        w.u32(UInt32(item.lowerBound)); w.u32(UInt32(item.count))
        w.u32(UInt32(portItem.lowerBound)); w.u32(UInt32(portItem.count))
    }

    static func decode(_ r: inout ByteReader) -> ConnectionRow? {
        guard let proto = r.u8(), let state = r.u8(), let l = r.u8(), let lp = r.u16(), let rp = r.u16(),
              let pid = r.i32(), let io = r.u32(), let il = r.u32(), let po = r.u32(), let pl = r.u32() else { return nil }
        return ConnectionRow(proto: proto, state: state, listening: l == 1, localPort: lp, remotePort: rp, pid: pid,
                             item: Int(io)..<Int(io + il), portItem: Int(po)..<Int(po + pl))
    }
}

final class ConnectionTable {
    let rows: [ConnectionRow]
    let items: ArraySlice<UInt8>
    let portItems: ArraySlice<UInt8>
    let ports: [ConnectionRow]   // listening rows, by port then proto

    init(rows: [ConnectionRow], items: ArraySlice<UInt8>, portItems: ArraySlice<UInt8>) {
        self.rows = rows
        self.items = items
        self.portItems = portItems
        ports = rows.filter(\.listening).sorted { ($0.localPort, $0.proto) < ($1.localPort, $1.proto) }
    }

    static func decode(_ f: SnapshotFile) throws -> ConnectionTable {
        var r = ByteReader(f.section(.index))
        var rows: [ConnectionRow] = []
        let items = f.section(.items), portItems = f.section(.portItems)
        while !r.atEnd {
            guard let row = ConnectionRow.decode(&r), row.item.upperBound <= items.count,
                  row.portItem.upperBound <= portItems.count else { throw SnapshotError("bad connections index") }
            rows.append(row)
        }
        return ConnectionTable(rows: rows, items: items, portItems: portItems)
    }

    func json(_ r: ConnectionRow) -> ArraySlice<UInt8> {
        items[(items.startIndex + r.item.lowerBound)..<(items.startIndex + r.item.upperBound)]
    }

    func portJSON(_ r: ConnectionRow) -> ArraySlice<UInt8> {
        portItems[(portItems.startIndex + r.portItem.lowerBound)..<(portItems.startIndex + r.portItem.upperBound)]
    }
}

/// Builds the connections snapshot, which the ports view shares.
final class ConnectionsBuilder: SnapshotBuilder {
    let sockets = SocketScanner()
    let processes = ProcessScanner()
    let users = UserNames()

    func build(_ input: BuildInput) throws -> BuiltSnapshot {
        users.refresh()
        let socks = sockets.sockets()
        let owners = sockets.socketOwners(pids: processes.pids())
        var names: [Int32: String] = [:]
        var items = [UInt8](), portItems = [UInt8]()
        var index = ByteWriter(capacity: socks.count * 32)
        for s in socks {
            let pid = owners[s.inode]
            var pname: String?
            if let pid {
                if let n = names[pid] { pname = n } else { pname = sockets.comm(pid); names[pid] = pname }
            }
            let user = users.name(s.uid)
            var w = JSONWriter(capacity: 256)
            w.beginObject()
            w.field("proto", s.proto.name)
            w.field("local_address", s.localAddress)
            w.field("local_port", Int(s.localPort))
            w.field("remote_address", s.remoteAddress)
            w.field("remote_port", Int(s.remotePort))
            w.field("state", s.stateName)
            w.field("pid", pid.map { Int($0) })
            w.field("process_name", pname)
            w.field("uid", Int(s.uid))
            w.field("user", user)
            w.field("inode", s.inode)
            w.endObject()
            let item = items.count..<(items.count + w.bytes.count)
            items.append(contentsOf: w.bytes)
            var portItem = portItems.count..<portItems.count
            if s.isListening {
                var p = JSONWriter(capacity: 192)
                p.beginObject()
                p.field("port", Int(s.localPort))
                p.field("pid", pid.map { Int($0) })
                p.field("process_name", pname)
                p.field("status", s.stateName)
                p.field("address", s.localAddress)
                p.field("proto", s.proto.name)
                p.field("user", user)
                p.endObject()
                portItem = portItems.count..<(portItems.count + p.bytes.count)
                portItems.append(contentsOf: p.bytes)
            }
            ConnectionRow(proto: s.proto.rawValue, state: s.state, listening: s.isListening, localPort: s.localPort,
                          remotePort: s.remotePort, pid: pid ?? -1, item: item, portItem: portItem).encode(&index)
        }
        return BuiltSnapshot(itemCount: socks.count,
                             sections: [(.items, items), (.index, index.bytes), (.portItems, portItems)])
    }
}

struct ConnectionQuery {
    var protos: Set<UInt8>?
    var state: String?
    var pid: Int32?
    var port: UInt16?
    var page: Page

    init(_ req: Request) throws {
        let p = try choice(req, "proto", ["tcp", "tcp6", "udp", "udp6", "all", "inet", "inet4", "inet6"], default: "all")!
        switch p {
        case "all", "inet": protos = nil
        case "inet4": protos = [0, 2]
        case "inet6": protos = [1, 3]
        default: protos = [SocketSample.Proto.allCases.first { $0.name == p }!.rawValue]
        }
        if let s = req.query["state"], !s.isEmpty {
            guard allSocketStateNames.contains(s.uppercased()) else {
                throw invalid("state must be one of \(allSocketStateNames.joined(separator: ", "))")
            }
            state = s.uppercased()
        }
        pid = try optionalInt(req, "pid", range: 0...Int(Int32.max)).map { Int32($0) }
        port = try optionalInt(req, "port", range: 0...65535).map { UInt16($0) }
        page = try Page(req, defaultLimit: 500)
    }

    func matches(_ r: ConnectionRow) -> Bool {
        if let protos, !protos.contains(r.proto) { return false }
        if let state, r.stateName != state { return false }
        if let pid, r.pid != pid { return false }
        if let port, r.localPort != port && r.remotePort != port { return false }
        return true
    }
}

struct PortQuery {
    var from: Int
    var to: Int
    var protos: Set<UInt8>?
    var page: Page

    init(_ req: Request) throws {
        from = try intParameter(req, "from", default: 0, range: 0...65535)
        to = try intParameter(req, "to", default: 65535, range: 0...65535)
        guard from <= to else { throw invalid("from must not exceed to") }
        let p = try choice(req, "proto", ["tcp", "tcp6", "udp", "udp6", "all"], default: "all")!
        protos = p == "all" ? nil : [SocketSample.Proto.allCases.first { $0.name == p }!.rawValue]
        page = try Page(req, defaultLimit: 1000)
    }

    func matches(_ r: ConnectionRow) -> Bool {
        Int(r.localPort) >= from && Int(r.localPort) <= to && (protos?.contains(r.proto) ?? true)
    }
}
