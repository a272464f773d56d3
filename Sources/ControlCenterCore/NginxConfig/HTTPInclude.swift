extension NginxRender {
    /// `control-center-http.conf`: include once inside `http {}`, before the
    /// server that includes control-center.conf.
    var httpInclude: String {
        let s = config.nginx
        let storage = config.storageWorkers > 0 ? config.storageListen : config.listen
        // Only for measuring (CC_NGINX_KEEPALIVE): no `keepalive` otherwise,
        // because a libfcgi worker holds one connection at a time, so a
        // kept-alive idle connection pins a whole worker (measured: p99 of
        // seconds, stalled pools).
        let keepalive = s.upstreamKeepalive.map { "\n    keepalive \($0);" } ?? ""
        let exempt = s.rateLimitExempt.map { "    \($0) 1;\n" }.joined()
        let hosts = s.allowedHosts.map { "    \"\($0)\" 1;\n" }.joined()
        let proxies = s.trustedProxies.map { "    \($0) 1;\n" }.joined()
        return """
            # Control Center: http-level part (rendered by control-center nginx-config;
            # re-render, do not edit). Include once inside `http {}`, before the server
            # that includes control-center.conf.

            # One upstream per worker pool.
            upstream cc_main {
                server \(config.listen);\(keepalive)
            }
            upstream cc_storage {
                server \(storage);\(keepalive)
            }

            # Rate limits per client address. CC_RATE_LIMIT_EXEMPT networks are exempt
            # (an empty key is never limited). The address is the peer's unless
            # CC_TRUSTED_PROXIES names it (control-center.conf).
            geo $cc_limit_exempt {
                default 0;
            \(exempt)}
            map $cc_limit_exempt $cc_limit_key {
                1 "";
                default $binary_remote_addr;
            }
            limit_req_zone $cc_limit_key zone=cc_api:10m rate=\(s.rateLimit)r/s;
            limit_req_zone $cc_limit_key zone=cc_login:10m rate=\(s.loginRateLimit)r/m;

            # HTTPS as the client used it: nginx's own TLS, or X-Forwarded-Proto from a proxy
            # named in CC_TRUSTED_PROXIES (the peer, before real_ip rewrites the address).
            # The workers get it as the HTTPS param (the session cookie's Secure attribute).
            geo $realip_remote_addr $cc_via_trusted_proxy {
                default 0;
            \(proxies)}
            map "$https:$cc_via_trusted_proxy:$http_x_forwarded_proto" $cc_https {
                "~^on:" on;
                "~^:1:https$" on;
                default "";
            }

            # Host names served (CC_ALLOWED_HOSTS); any other Host gets 421, so a page
            # on another site cannot read this one through DNS rebinding. $host has
            # no port. No Host at all (HTTP/1.0) cannot be a browser's rebinding.
            map $host $cc_host_known {
                hostnames;
                default 0;
                "" 1;
            \(hosts)}
            # nginx's answers to requests it could not read (400, 414) are internal
            # redirects, which run the server's Host check again.
            map $uri $cc_host_allowed {
                "~^\(Self.errorURIPrefix.replacingOccurrences(of: ".", with: "\\."))" 1;
                default $cc_host_known;
            }
            # A browser (Accept with text/html) asking for / is sent to the dashboard.
            map $http_accept $cc_wants_html {
                default 0;
                "~*text/html" 1;
            }

            # Live channels (nchan).
            include \(path("control-center-live-http.conf"));
            \(viewsEnabled ? "\n# nginx-sent default views (CC_NGINX_VIEWS).\ninclude \(path("control-center-views-http.conf"));\n" : "")
            """
    }
}
