@testable import ControlCenterCore
import Foundation
import XCTest

final class QueryParametersTests: XCTestCase {
    func testDecoding() {
        let q = QueryParameters(parsing: "a=1&b=hello+world&c=%41%42&d&e=&a=2&f=%zz&g=%E2%9C%93")
        XCTAssertEqual(q["a"], "1")
        XCTAssertEqual(q.all("a"), ["1", "2"])
        XCTAssertEqual(q["b"], "hello world")
        XCTAssertEqual(q["c"], "AB")
        XCTAssertEqual(q["d"], "")
        XCTAssertEqual(q["e"], "")
        XCTAssertEqual(q["f"], "%zz", "invalid escapes stay literal")
        XCTAssertEqual(q["g"], "✓")
        XCTAssertNil(q["missing"])
        XCTAssertTrue(QueryParameters(parsing: "").pairs.isEmpty)
    }

    func testInvalidUTF8IsRepairedNotFatal() {
        XCTAssertEqual(QueryParameters(parsing: "x=%FF").pairs.count, 1)
    }
}

final class JSONWriterTests: XCTestCase {
    func parse(_ w: JSONWriter) throws -> Any { try JSONSerialization.jsonObject(with: Data(w.bytes), options: [.fragmentsAllowed]) }

    func testNestedStructuresAreValidJSON() throws {
        var w = JSONWriter()
        w.beginObject()
        w.field("s", "quote \" backslash \\ newline \n tab \t ctrl \u{01} é ✓")
        w.field("i", -42)
        w.field("u", UInt64.max)
        w.field("b", true)
        w.nullField("n")
        w.beginArray("arr")
        w.int(1); w.string("two"); w.beginObject(); w.field("x", 1.5); w.endObject(); w.beginArray(); w.endArray()
        w.endArray()
        w.beginObject("empty")
        w.endObject()
        w.field("d", 3.14159, places: 3)
        w.field("nan", Double.nan)
        w.field("opt", nil as Int?)
        w.endObject()
        let obj = try XCTUnwrap(try parse(w) as? [String: Any])
        XCTAssertEqual(obj["s"] as? String, "quote \" backslash \\ newline \n tab \t ctrl \u{01} é ✓")
        XCTAssertEqual(obj["i"] as? Int, -42)
        XCTAssertEqual(obj["b"] as? Bool, true)
        XCTAssertTrue(obj["n"] is NSNull)
        XCTAssertEqual((obj["arr"] as? [Any])?.count, 4)
        XCTAssertEqual(obj["d"] as? Double, 3.142)
        XCTAssertTrue(obj["nan"] is NSNull)
        XCTAssertTrue(obj["opt"] is NSNull)
        XCTAssertTrue(String(decoding: w.bytes, as: UTF8.self).contains("18446744073709551615"))
    }

    func testDoubleFormatting() {
        func render(_ d: Double, _ p: Int = 2) -> String {
            var w = JSONWriter(); w.double(d, places: p); return String(decoding: w.bytes, as: UTF8.self)
        }
        XCTAssertEqual(render(0), "0")
        XCTAssertEqual(render(1.005, 1), "1")
        XCTAssertEqual(render(12.5), "12.5")
        XCTAssertEqual(render(-0.25), "-0.25")
        XCTAssertEqual(render(3.05), "3.05")
        XCTAssertEqual(render(-7.1), "-7.1")
        XCTAssertEqual(render(0.001, 3), "0.001")
        XCTAssertEqual(render(2.5, 0), "3")
        XCTAssertEqual(render(99.999), "100")
        XCTAssertEqual(render(1e20), "1e+20")
        XCTAssertEqual(render(.infinity), "null")
    }

    func testRawSplicesItems() throws {
        var w = JSONWriter()
        w.beginArray()
        w.raw(Array("{\"a\":1}".utf8))
        w.raw(Array("{\"a\":2}".utf8))
        w.endArray()
        XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), "[{\"a\":1},{\"a\":2}]")
    }
}

final class WorkerStatusRecordTests: XCTestCase {
    func testRoundTrip() {
        let r = WorkerStatusRecord(pid: 42, pool: "main", slot: 3, startedMillis: 1_700_000_000_000, served: 17,
                                   busy: true, sinceMillis: 1_700_000_000_500, method: "GET", path: "/api/x y")
        let bytes = r.encoded()
        XCTAssertEqual(bytes.count, WorkerStatusRecord.size)
        let back = WorkerStatusRecord(decoding: bytes)
        XCTAssertEqual(back?.pid, 42)
        XCTAssertEqual(back?.busy, true)
        XCTAssertEqual(back?.path, "/api/x_y")
        XCTAssertEqual(back?.served, 17)
        let idle = WorkerStatusRecord(pid: 1, pool: "storage", slot: 0, startedMillis: 1)
        XCTAssertEqual(WorkerStatusRecord(decoding: idle.encoded())?.method, "")
    }

    func testTornRecordIsRejected() {
        var bytes = WorkerStatusRecord(pid: 42, pool: "main", slot: 0, startedMillis: 1).encoded()
        bytes.replaceSubrange(20..<WorkerStatusRecord.size, with: [UInt8](repeating: 0x20, count: WorkerStatusRecord.size - 20))
        XCTAssertNil(WorkerStatusRecord(decoding: bytes))
        XCTAssertNil(WorkerStatusRecord(decoding: []))
    }

    func testDirectoryReadsFilesWrittenByWriter() throws {
        let dir = NSTemporaryDirectory() + "cc-status-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try XCTUnwrap(WorkerStatusWriter(directory: dir, record: WorkerStatusRecord(pid: getpid(), pool: "main", slot: 0, startedMillis: 5)))
        w.begin(method: "POST", path: "/api/events", nowMillis: 10)
        XCTAssertEqual(WorkerStatusDirectory.readAll(directory: dir).first?.busy, true)
        w.end(nowMillis: 20)
        let r = try XCTUnwrap(WorkerStatusDirectory.readAll(directory: dir).first)
        XCTAssertFalse(r.busy)
        XCTAssertEqual(r.served, 1)
        XCTAssertEqual(r.sinceMillis, 20)
    }
}
