/// One socket in the connections snapshot.
struct ConnectionRow {
    var proto: UInt8
    var state: UInt8
    var localPort: UInt16
    var remotePort: UInt16
    var pid: Int32              // -1: unknown owner; the lowest when several hold it
    var item: Range<Int>        // connection JSON in .items

    var stateName: String {
        SocketSample(proto: SocketSample.Proto(rawValue: proto) ?? .tcp, localAddress: "", localPort: localPort,
                     remoteAddress: "", remotePort: remotePort, state: state, uid: 0, inode: 0).stateName
    }

    func encode(_ w: inout ByteWriter) {
        w.u8(proto); w.u8(state); w.u16(localPort); w.u16(remotePort); w.i32(pid)
        w.u32(UInt32(item.lowerBound)); w.u32(UInt32(item.count))
    }

    static func decode(_ r: inout ByteReader) -> ConnectionRow? {
        guard let proto = r.u8(), let state = r.u8(), let lp = r.u16(), let rp = r.u16(),
              let pid = r.i32(), let io = r.u32(), let il = r.u32() else { return nil }
        return ConnectionRow(proto: proto, state: state, localPort: lp, remotePort: rp, pid: pid, item: Int(io)..<Int(io + il))
    }
}

/// One listening endpoint (proto, address, port) in the ports view, however
/// many sockets serve it (SO_REUSEPORT gives each nginx worker its own), with
/// its anonymous and viewer JSON in .portItems.
struct PortRow {
    var proto: UInt8
    var localPort: UInt16
    var item: Range<Int>        // anonymous form: port, proto, address, status
    var viewerItem: Range<Int>  // viewer form: adds owners and user

    func encode(_ w: inout ByteWriter) {
        w.u8(proto); w.u16(localPort)
        w.u32(UInt32(item.lowerBound)); w.u32(UInt32(item.count))
        w.u32(UInt32(viewerItem.lowerBound)); w.u32(UInt32(viewerItem.count))
    }

    static func decode(_ r: inout ByteReader) -> PortRow? {
        guard let proto = r.u8(), let lp = r.u16(), let io = r.u32(), let il = r.u32(),
              let vo = r.u32(), let vl = r.u32() else { return nil }
        return PortRow(proto: proto, localPort: lp, item: Int(io)..<Int(io + il), viewerItem: Int(vo)..<Int(vo + vl))
    }
}

/// A listening endpoint and every process that holds one of its sockets.
struct ListeningEndpoint: Equatable {
    var proto: SocketSample.Proto
    var address: String
    var port: UInt16
    var status: String
    var uid: UInt32             // of the first socket
    var pids: [Int32]           // ascending, unique

    /// One entry per (proto, address, port), sorted by port, proto, address.
    static func group(_ sockets: [SocketSample], owners: [UInt64: [Int32]]) -> [ListeningEndpoint] {
        struct Key: Hashable { var proto: UInt8; var address: String; var port: UInt16 }
        var byKey: [Key: ListeningEndpoint] = [:]
        for s in sockets where s.isListening {
            let key = Key(proto: s.proto.rawValue, address: s.localAddress, port: s.localPort)
            let pids = owners[s.inode] ?? []
            if var e = byKey[key] {
                e.pids = Array(Set(e.pids + pids)).sorted()
                byKey[key] = e
            } else {
                byKey[key] = ListeningEndpoint(proto: s.proto, address: s.localAddress, port: s.localPort,
                                               status: s.stateName, uid: s.uid, pids: pids)
            }
        }
        return byKey.values.sorted { ($0.port, $0.proto.rawValue, $0.address) < ($1.port, $1.proto.rawValue, $1.address) }
    }
}

final class ConnectionTable {
    let rows: [ConnectionRow]
    let items: ArraySlice<UInt8>
    let ports: [PortRow]
    let portItems: ArraySlice<UInt8>

    init(rows: [ConnectionRow], items: ArraySlice<UInt8>, ports: [PortRow], portItems: ArraySlice<UInt8>) {
        self.rows = rows
        self.items = items
        self.ports = ports
        self.portItems = portItems
    }

    static func decode(_ f: SnapshotFile) throws -> ConnectionTable {
        var r = ByteReader(f.section(.index))
        var rows: [ConnectionRow] = []
        let items = f.section(.items), portItems = f.section(.portItems)
        while !r.atEnd {
            guard let row = ConnectionRow.decode(&r), row.item.upperBound <= items.count else {
                throw SnapshotError("bad connections index")
            }
            rows.append(row)
        }
        var p = ByteReader(f.section(.portIndex))
        var ports: [PortRow] = []
        while !p.atEnd {
            guard let row = PortRow.decode(&p), row.item.upperBound <= portItems.count,
                  row.viewerItem.upperBound <= portItems.count else { throw SnapshotError("bad ports index") }
            ports.append(row)
        }
        return ConnectionTable(rows: rows, items: items, ports: ports, portItems: portItems)
    }

    func json(_ r: ConnectionRow) -> ArraySlice<UInt8> {
        items[(items.startIndex + r.item.lowerBound)..<(items.startIndex + r.item.upperBound)]
    }

    func portJSON(_ r: PortRow, _ access: ReadAccess) -> ArraySlice<UInt8> {
        let range = access == .viewer ? r.viewerItem : r.item
        return portItems[(portItems.startIndex + range.lowerBound)..<(portItems.startIndex + range.upperBound)]
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
        var names: [Int32: String?] = [:]
        func name(_ pid: Int32) -> String? {
            if let n = names[pid] { return n }
            let n = sockets.comm(pid)
            names[pid] = n
            return n
        }
        var items = [UInt8]()
        var index = ByteWriter(capacity: socks.count * 24)
        for s in socks {
            let pid = owners[s.inode]?.first
            var w = JSONWriter(capacity: 256)
            w.beginObject()
            w.field("proto", s.proto.name)
            w.field("local_address", s.localAddress)
            w.field("local_port", Int(s.localPort))
            w.field("remote_address", s.remoteAddress)
            w.field("remote_port", Int(s.remotePort))
            w.field("state", s.stateName)
            w.field("pid", pid.map { Int($0) })
            w.field("process_name", pid.flatMap(name))
            w.field("uid", Int(s.uid))
            w.field("user", users.name(s.uid))
            w.field("inode", s.inode)
            w.endObject()
            let item = items.count..<(items.count + w.bytes.count)
            items.append(contentsOf: w.bytes)
            ConnectionRow(proto: s.proto.rawValue, state: s.state, localPort: s.localPort, remotePort: s.remotePort,
                          pid: pid ?? -1, item: item).encode(&index)
        }
        var portItems = [UInt8]()
        var portIndex = ByteWriter()
        for e in ListeningEndpoint.group(socks, owners: owners) {
            var p = JSONWriter(capacity: 256)
            p.beginObject()
            p.field("port", Int(e.port))
            p.field("proto", e.proto.name)
            p.field("address", e.address)
            p.field("status", e.status)
            // The anonymous form is the viewer's without its owner fields.
            let item = portItems.count..<(portItems.count + p.bytes.count + 1)
            portItems.append(contentsOf: p.bytes)
            portItems.append(UInt8(ascii: "}"))
            p.field("pid", e.pids.first.map { Int($0) })
            p.field("process_name", e.pids.first.flatMap(name))
            p.beginArray("pids")
            for pid in e.pids { p.int(Int(pid)) }
            p.endArray()
            p.beginArray("processes")
            for pid in e.pids { p.string(name(pid)) }
            p.endArray()
            p.field("user", users.name(e.uid))
            p.endObject()
            let viewerItem = portItems.count..<(portItems.count + p.bytes.count)
            portItems.append(contentsOf: p.bytes)
            PortRow(proto: e.proto.rawValue, localPort: e.port, item: item, viewerItem: viewerItem).encode(&portIndex)
        }
        return BuiltSnapshot(itemCount: socks.count,
                             sections: [(.items, items), (.index, index.bytes), (.portItems, portItems),
                                        (.portIndex, portIndex.bytes)])
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

    func matches(_ r: PortRow) -> Bool {
        Int(r.localPort) >= from && Int(r.localPort) <= to && (protos?.contains(r.proto) ?? true)
    }
}
