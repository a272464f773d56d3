@testable import ControlCenterCore
import Foundation
import XCTest

/// The router and docs/openapi.yaml must list the same operations.
final class OpenAPIContractTests: XCTestCase {
    static let methods: Set<String> = ["get", "post", "put", "delete", "patch"]

    /// Reads `paths:` from the spec: two-space-indented path keys and the
    /// four-space-indented method keys under them. Enough YAML for our file.
    func specOperations() throws -> Set<String> {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/openapi.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        var ops = Set<String>()
        var inPaths = false
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("paths:") { inPaths = true; continue }
            if inPaths, let f = line.first, f != " " { inPaths = false }
            guard inPaths else { continue }
            if line.hasPrefix("  /") && line.hasSuffix(":") && !line.hasPrefix("   ") {
                current = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    ") && !line.hasPrefix("     "), let path = current {
                let key = line.trimmingCharacters(in: .whitespaces).dropLast()
                if line.hasSuffix(":"), Self.methods.contains(String(key)) { ops.insert("\(key.uppercased()) \(path)") }
            }
        }
        return ops
    }

    func testRouterAndSpecAgree() throws {
        let router = Application.makeRouter(config: try Config(values: [:]))
        let routed = Set(router.routes.map { "\($0.method) \($0.pattern)" })
        let spec = try specOperations()
        XCTAssertFalse(spec.isEmpty)
        XCTAssertEqual(routed.subtracting(spec).sorted(), [], "routes missing from docs/openapi.yaml")
        XCTAssertEqual(spec.subtracting(routed).sorted(), [], "spec operations with no route")
    }
}
