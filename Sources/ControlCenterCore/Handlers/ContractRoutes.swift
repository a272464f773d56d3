import Foundation

/// `GET /openapi.yaml`: the API contract `/` advertises, docs/openapi.yaml as
/// built into this binary's resources (Package.swift), so the document
/// served is the one this binary was tested against, whatever is installed
/// beside it. Read once per worker, on first request.
public enum ContractRoutes {
    final class Spec {
        let bytes: [UInt8]?
        init() {
            bytes = Bundle.module.url(forResource: "openapi", withExtension: "yaml")
                .flatMap { try? Data(contentsOf: $0) }.map { [UInt8]($0) }
        }
    }

    public static func register(_ r: inout Router) {
        r.get("/openapi.yaml") { _, ctx in
            guard let bytes = ctx.service(Spec.self, make: Spec.init).bytes else {
                throw APIError.internal("openapi.yaml is missing from the control-center resources")
            }
            return Response(status: 200, headers: [("Content-Type", "application/yaml")], body: bytes)
        }
    }
}
