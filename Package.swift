// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "control-center",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "control-center", targets: ["control-center"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        // C libraries from Debian, each behind its own module.
        .systemLibrary(name: "CFastCGI", path: "Sources/CFastCGI", pkgConfig: "fcgi"),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3"),
        .systemLibrary(name: "CPostgres", path: "Sources/CPostgres", pkgConfig: "libpq"),
        .systemLibrary(name: "CSodium", path: "Sources/CSodium", pkgConfig: "libsodium"),
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl"),
        // glibc extensions and async-signal-safe handlers Swift cannot express.
        .target(
            name: "CSupport", path: "Sources/CSupport",
            cSettings: [.define("_GNU_SOURCE")], linkerSettings: [.linkedLibrary("fcgi")]
        ),
        .target(
            name: "ControlCenterCore",
            dependencies: [
                "CFastCGI", "CSQLite", "CPostgres", "CSodium", "CSupport", "CCurl",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/ControlCenterCore",
            // nginx runs cc_live_resume.lua (the live channels' resume ids); the
            // nginx-config command installs it.
            // openapi.yaml links to docs/openapi.yaml, served at GET /openapi.yaml.
            resources: [.copy("NginxConfig/cc_live_resume.lua"), .copy("../../docs/openapi.yaml")]
        ),
        // The collector (it publishes with libcurl, as the supervisor probes with it).
        .target(name: "ControlCenterLive", dependencies: ["ControlCenterCore", "CCurl", "CSupport"],
                path: "Sources/ControlCenterLive"),
        .executableTarget(
            name: "control-center",
            dependencies: [
                "ControlCenterCore", "ControlCenterLive",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/control-center"
        ),
        .testTarget(name: "ControlCenterCoreTests", dependencies: ["ControlCenterCore", "ControlCenterLive"],
                    path: "Tests/ControlCenterCoreTests"),
        // ControlCenterLive: NotificationDeliveryTests drive the collector's Notifier directly.
        .testTarget(name: "IntegrationTests", dependencies: ["ControlCenterCore", "ControlCenterLive"], path: "Tests/IntegrationTests",
                    exclude: ["Support/live_client.py", "Support/ui_check.py", "Support/ui_redraw.py", "Support/ui_series_check.js", "Support/webhook_receiver.py"]),
    ],
    swiftLanguageModes: [.v6]
)
