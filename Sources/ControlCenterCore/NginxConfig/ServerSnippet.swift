extension NginxRender {
    /// `control-center.conf`: include inside an existing `server {}` (after
    /// including control-center-http.conf at http level). Its Host check and
    /// error pages apply to the whole server it is in.
    var serverSnippet: String {
        let timeout = Self.duration(config.requestTimeout)
        return """
            # Control Center: server-level snippet (rendered by control-center nginx-config;
            # re-render, do not edit). Include inside an existing `server {}` after
            # including control-center-http.conf at http level.
            \(realIP)
            client_max_body_size \(config.maxBody);
            client_body_buffer_size 128k;

            fastcgi_param REQUEST_METHOD  $request_method;
            fastcgi_param REQUEST_URI     $request_uri;
            fastcgi_param DOCUMENT_URI    $document_uri;
            fastcgi_param QUERY_STRING    $query_string;
            fastcgi_param CONTENT_TYPE    $content_type;
            fastcgi_param CONTENT_LENGTH  $content_length;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param REMOTE_ADDR     $remote_addr;
            fastcgi_param REMOTE_PORT     $remote_port;
            fastcgi_param SERVER_NAME     $server_name;
            fastcgi_param REQUEST_ID      $request_id;
            fastcgi_param REQUEST_START   $msec;
            fastcgi_param HTTPS           $cc_https if_not_empty;

            # nginx gives up at the request timeout and answers 504; the master kills a
            # worker still busy 0.5 s later and starts a new one.
            fastcgi_connect_timeout 2s;
            fastcgi_send_timeout \(timeout);
            fastcgi_read_timeout \(timeout);
            fastcgi_buffers 16 16k;
            fastcgi_buffer_size 16k;
            fastcgi_keep_conn \(config.nginx.upstreamKeepalive == nil ? "off" : "on");
            # A dead worker is not a reason to retry a request elsewhere: it may have
            # had side effects.
            fastcgi_next_upstream off;

            gzip on;
            gzip_types application/json text/plain application/yaml;
            gzip_min_length 1024;
            gzip_vary on;

            include \(path("control-center-headers.conf"));

            # Host names outside CC_ALLOWED_HOSTS (control-center-http.conf's map).
            if ($cc_host_allowed = 0) {
                return 421;
            }

            location = /api/auth/login {
                limit_req zone=cc_login burst=5 nodelay;
                fastcgi_pass cc_storage;
            }
            location = /api/auth/login/form {
                limit_req zone=cc_login burst=5 nodelay;
                fastcgi_pass cc_storage;
            }
            location /api/auth/ {
                \(apiLimit)
                fastcgi_pass cc_storage;
            }
            location /api/events {
                \(apiLimit)
                fastcgi_pass cc_storage;
            }
            # Metric history: a database query, so the storage pool.
            location = /api/system/history {
                \(apiLimit)
                fastcgi_pass cc_storage;
            }
            location /api/services {
                \(apiLimit)
                fastcgi_pass cc_storage;
            }
            location /api/alerts/ {
                \(apiLimit)
                fastcgi_pass cc_storage;
            }
            # Writes a request for the supervisor and waits for its answer.
            location ~ ^/api/system/processes/[^/]+/signal$ {
                \(apiLimit)
                fastcgi_pass cc_storage;
            }
            # Test-only routes (CC_TEST_ROUTES=true): they sleep, crash or stall the
            # database, so they run in the pool meant for slow work.
            location /api/test/ {
                fastcgi_pass cc_storage;
            }
            location = /api/pool/status {
                allow 127.0.0.1;
                allow ::1;
                deny all;
                fastcgi_pass cc_main;
            }
            # Loopback and CC_METRICS_ALLOW only; the worker checks the same list.
            location = /metrics {
                allow 127.0.0.1;
                allow ::1;
            \(metricsAllow)    deny all;
                fastcgi_pass cc_main;
            }
            include \(path("control-center-live.conf"));
            # nginx's own counters, which include the requests it answers itself (the
            # views, 429s, error pages) that /metrics does not count; for Prometheus's
            # nginx exporter (Debian prometheus-nginx-exporter). Same networks as /metrics.
            location = /nginx_status {
                stub_status;
                access_log off;
                allow 127.0.0.1;
                allow ::1;
            \(metricsAllow)    deny all;
            }
            \(viewsEnabled ? "include \(path("control-center-views.conf"));" : "# nginx-sent views off")
            location /api/ {
                \(apiLimit)
                fastcgi_pass cc_main;
            }
            \(dashboardLocations)
            location / {
                fastcgi_pass cc_main;
            }

            \(errorPages)
            """
    }

    /// `allow` lines for CC_METRICS_ALLOW, each ending the line it starts.
    var metricsAllow: String {
        config.metricsAllow.map { "    allow \($0);\n" }.joined()
    }

    /// The /api/ limit; nginx refuses `burst=0`, which means no burst anyway.
    var apiLimit: String {
        let burst = config.nginx.rateBurst
        return burst > 0 ? "limit_req zone=cc_api burst=\(burst) nodelay;" : "limit_req zone=cc_api;"
    }

    /// Client addresses from X-Forwarded-For only when it comes from a proxy
    /// named in CC_TRUSTED_PROXIES; otherwise anyone could claim any address
    /// (a fresh one per request against the rate limits and the audit log).
    var realIP: String {
        let proxies = config.nginx.trustedProxies
        guard !proxies.isEmpty else {
            return "# No CC_TRUSTED_PROXIES: X-Forwarded-For is ignored; the client is the peer.\n"
        }
        return "# X-Forwarded-For believed only from CC_TRUSTED_PROXIES.\n"
            + proxies.map { "set_real_ip_from \($0);\n" }.joined()
            + "real_ip_header X-Forwarded-For;\nreal_ip_recursive on;\n"
    }
}
