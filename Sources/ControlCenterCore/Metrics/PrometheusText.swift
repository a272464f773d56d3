/// Writes the Prometheus text exposition format, version 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/): `# HELP`
/// and `# TYPE` once per family, then `name{label="value",...} value` lines.
/// Label values are escaped (`\\`, `\"`, `\n`); values are Go-style floats
/// (`+Inf`, `NaN`), whole numbers without a decimal point.
public struct PrometheusText {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 16 << 10) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// `type` is counter, gauge, histogram or untyped.
    public mutating func family(_ name: String, _ type: String, _ help: String) {
        append("# HELP \(name) ")
        for c in help.utf8 {
            switch c {
            case 0x5C: append("\\\\")
            case 0x0A: append("\\n")
            default: bytes.append(c)
            }
        }
        append("\n# TYPE \(name) \(type)\n")
    }

    public mutating func sample(_ name: String, _ value: Double) {
        sample(name, labels: [], value)
    }

    public mutating func sample(_ name: String, _ labels: KeyValuePairs<String, String>, _ value: Double) {
        sample(name, labels: labels.map { ($0.key, $0.value) }, value)
    }

    public mutating func sample(_ name: String, labels: [(String, String)], _ value: Double) {
        append(name)
        if !labels.isEmpty {
            bytes.append(0x7B)
            var first = true
            for (k, v) in labels {
                if !first { bytes.append(0x2C) }
                first = false
                append(k)
                append("=\"")
                Self.escapeLabel(v, into: &bytes)
                bytes.append(0x22)
            }
            bytes.append(0x7D)
        }
        bytes.append(0x20)
        append(Self.format(value))
        bytes.append(0x0A)
    }

    /// A whole line already in exposition form (from a metrics file or a
    /// snapshot's pre-rendered section).
    public mutating func raw<C: Collection>(_ line: C) where C.Element == UInt8 {
        bytes.append(contentsOf: line)
    }

    mutating func append(_ s: String) { bytes.append(contentsOf: s.utf8) }

    static func escapeLabel(_ v: String, into out: inout [UInt8]) {
        for c in v.utf8 {
            switch c {
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x0A: out.append(0x5C); out.append(0x6E)
            default: out.append(c)
            }
        }
    }

    public static func escapeLabel(_ v: String) -> String {
        var out: [UInt8] = []
        escapeLabel(v, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Whole numbers up to 2^53 as integers, others with Swift's shortest
    /// round-tripping form, which Prometheus parses as Go's ParseFloat does.
    public static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 9_007_199_254_740_992 { return String(Int64(v)) }
        return "\(v)"
    }
}
