import Foundation

/// The two things Foundation's `JSONSerialization` accepts although RFC 8259
/// does not allow or define them: a trailing comma (`{"a":1,}`, `[1,]`) and a
/// repeated member name in one object (it keeps the last value silently, so
/// `{"role":"viewer","role":"admin"}` could mean different things to a proxy
/// that checked the first). Measured with Swift 6.3.1 on Linux; every other
/// deviation tried (comments, NaN, leading zeros, single quotes, trailing
/// text) is already refused by the parser. A leading byte-order mark is
/// accepted, as RFC 8259 §8.1 allows a parser to.
///
/// Run on bytes the parser accepted, so it needs to track only strings,
/// nesting and the last significant byte.
enum StrictJSON {
    /// Why `bytes` is not strict JSON, or nil.
    static func problem(_ bytes: [UInt8]) -> String? {
        struct Level {
            let isObject: Bool
            var expectsKey: Bool
            var keys: Set<[UInt8]> = []
        }
        var stack: [Level] = []
        var last: UInt8 = 0   // previous byte outside strings and white space
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""):
                let start = i + 1
                var escaped = false
                i += 1
                while i < bytes.count, !(bytes[i] == UInt8(ascii: "\"") && !escaped) {
                    escaped = bytes[i] == UInt8(ascii: "\\") && !escaped
                    i += 1
                }
                if var top = stack.last, top.isObject, top.expectsKey {
                    let key = decodedKey(Array(bytes[start..<min(i, bytes.count)]))
                    guard top.keys.insert(key).inserted else {
                        return "member \"\(String(decoding: key, as: UTF8.self))\" appears twice in one object"
                    }
                    top.expectsKey = false
                    stack[stack.count - 1] = top
                }
                last = UInt8(ascii: "\"")
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                stack.append(Level(isObject: b == UInt8(ascii: "{"), expectsKey: b == UInt8(ascii: "{")))
                last = b
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if last == UInt8(ascii: ",") { return "trailing comma before '\(Character(Unicode.Scalar(b)))'" }
                stack.removeLast()
                last = b
            case UInt8(ascii: ","):
                if stack.last?.isObject == true { stack[stack.count - 1].expectsKey = true }
                last = b
            case 0x20, 0x09, 0x0A, 0x0D:
                break
            default:
                last = b
            }
            i += 1
        }
        return nil
    }

    /// A member name as its characters, so `"a"` and `"\u0061"` are one name.
    private static func decodedKey(_ raw: [UInt8]) -> [UInt8] {
        guard raw.contains(UInt8(ascii: "\\")) else { return raw }
        let quoted = [UInt8(ascii: "\"")] + raw + [UInt8(ascii: "\"")]
        guard let s = try? JSONSerialization.jsonObject(with: Data(quoted), options: [.fragmentsAllowed]) as? String else {
            return raw
        }
        return Array(s.utf8)
    }
}
