@testable import ControlCenterCore
import Foundation
import XCTest

/// What `control-center nginx-config` renders, as text (no nginx here;
/// IntegrationTests/NginxConfigTests runs nginx -t and real requests).
final class NginxRenderTests: XCTestCase {
    private func render(_ v: [String: String] = [:], bench: Bool = false) throws -> [String: String] {
        var values = ["CC_STATE_DIR": "/srv/cc"]
        for (k, x) in v { values[k] = x }
        let r = NginxRender(config: try Config(values: values), directory: "/srv/cc/nginx", bench: bench)
        return Dictionary(uniqueKeysWithValues: try r.files().map { ($0.name, $0.contents) })
    }

    func testServingConfigHasNoBenchLocations() throws {
        let files = try render()
        XCTAssertFalse(files.values.contains { $0.contains("__bench") })
        XCTAssertNil(files["control-center-bench.conf"])
        let bench = try render(bench: true)
        XCTAssertTrue(bench["control-center-bench.conf"]?.contains("location = /__bench/return200") ?? false)
        XCTAssertTrue(bench["nginx.conf"]?.contains("include /srv/cc/nginx/control-center-bench.conf;") ?? false)
    }

    func testXForwardedForIsBelievedOnlyFromTrustedProxies() throws {
        let plain = try render()
        XCTAssertFalse(plain.values.contains { $0.contains("set_real_ip_from") || $0.contains("real_ip_header") })
        let trusted = try render(["CC_TRUSTED_PROXIES": "10.0.0.0/8,2001:db8::/32"])["control-center.conf"] ?? ""
        XCTAssertTrue(trusted.contains("set_real_ip_from 10.0.0.0/8;\nset_real_ip_from 2001:db8::/32;\n"))
        XCTAssertTrue(trusted.contains("real_ip_header X-Forwarded-For;\nreal_ip_recursive on;"))
    }

    func testHTTPSIsNginxsTLSOrATrustedProxysWord() throws {
        let plain = try render()
        XCTAssertTrue(plain["control-center-http.conf"]?.contains("geo $realip_remote_addr $cc_via_trusted_proxy {\n    default 0;\n}") ?? false)
        XCTAssertTrue(plain["control-center.conf"]?.contains("fastcgi_param HTTPS           $cc_https if_not_empty;") ?? false)
        let proxied = try render(["CC_TRUSTED_PROXIES": "10.0.0.0/8"])["control-center-http.conf"] ?? ""
        XCTAssertTrue(proxied.contains("geo $realip_remote_addr $cc_via_trusted_proxy {\n    default 0;\n    10.0.0.0/8 1;\n}"))
        XCTAssertTrue(proxied.contains("\"~^:1:https$\" on;"), "X-Forwarded-Proto counts only from a trusted proxy")
    }

    func testRateLimitExemptionIsTheSetting() throws {
        let http = try render()["control-center-http.conf"] ?? ""
        XCTAssertTrue(http.contains("geo $cc_limit_exempt {\n    default 0;\n    127.0.0.0/8 1;\n    ::1 1;\n}"))
        let none = try render(["CC_RATE_LIMIT_EXEMPT": ""])["control-center-http.conf"] ?? ""
        XCTAssertTrue(none.contains("geo $cc_limit_exempt {\n    default 0;\n}"))
        let rates = try render(["CC_RATE_LIMIT": "7", "CC_LOGIN_RATE_LIMIT": "3", "CC_RATE_BURST": "11"])
        XCTAssertTrue(rates["control-center-http.conf"]?.contains("zone=cc_api:10m rate=7r/s;") ?? false)
        XCTAssertTrue(rates["control-center-http.conf"]?.contains("zone=cc_login:10m rate=3r/m;") ?? false)
        XCTAssertTrue(rates["control-center.conf"]?.contains("limit_req zone=cc_api burst=11 nodelay;") ?? false)
    }

    func testHostMapAndTheCheck() throws {
        let files = try render()
        let http = files["control-center-http.conf"] ?? ""
        XCTAssertTrue(http.contains("map $host $cc_host_known {\n    hostnames;\n    default 0;\n    \"\" 1;\n"
                                    + "    \"localhost\" 1;\n    \"127.0.0.1\" 1;\n    \"[::1]\" 1;\n}"))
        XCTAssertTrue(files["control-center.conf"]?.contains("if ($cc_host_allowed = 0) {\n    return 421;\n}") ?? false)
    }

    func testEveryErrorPageIsJSONWithTheSecurityHeaders() throws {
        let snippet = try render()["control-center.conf"] ?? ""
        for (code, status, name) in [(400, 400, "bad_request"), (403, 403, "forbidden"), (405, 405, "method_not_allowed"),
                                     (413, 413, "payload_too_large"), (414, 414, "uri_too_long"),
                                     (421, 421, "misdirected_request"), (429, 429, "rate_limited"),
                                     (494, 431, "header_too_large"), (502, 502, "bad_gateway"),
                                     (503, 503, "service_unavailable"), (504, 504, "gateway_timeout")] {
            // Unreadable requests have no URI for a named location.
            let target = [400, 414].contains(code) ? "/.cc-error/\(code)" : "@cc_\(code)"
            XCTAssertTrue(snippet.contains("error_page \(code) = \(target);"), "\(code)")
            let start = try XCTUnwrap(snippet.range(of: "location \(target == "@cc_\(code)" ? "" : "= ")\(target) {"), "\(code)")
            let body = snippet[start.upperBound...].prefix { $0 != "}" }
            XCTAssertTrue(body.contains("include /srv/cc/nginx/control-center-headers.conf;"), "\(code) keeps the headers")
            XCTAssertTrue(body.contains("return \(status) '{\"error\":{\"code\":\"\(name)\""), "\(code)")
            XCTAssertTrue(body.contains("default_type application/json;"), "\(code)")
        }
    }

    func testUserListenAndModules() throws {
        let conf = try render(["CC_NGINX_USER": "www-data", "CC_HTTP_ADDR": "::1", "CC_HTTP_PORT": "9090",
                               "CC_NGINX_WORKERS": "3"])["nginx.conf"] ?? ""
        XCTAssertTrue(conf.contains("\nuser www-data;\n"))
        XCTAssertTrue(conf.contains("listen [::1]:9090 backlog=4096 reuseport;"))
        XCTAssertTrue(conf.contains("worker_processes 3;"))
        XCTAssertTrue(conf.contains("worker_rlimit_nofile 65536;") && conf.contains("worker_connections 65536;"),
                      "a connection per file a worker may open (live subscribers)")
        XCTAssertTrue(conf.contains("load_module /usr/lib/nginx/modules/ngx_nchan_module.so;"))
        XCTAssertTrue(conf.contains("load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"))
        XCTAssertFalse(conf.contains("ngx_http_echo_module"), "Lua stays, for the live channels' resume ids; echo went with the old views")
        XCTAssertNil(try render(["CC_PUBLIC_READ": "false"])["control-center-views.conf"])
        XCTAssertNil(try render(["CC_NGINX_VIEWS": "false"])["control-center-views.conf"])
    }

    /// The views cost no per-request code: a map decides, try_files sends.
    func testViewsAreMapsAndTryFilesOnly() throws {
        let files = try render()
        let views = try XCTUnwrap(files["control-center-views.conf"])
        for kind in ["processes", "stats", "network"] {
            XCTAssertTrue(views.contains("location = /api/system/\(kind) {"), kind)
            XCTAssertTrue(views.contains("try_files $cc_view_dir/\(kind).json @cc_view_worker;"), kind)
        }
        XCTAssertFalse(views.contains("connections"))
        let http = try XCTUnwrap(files["control-center-views-http.conf"])
        XCTAssertTrue(http.contains(#"map "$request_method:$is_args:$http_authorization:$cookie_cc_session" $cc_view_dir {"#))
        XCTAssertFalse(http.contains("$request_id"), "no RAND_bytes per view")
        let inc = try XCTUnwrap(files["control-center-view.inc"])
        XCTAssertTrue(inc.contains("add_header X-Request-ID $cc_view_request_id always;"))
        XCTAssertTrue(inc.contains("include /srv/cc/nginx/control-center-headers.conf;"))
        for name in ["control-center-views.conf", "control-center-views-http.conf", "control-center-view.inc"] {
            let text = try XCTUnwrap(files[name])
            XCTAssertFalse(text.contains("lua") || text.contains("echo_"), "\(name): no per-request code")
        }
    }

    func testLiveChannelsAreAlwaysRendered() throws {
        for files in [try render(), try render(["CC_NGINX_VIEWS": "false"]), try render(["CC_PUBLIC_READ": "false"])] {
            XCTAssertTrue(files["nginx.conf"]?.contains("load_module /usr/lib/nginx/modules/ngx_nchan_module.so;\n"
                                                        + "load_module /usr/lib/nginx/modules/ndk_http_module.so;\n"
                                                        + "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\n") ?? false,
                          "nchan, and Lua for the resume ids")
            XCTAssertTrue(files["control-center-http.conf"]?.contains("include /srv/cc/nginx/control-center-live-http.conf;") ?? false)
            XCTAssertTrue(files["control-center.conf"]?.contains("include /srv/cc/nginx/control-center-live.conf;") ?? false)
            XCTAssertNotNil(files["control-center-live.conf"])
            XCTAssertNotNil(files["control-center-live-http.conf"])
        }
    }

    func testLiveLocationsLimitsAndBuffer() throws {
        let files = try render(["CC_STREAM_BUFFER": "30/60", "CC_STREAM_MAX_PER_IP": "7"])
        let http = try XCTUnwrap(files["control-center-live-http.conf"])
        let server = try XCTUnwrap(files["control-center-live.conf"])
        // The publisher: only on the private socket, only the channels that exist.
        XCTAssertTrue(http.contains("listen unix:/srv/cc/run/publish/nchan.sock;"))
        XCTAssertTrue(http.contains("location ~ ^/pub/(" + (0..<16).map { "system\\.\($0)|" }.joined()
                                    + "events)$ {\n        nchan_publisher http;"), "16 shards by default")
        XCTAssertTrue(http.contains("nchan_message_buffer_length 30;\n        nchan_message_timeout 60s;"))
        XCTAssertFalse(server.contains("nchan_publisher"), "nothing public publishes")
        XCTAssertTrue(http.contains("limit_conn_zone $cc_limit_key zone=cc_stream:10m;"), "the rate-limit exemption applies")
        for location in ["location = /ws {", "location = /api/stream/system {", "location = /api/stream/events {"] {
            let body = try XCTUnwrap(Self.block(server, location), location)
            XCTAssertTrue(body.contains("limit_conn cc_stream 7;"), location)
            XCTAssertTrue(body.contains("nchan_subscriber_first_message newest;"), location)
            XCTAssertTrue(body.contains("nchan_subscriber_last_message_id $cc_resume_id;"), location)
            XCTAssertTrue(body.contains("access_by_lua_block { if ngx.worker.exiting() then return ngx.exit(444) end }"), location)
            XCTAssertTrue(body.contains("if ($cc_stream_bad_id) {"), location)
        }
        XCTAssertTrue(Self.block(server, "location = /ws {")?.contains("nchan_websocket_ping_interval 30;") ?? false)
        // Resume ids reach nchan only within what the buffer holds: 30 messages at one per second, 60 s for events.
        let lua = "set_by_lua_file $cc_resume_id /srv/cc/nginx/cc_live_resume.lua $http_last_event_id $arg_last_event_id"
        XCTAssertTrue(Self.block(server, "location = /ws {")?.contains(lua + " 30;") ?? false)
        XCTAssertTrue(Self.block(server, "location = /api/stream/system {")?.contains(lua + " 30;") ?? false)
        XCTAssertTrue(Self.block(server, "location = /api/stream/events {")?.contains(lua + " 60;") ?? false)
        let slow = try XCTUnwrap(try render(["CC_STREAM_BUFFER": "30/60", "CC_COLLECT_INTERVAL": "5"])["control-center-live.conf"])
        XCTAssertTrue(Self.block(slow, "location = /ws {")?.contains(lua + " 60;") ?? false, "the age bound when it is the smaller")
        XCTAssertTrue(server.contains("limit_conn_status 429;"))
    }

    func testHandshakeCheckAlwaysForEventsAndForSystemOnlyWhenNotPublic() throws {
        func authorizes(_ files: [String: String], _ location: String) -> Bool {
            Self.block(files["control-center-live.conf"] ?? "", location)?.contains("auth_request /.cc-stream-authorize") ?? false
        }
        let open = try render()
        XCTAssertFalse(authorizes(open, "location = /ws {"))
        XCTAssertFalse(authorizes(open, "location = /api/stream/system {"))
        XCTAssertTrue(authorizes(open, "location = /api/stream/events {"))
        let closed = try render(["CC_PUBLIC_READ": "false"])
        XCTAssertTrue(authorizes(closed, "location = /ws {"))
        XCTAssertTrue(authorizes(closed, "location = /api/stream/system {"))
        // Refused handshakes get the JSON envelope; nchan never sees them (no nchan_authorize_request:
        // it crashed workers under a reload's reconnects).
        XCTAssertFalse(closed.values.contains { $0.contains("nchan_authorize_request") })
        let ws = try XCTUnwrap(Self.block(closed["control-center-live.conf"] ?? "", "location = /ws {"))
        for page in ["error_page 401 = @cc_stream_401;", "error_page 403 = @cc_stream_403;", "error_page 429 = @cc_429;",
                     "error_page 500 = @cc_503;"] {
            XCTAssertTrue(ws.contains(page), page)
        }
        XCTAssertTrue(closed["control-center-live.conf"]?.contains("location @cc_stream_401 {") ?? false)
        let server = closed["control-center-live.conf"] ?? ""
        XCTAssertTrue(server.contains("proxy_pass http://unix:/srv/cc/run/stream-authorize.sock:;"))
        XCTAssertTrue(server.contains("internal;"))
        XCTAssertTrue(closed["control-center-live-http.conf"]?.contains("listen unix:/srv/cc/run/stream-authorize.sock;") ?? false)
    }

    /// CC_STREAM_SHARDS: nginx puts each client address in one shard of the
    /// system channel; the publisher takes `system.K` for K < N only.
    func testSystemChannelShards() throws {
        for n in [1, 3, 8, 13] {
            let files = try render(["CC_STREAM_SHARDS": String(n)])
            let http = try XCTUnwrap(files["control-center-live-http.conf"])
            let server = try XCTUnwrap(files["control-center-live.conf"])
            // The publisher location's own pattern, tried on every channel id.
            let pattern = try XCTUnwrap(http.range(of: #"location ~ (\^/pub/\S+\$) \{"#, options: .regularExpression)
                .map { String(http[$0].dropFirst("location ~ ".count).dropLast(2)) })
            let re = try NSRegularExpression(pattern: pattern)
            func published(_ id: String) -> Bool {
                let path = "/pub/" + id
                return re.firstMatch(in: path, range: NSRange(path.startIndex..., in: path)) != nil
            }
            for k in 0..<n { XCTAssertTrue(published("system.\(k)"), "n=\(n) k=\(k)") }
            for id in ["system.\(n)", "system.64", "system", "system.", "system.0x", "systemA0", "events.0", "other"] {
                XCTAssertFalse(published(id), "n=\(n): \(id)")
            }
            XCTAssertTrue(published("events"))
            for location in ["location = /ws {", "location = /api/stream/system {"] {
                let body = try XCTUnwrap(Self.block(server, location))
                XCTAssertTrue(body.contains(n == 1 ? "nchan_channel_id system.0;" : "nchan_channel_id system.$cc_stream_shard;"),
                              "n=\(n) \(location)")
            }
            XCTAssertTrue(Self.block(server, "location = /api/stream/events {")?.contains("nchan_channel_id events;") ?? false)
            let split = Self.block(http, #"split_clients "$remote_addr" $cc_stream_shard {"#)
            if n == 1 {
                XCTAssertNil(split, "one shard: no split")
                continue
            }
            // N-1 equal shares of at most 100% in all, and the rest to the last shard.
            let lines = try XCTUnwrap(split).split(separator: "\n").dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
            XCTAssertEqual(lines.count, n, "n=\(n): \(lines)")
            let shares = lines.dropLast().compactMap { Double($0.split(separator: "%").first ?? "") }
            XCTAssertEqual(shares.count, n - 1)
            XCTAssertLessThanOrEqual(shares.reduce(0, +), 100)
            for share in shares { XCTAssertEqual(share, 100 / Double(n), accuracy: 0.01) }
            XCTAssertEqual(lines.enumerated().map { $0.element.split(separator: " ").last.map(String.init) },
                           (0..<n).map { "\($0);" }, "shard numbers 0…N-1")
            XCTAssertEqual(lines.last, "* \(n - 1);")
        }
        XCTAssertThrowsError(try render(["CC_STREAM_SHARDS": "0"]))
        XCTAssertThrowsError(try render(["CC_STREAM_SHARDS": "65"]))
    }

    /// The text of the `{ ... }` block opened by `header`, or nil.
    static func block(_ text: String, _ header: String) -> String? {
        guard let start = text.range(of: header) else { return nil }
        var depth = 0
        var i = start.lowerBound
        while i < text.endIndex {
            if text[i] == "{" { depth += 1 }
            if text[i] == "}" { depth -= 1; if depth == 0 { return String(text[start.lowerBound...i]) } }
            i = text.index(after: i)
        }
        return nil
    }

    func testUpstreamsFollowTheListenSettings() throws {
        let http = try render(["CC_LISTEN": "127.0.0.1:9001", "CC_STORAGE_LISTEN": "[::1]:9002"])["control-center-http.conf"] ?? ""
        XCTAssertTrue(http.contains("upstream cc_main {\n    server 127.0.0.1:9001;\n}"))
        XCTAssertTrue(http.contains("upstream cc_storage {\n    server [::1]:9002;\n}"))
        let one = try render(["CC_STORAGE_WORKERS": "0"])["control-center-http.conf"] ?? ""
        XCTAssertTrue(one.contains("upstream cc_storage {\n    server unix:/srv/cc/run/fcgi.sock;\n}"), "no storage pool: main serves")
        let timeout = try render(["CC_REQUEST_TIMEOUT": "2.5"])["control-center.conf"] ?? ""
        XCTAssertTrue(timeout.contains("fastcgi_read_timeout 2500ms;"))
    }

    func testPathsThatAreNotOneNginxTokenAreRefused() {
        for dir in ["/srv/c c", "/srv/cc;x", "/srv/\"cc", "/srv/$cc", "/srv/{cc}"] {
            XCTAssertThrowsError(try render(["CC_STATE_DIR": dir]), dir)
            XCTAssertThrowsError(try render(["CC_WEB_DIR": dir]), dir)
        }
    }

    func testDashboardIsServedFromTheWebDirWithThePageHeaders() throws {
        let files = try render(["CC_WEB_DIR": "/opt/cc/web"])
        let snippet = files["control-center.conf"] ?? ""
        XCTAssertTrue(snippet.contains("location /ui/ {\n    alias /srv/cc/nginx/web/;"), "a copy beside the config: \(snippet)")
        XCTAssertTrue(snippet.contains("location /ui/lib/chart.js/ {\n        alias /usr/share/javascript/chart.js/;"))
        XCTAssertTrue(snippet.contains("if ($cc_wants_html) {\n        return 302 /ui/;\n    }"))
        XCTAssertTrue(files["control-center-http.conf"]?.contains("map $http_accept $cc_wants_html {") ?? false)
        let headers = files["control-center-ui-headers.conf"] ?? ""
        XCTAssertTrue(headers.contains("Content-Security-Policy \"default-src 'none'; script-src 'self'; style-src 'self';"))
        XCTAssertTrue(headers.contains("Cache-Control \"no-cache\""))
        XCTAssertFalse(headers.contains("unsafe-inline"))
        // Unset: the web/ folder of this source tree, which holds the page.
        let source = try Config(values: [:]).nginx.webDir
        XCTAssertTrue(FileManager.default.fileExists(atPath: source + "/index.html"), source)
    }

    func testTheMillisecondMapHasEveryKey() {
        let lines = NginxRender.millisecondMap.split(separator: "\n")
        XCTAssertEqual(lines.count, 1000)
        XCTAssertEqual(lines.first, "0.000 0;")
        XCTAssertEqual(lines[42], "0.042 42;")
        XCTAssertEqual(lines.last, "0.999 999;")
    }
}
