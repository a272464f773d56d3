@testable import ControlCenterCore
import Foundation
import XCTest

/// `q=` text search: the trigram index (FTS5 on SQLite, pg_trgm on
/// PostgreSQL) must answer exactly what the scan answers. Every search here
/// runs three ways (the request path, the index forced, the scan forced) and
/// all three must equal the expected rows.
class EventSearchTests: StorageTestCase {
    var repo: EventRepository!

    override func setUpWithError() throws {
        try super.setUpWithError()
        repo = EventRepository(try StorageService.shared(h.ctx).database())
    }

    override func tearDown() {
        repo = nil
        super.tearDown()
    }

    /// Enough older rows that SQLite's probe window (1000 rows) does not
    /// cover the table, so `.automatic` reaches the index too.
    func insertFiller(_ n: Int = 1200, ts base: Int64 = 1_600_000_000_000) throws {
        let db = try StorageService.shared(h.ctx).database()
        try db.transaction {
            for i in 0..<n {
                try repo.insert(Event(ts: base + Int64(i), level: .info, source: "filler", actor: nil, action: "noop",
                                      target: "host-\(i % 7)", message: "routine check \(i) passed"))
            }
        }
    }

    @discardableResult
    func add(_ message: String, action: String? = nil, target: String? = nil, level: EventLevel = .info,
             ts: Int64 = 1_700_000_000_000) throws -> Int64 {
        try repo.insert(Event(ts: ts, level: level, source: "t", actor: nil, action: action, target: target, message: message))
    }

    /// Ids found for `text` (plus `filter`), asserting the three ways agree.
    func search(_ text: String, _ filter: (inout EventFilter) -> Void = { _ in },
                file: StaticString = #filePath, line: UInt = #line) throws -> [Int64] {
        var f = EventFilter()
        f.text = text
        f.limit = 1000
        filter(&f)
        var answers: [[Int64]] = []
        for strategy in [EventRepository.TextStrategy.automatic, .index, .scan] {
            var r = repo!
            r.textStrategy = strategy
            answers.append(try r.list(f).map(\.id))
        }
        XCTAssertEqual(answers[0], answers[2], "automatic vs scan for \(text.debugDescription)", file: file, line: line)
        XCTAssertEqual(answers[1], answers[2], "index vs scan for \(text.debugDescription)", file: file, line: line)
        return answers[0]
    }

    func testFindsASubstringOfEachColumnInAnyCase() throws {
        try insertFiller()
        let m = try add("Backup of /srv/Photos FAILED: quota exceeded")
        let a = try add("user change", action: "user.PASSWORD_change")
        let t = try add("restart", target: "web-Frontend-07")
        try add("nothing to see", action: "noop", target: "host-x")
        XCTAssertEqual(try search("quota exc"), [m])
        XCTAssertEqual(try search("QUOTA EXC"), [m])
        XCTAssertEqual(try search("photos failed"), [m])
        XCTAssertEqual(try search("password_CH"), [a])
        XCTAssertEqual(try search("FRONTEND-0"), [t])
        XCTAssertEqual(try search("not-there-at-all"), [])
        let split = try add("ends with abc", action: "def starts", target: "ghi")
        XCTAssertEqual(try search("abc"), [split])
        XCTAssertEqual(try search("abcdef"), [], "a match never spans two columns")
        XCTAssertEqual(try search("abc def"), [])
        XCTAssertEqual(try search("startsghi"), [])
        XCTAssertEqual(try search("routine check 1199 passed").count, 1)
        XCTAssertEqual(try search("routine check 11").count, 111, "11, 110-119, 1100-1199")
    }

    func testSpecialCharactersAreLiteral() throws {
        try insertFiller()
        let pct = try add("disk 100% full")
        try add("disk 1000 full")
        let under = try add("key a_b set")
        try add("key axb set")
        let slash = try add(#"path C:\temp\x"#)
        try add(#"path C:/temp/x"#)
        let quotes = try add(#"it's "quoted" here"#)
        let german = try add("Grüße aus Köln")
        let japanese = try add("日本語のテキスト")
        let unitSep = try add("field\u{1F}separated")
        var injected: [String: Int64] = [:]
        for s in injectionStrings { injected[s] = try add("before \(s) after", target: s) }
        XCTAssertEqual(try search("0% f"), [pct])
        XCTAssertEqual(try search("100%"), [pct])
        XCTAssertEqual(try search("a_b"), [under])
        XCTAssertEqual(try search(#":\te"#), [slash])
        XCTAssertEqual(try search(#"\temp\"#), [slash])
        XCTAssertEqual(try search(#"'s "quoted"#), [quotes])
        XCTAssertEqual(try search(#""quoted""#), [quotes], "an FTS5 phrase delimiter in the text is literal")
        XCTAssertEqual(try search("Grüße"), [german])
        XCTAssertEqual(try search("grüße aus"), [german], "ASCII letters fold on both engines")
        XCTAssertEqual(try search("ße a"), [german])
        XCTAssertEqual(try search("日本語"), [japanese])
        XCTAssertEqual(try search("語のテ"), [japanese])
        XCTAssertEqual(try search("d\u{1F}s"), [unitSep], "the PostgreSQL index's column separator, in the text")
        for (s, id) in injected {
            XCTAssertEqual(try search(s), [id], s)
        }
        // Unicode case folding differs (FTS5 folds Ü to ü, SQLite's LIKE
        // does not, PostgreSQL's lower() does per locale); whatever the
        // engine's LIKE says, the index must say the same.
        try add("ÜBER-grenze")
        _ = try search("über-gr")
        _ = try search("ÜBER-GR")
        XCTAssertEqual(try search("%%%"), [])
        XCTAssertEqual(try search("___"), [])
        XCTAssertEqual(try search("* OR 1 NEAR(a b)"), [], "FTS5 query syntax is literal too")
        XCTAssertEqual(try h.count("SELECT COUNT(*) FROM users"), 1)
    }

    func testShortTextUsesTheScanWithTheSameAnswers() throws {
        try insertFiller(50)
        let pct = try add("100% done")
        let jp = try add("日本")
        let ab = try add("tab AB")
        XCTAssertFalse(EventTextSearch.indexable("ab"))
        XCTAssertFalse(EventTextSearch.indexable("日本"))
        XCTAssertTrue(EventTextSearch.indexable("日本語"))
        XCTAssertEqual(try search("%"), [pct])
        XCTAssertEqual(try search("日本"), [jp])
        XCTAssertEqual(try search("ab"), [ab])
        XCTAssertEqual(try search("49").count, 1)
    }

    func testCursorPagesThroughMatchesInOrder() throws {
        // Equal timestamps in runs, so the id tie-break and the cursor's
        // (ts, id) comparison both matter; rare and common text, so SQLite
        // takes the probe, the continued scan and the index.
        let db = try StorageService.shared(h.ctx).database()
        var rare: [Int64] = [], common: [Int64] = []
        try db.transaction {
            for i in 0..<3000 {
                let msg = (i % 97 == 0 ? "rare-needle " : "") + (i % 3 == 0 ? "common-hay " : "") + "row \(i)"
                let id = try repo.insert(Event(ts: 1_700_000_000_000 + Int64(i / 4), level: i % 2 == 0 ? .error : .info,
                                               source: "p", actor: nil, action: nil, target: nil, message: msg))
                if i % 97 == 0 { rare.append(id) }
                if i % 3 == 0 { common.append(id) }
            }
        }
        for (text, expected) in [("RARE-needle", rare), ("common-hay", common)] {
            XCTAssertEqual(try search(text), expected.reversed(), text)
            for limit in [7, 100] {
                var seen: [Int64] = []
                var cursor: String?
                repeat {
                    let r = h.call("GET", "/api/events?q=\(text)&limit=\(limit)" + (cursor.map { "&cursor=\($0)" } ?? ""),
                                   token: h.adminToken)
                    XCTAssertEqual(r.status, 200)
                    let o = try h.object(r)
                    seen += (o["events"] as? [[String: Any]] ?? []).compactMap { ($0["id"] as? Int).map(Int64.init) }
                    cursor = o["next_cursor"] as? String
                } while cursor != nil && seen.count <= expected.count
                XCTAssertEqual(seen, expected.reversed(), "\(text) in pages of \(limit)")
            }
            var f = EventFilter()
            f.text = text
            f.limit = 5
            f.cursor = (1_700_000_000_000 + 500, Int64.max)
            var r = repo!
            r.textStrategy = .scan
            let scanned = try r.list(f).map(\.id)
            r.textStrategy = .automatic
            XCTAssertEqual(try r.list(f).map(\.id), scanned)
            r.textStrategy = .index
            XCTAssertEqual(try r.list(f).map(\.id), scanned)
        }
    }

    func testTheProbeWindowsEdgeRowIsFoundOnce() throws {
        // 1500 rows, newer than the harness's audit events; the text is in
        // the 999th, 1000th (the probe window's last row for limit 100) and
        // 1001st newest, which share a timestamp, so the edge is decided by id.
        let db = try StorageService.shared(h.ctx).database()
        var marked: [Int64] = []
        try db.transaction {
            for i in 0..<1500 {
                let edge = (499...501).contains(i)
                let id = try repo.insert(Event(ts: 4_000_000_000_000 + Int64(edge ? 500 : i), level: .info, source: "w",
                                               actor: nil, action: nil, target: nil,
                                               message: (edge ? "edge-marker " : "") + "row \(i)"))
                if edge { marked.append(id) }
            }
        }
        XCTAssertEqual(EventTextSearch.window(limit: 100), 1000)
        var f = EventFilter()
        f.text = "edge-marker"
        f.limit = 100
        XCTAssertEqual(try repo.list(f).map(\.id), marked.reversed())
        f.limit = 2
        XCTAssertEqual(try repo.list(f).map(\.id), Array(marked.reversed().prefix(2)))
    }

    func testCombinesWithLevelSourceAndTimeFilters() throws {
        try insertFiller()
        let base: Int64 = 1_700_000_000_000
        let e1 = try add("needle in error", level: .error, ts: base)
        let w1 = try add("needle in warning", level: .warning, ts: base + 1000)
        let e2 = try add("needle again", level: .error, ts: base + 2000)
        try add("hay only", level: .error, ts: base + 3000)
        XCTAssertEqual(try search("needle"), [e2, w1, e1])
        XCTAssertEqual(try search("needle") { $0.level = .error }, [e2, e1])
        XCTAssertEqual(try search("needle") { $0.level = .critical }, [])
        XCTAssertEqual(try search("needle") { $0.source = "t"; $0.since = base + 500 }, [e2, w1])
        XCTAssertEqual(try search("needle") { $0.until = base + 2000 }, [w1, e1])
        XCTAssertEqual(try search("routine") { $0.level = .error }, [])
        XCTAssertEqual(try search("needle") { $0.limit = 2 }, [e2, w1])
        let o = try h.object(h.call("GET", "/api/events?q=NEEDLE&level=error&limit=1", token: h.adminToken))
        XCTAssertEqual((o["events"] as? [[String: Any]])?.first?["id"] as? Int, Int(e2))
        XCTAssertEqual(o["next_cursor"] as? String, "\(base + 2000)_\(e2)")
    }

    func testWritesKeepTheIndexInStep() throws {
        try insertFiller()
        let id = try add("first wording")
        XCTAssertEqual(try search("first word"), [id])
        // Events are append-only in the API, but a hand-run UPDATE or
        // retention DELETE must not leave the index pointing at old text.
        let db = try StorageService.shared(h.ctx).database()
        try db.execute("UPDATE events SET message = ? WHERE id = ?", [.text("second wording"), .int(id)])
        XCTAssertEqual(try search("first word"), [])
        XCTAssertEqual(try search("second word"), [id])
        try db.execute("DELETE FROM events WHERE id = ?", [.int(id)])
        XCTAssertEqual(try search("second word"), [])
        if db.engine == .sqlite {
            try db.execute("INSERT INTO events_fts (events_fts) VALUES ('integrity-check')", [])
        }
        // An audit event is written by the change's own transaction, trigger included.
        XCTAssertEqual(h.call("POST", "/api/auth/register", json: ["username": "searchable-user", "password": "password-123", "role": "viewer"],
                              token: h.adminToken).status, 201)
        XCTAssertEqual(try search("searchable-us").count, 1)
    }
}

/// The same tests on PostgreSQL. Each is re-declared because Linux XCTest
/// discovery lists only the methods a class declares itself.
final class EventSearchPostgresTests: EventSearchTests {
    override class var engine: TestEngine { .postgres }
    override func testFindsASubstringOfEachColumnInAnyCase() throws { try super.testFindsASubstringOfEachColumnInAnyCase() }
    override func testSpecialCharactersAreLiteral() throws { try super.testSpecialCharactersAreLiteral() }
    override func testShortTextUsesTheScanWithTheSameAnswers() throws { try super.testShortTextUsesTheScanWithTheSameAnswers() }
    override func testCursorPagesThroughMatchesInOrder() throws { try super.testCursorPagesThroughMatchesInOrder() }
    override func testCombinesWithLevelSourceAndTimeFilters() throws { try super.testCombinesWithLevelSourceAndTimeFilters() }
    override func testTheProbeWindowsEdgeRowIsFoundOnce() throws { try super.testTheProbeWindowsEdgeRowIsFoundOnce() }
    override func testWritesKeepTheIndexInStep() throws { try super.testWritesKeepTheIndexInStep() }
}
