import Glibc

/// `/api/system/info`: host identity. Cheap enough to read per request (a
/// few small files), so it bypasses the snapshot cache.
enum SystemInfo {
    static func write(_ w: inout JSONWriter, host: HostScanner) {
        var u = utsname()
        uname(&u)
        func field<T>(_ v: inout T) -> String {
            withUnsafeBytes(of: &v) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let sys = field(&u.sysname), release = field(&u.release), version = field(&u.version)
        let machine = field(&u.machine), node = field(&u.nodename)
        let os = osRelease(host.reader)
        let cpu = host.cpuInfo()
        let mem = host.meminfo()
        let uptime = host.uptime() ?? 0
        let boot = HostConstants.bootTime(host.reader) ?? (Clock.wallSeconds() - uptime)
        w.beginObject()
        w.field("os", sys)
        w.field("hostname", node)
        w.field("uptime", uptime, places: 0)
        w.field("uptime_seconds", uptime, places: 0)
        w.field("platform", sys)
        w.field("platform_release", release)
        w.field("platform_version", version)
        w.field("arch", machine)
        w.field("processor", cpu.model.isEmpty ? machine : cpu.model)
        w.field("totalMemory", mem["MemTotal"] ?? 0)
        w.field("cpuCores", cpu.logical)
        w.field("cpuCoresPhysical", cpu.physical)
        w.field("boot_time", Clock.iso8601(boot))
        w.field("boot_time_epoch", boot, places: 0)
        w.beginObject("kernel")
        w.field("name", sys)
        w.field("release", release)
        w.field("version", version)
        w.endObject()
        w.beginObject("distribution")
        w.field("id", os["ID"])
        w.field("name", os["NAME"])
        w.field("version", os["VERSION"])
        w.field("version_id", os["VERSION_ID"])
        w.field("pretty_name", os["PRETTY_NAME"])
        w.endObject()
        w.field("success", true)
        w.endObject()
    }

    static func osRelease(_ reader: ProcReader) -> [String: String] {
        guard let text = reader.string("/etc/os-release") ?? reader.string("/usr/lib/os-release") else { return [:] }
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            var v = line[line.index(after: eq)...]
            if v.count >= 2, let f = v.first, f == "\"" || f == "'", v.last == f { v = v.dropFirst().dropLast() }
            out[String(line[..<eq])] = String(v)
        }
        return out
    }
}
