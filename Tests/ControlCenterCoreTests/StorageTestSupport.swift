@testable import ControlCenterCore
import Foundation
import XCTest

/// Which engine a test case runs on. The PostgreSQL variants need
/// `CC_TEST_POSTGRES_URL` (Scripts/test starts a throwaway cluster and sets
/// it); without it they skip, saying so.
enum TestEngine: String {
    case sqlite, postgres

    static var postgresURL: String? {
        ProcessInfo.processInfo.environment["CC_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func databaseURL(stateDir: String) throws -> String {
        switch self {
        case .sqlite: return "sqlite://\(stateDir)/test.db"
        case .postgres:
            guard let url = Self.postgresURL else {
                throw XCTSkip("PostgreSQL variant skipped: CC_TEST_POSTGRES_URL is not set (Scripts/test sets it; or source Scripts/lib/postgres.sh and run cc_pg_start)")
            }
            return url
        }
    }
}

/// An in-process worker on a fresh database: a real router and
/// WorkerContext, no nginx. PostgreSQL gets an empty `public` schema per
/// harness, so tests never see each other's rows.
final class StorageHarness {
    static let secret = "test-secret-0123456789abcdef0123456789abcdef"
    let engine: TestEngine
    let dir: String
    let config: Config
    let ctx: WorkerContext
    let router: Router
    var adminToken = ""
    var adminID: Int64 = 0

    /// The generated first-admin password, as read from its file.
    var generatedAdminPassword = ""
    var logPath: String { dir + "/master.log" }

    /// `changeFirstAdminPassword: false` leaves the first admin as a new
    /// install has it (with no `adminToken`).
    init(_ engine: TestEngine, settings: [String: String] = [:], changeFirstAdminPassword: Bool = true) throws {
        PasswordHasher.useMinimalCostForTests()
        self.engine = engine
        dir = NSTemporaryDirectory() + "cc-store-test-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var values = ["CC_STATE_DIR": dir, "CC_JWT_SECRET": Self.secret, "CC_TEST_ROUTES": "true",
                      "CC_DATABASE_URL": try engine.databaseURL(stateDir: dir), "CC_DB_TIMEOUT": "2"]
        for (k, v) in settings { values[k] = v }
        config = try Config(values: values)
        if engine == .postgres { try Self.resetPostgres(config) }
        ctx = WorkerContext(config: config, log: Log(path: "off"), pool: "storage")
        router = Application.makeRouter(config: config)
        let report = try StorageSetup.prepare(config, log: Log(path: dir + "/master.log"))
        let generated = try Self.firstAdminPassword(try XCTUnwrap(report.adminPasswordFile))
        generatedAdminPassword = generated
        adminID = 1
        guard changeFirstAdminPassword else { return }
        // The generated admin must change its password before anything else.
        let first = try login("admin", generated)
        let changed = call("POST", "/api/auth/change-password",
                           json: ["current_password": generated, "new_password": Self.adminPassword], token: first)
        XCTAssertEqual(changed.status, 200, String(decoding: changed.body, as: UTF8.self))
        adminToken = try XCTUnwrap(try object(changed)["access_token"] as? String)
    }

    /// The first admin's password once it has changed the generated one.
    static let adminPassword = "admin-password-after-setup"

    static func firstAdminPassword(_ path: String) throws -> String {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.trimmingCharacters(in: .newlines)
    }

    deinit {
        StorageService.shared(ctx).close()
        try? FileManager.default.removeItem(atPath: dir)
    }

    static func resetPostgres(_ config: Config) throws {
        let db = try StorageService.open(config)
        defer { db.close() }
        try db.execute("DROP SCHEMA IF EXISTS public CASCADE", [])
        try db.execute("CREATE SCHEMA public", [])
    }

    /// A second, independent connection (as another worker would have).
    func openConnection() throws -> Database { try StorageService.open(config) }

    @discardableResult
    func call(_ method: String, _ path: String, json: Any? = nil, body: String? = nil, token: String? = nil,
              headers: [String: String] = [:], remote: String = "10.0.0.1") -> Response {
        var h = headers
        var bytes: [UInt8] = []
        if let json {
            bytes = Array(try! JSONSerialization.data(withJSONObject: json, options: [.fragmentsAllowed]))
            h["content-type"] = h["content-type"] ?? "application/json"
        } else if let body {
            bytes = Array(body.utf8)
        }
        if let token { h["authorization"] = "Bearer \(token)" }
        let (p, q) = path.split(separator: "?", maxSplits: 1).map(String.init).pairOrSingle
        let req = Request(method: method, path: p, rawQuery: q, headers: h, body: bytes,
                          requestID: "test", remoteAddress: remote)
        return router.handle(req, context: ctx)
    }

    func object(_ r: Response, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let any = try? JSONSerialization.jsonObject(with: Data(r.body))
        return try XCTUnwrap(any as? [String: Any], "not a JSON object: \(String(decoding: r.body, as: UTF8.self))",
                             file: file, line: line)
    }

    func errorCode(_ r: Response) -> String? {
        ((try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any])
            .flatMap { $0["error"] as? [String: Any] }?["code"] as? String
    }

    func login(_ user: String, _ password: String) throws -> String {
        let r = call("POST", "/api/auth/login", json: ["username": user, "password": password])
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        return try XCTUnwrap(try object(r)["access_token"] as? String)
    }

    /// Creates a user through the admin route and logs it in.
    func makeUser(_ name: String, role: String, password: String = "password-123") throws -> (id: Int64, token: String) {
        let r = call("POST", "/api/auth/register", json: ["username": name, "password": password, "role": role],
                     token: adminToken)
        XCTAssertEqual(r.status, 201, String(decoding: r.body, as: UTF8.self))
        let id = try XCTUnwrap(try object(r)["id"] as? Int)
        return (Int64(id), try login(name, password))
    }

    func signer() -> JWTSigner { JWTSigner(secret: Array(Self.secret.utf8)) }

    func count(_ sql: String, _ params: [DBValue] = []) throws -> Int {
        try StorageService.shared(ctx).run { try $0.queryOne(sql, params)?.int(0) ?? -1 }
    }
}

extension Array where Element == String {
    var pairOrSingle: (String, String) { (self.first ?? "", count > 1 ? self[1] : "") }
}

/// Strings that would do damage if any code built SQL from them.
let injectionStrings = [
    "x'; DROP TABLE users; --",
    "\" OR \"1\"=\"1",
    "1; DELETE FROM events WHERE 1=1; --",
    "admin'--",
    "'); INSERT INTO users (username) VALUES ('evil'); --",
    "%_\\ ? $1 :name",
]

/// Tests that run once per engine subclass this and read `engine`.
class StorageTestCase: XCTestCase {
    class var engine: TestEngine { .sqlite }
    var h: StorageHarness!

    override func setUpWithError() throws {
        h = try StorageHarness(Self.engine)
    }

    override func tearDown() {
        h = nil
    }
}
