extension NginxRender {
    /// `control-center-views-http.conf`: http-level part of the nginx-sent
    /// views; needs ndk_http_module, ngx_http_lua_module and
    /// ngx_http_echo_module loaded (Debian: libnginx-mod-http-lua, -echo).
    var viewsHTTP: String {
        """
        # Control Center: http-level part of the nginx-sent views (rendered by
        # control-center nginx-config). Included by control-center-http.conf.
        lua_package_path "\(directory)/?.lua;;";
        # Loaded once in the master, before the workers fork: a broken module stops
        # `nginx -t` instead of failing requests.
        init_by_lua_block { require "cc_views" }

        # The workers' duration_ms without a regular expression per request (they
        # were most of what the log line cost): $request_time is seconds with three
        # decimals, so below one second it is an exact key here; the regexes only run
        # for slower requests.
        map $request_time $cc_view_duration_ms {
            include \(path("control-center-views-ms.map"));
            "~^(?<cc_vs>[1-9]\\d*)\\.(?<cc_vms>\\d{3})$" $cc_vs$cc_vms;
            default 0;
        }

        # Same fields as the workers' access-log lines, plus who served it.
        # $cc_view_time and $cc_view_request_id are set by cc_views.lua ($cc_view_time
        # in the workers' format).
        log_format cc_view_json escape=json
            '{"time":"$cc_view_time","request_id":"$cc_view_request_id","method":"$request_method",'
            '"path":"$cc_view_path","status":$status,"duration_ms":$cc_view_duration_ms,"pid":$pid,'
            '"bytes":$body_bytes_sent,"remote":"$remote_addr","served_by":"nginx-view"}';

        """
    }

    /// `control-center-views.conf`: while $CC_STATE_DIR/views/<kind>.json is
    /// younger than the kind's TTL, an anonymous GET without a query string is
    /// a static send of that file plus its age (cc_views.lua decides;
    /// echo_after_body appends `AGE}}`); anything else goes to the main pool.
    var viewsServer: String {
        let stale = Self.millis(config.cacheMaxStale)
        let views = config.viewsDir
        var out = """
            # Control Center: default views sent by nginx itself (CC_NGINX_VIEWS; rendered
            # by control-center nginx-config). Included by control-center.conf. The
            # route's arguments: kind, TTL and CC_CACHE_MAX_STALE in ms, the views
            # directory (after the include, whose `set`s clear the variables the route sets).

            """
        for kind in ["processes", "stats", "network"] {
            let ttl = Self.millis(config.cacheTTL[kind] ?? 2)
            out += """
                location = /api/system/\(kind) {
                    \(apiLimit)
                    include \(path("control-center-view.inc"));
                    set_by_lua_block $cc_view { return require("cc_views").route("\(kind)", \(ttl), \(stale), "\(views)") }
                }

                """
        }
        out += """
            location @cc_view_worker {
                fastcgi_pass cc_main;
            }

            """
        return out
    }

    /// `control-center-view.inc`: body of every view location.
    var viewInclude: String {
        let log: String
        switch config.accessLog {
        case "off"?: log = "access_log off;"
        case nil: log = "access_log /dev/stdout cc_view_json;"
        case let file?: log = "access_log \(file) cc_view_json buffer=32k flush=1s;"
        }
        return """
            # Body of every view location in control-center-views.conf (rendered by
            # control-center nginx-config).
            root \(config.viewsDir);
            default_type application/json;
            # The body changes with every request (its age), so no 304s.
            etag off;
            if_modified_since off;
            # try_files rewrites $uri to the file's name; the log wants the route.
            set $cc_view_path $uri;
            set $cc_view_age "";
            set $cc_view_taken_at "";
            set $cc_view_time "";
            set $cc_view_request_id "";
            # $cc_view: set by the location's set_by_lua_block (cc_views.lua).
            try_files $cc_view @cc_view_worker;
            # The file ends with `"age_ms":`; the age and the closing braces follow it
            # (a body filter: no subrequest, and the file itself still goes by sendfile).
            echo_after_body "$cc_view_age}}";
            add_header X-Snapshot-Age-Ms $cc_view_age always;
            add_header X-Snapshot-Taken-At $cc_view_taken_at always;
            add_header X-Request-ID $cc_view_request_id always;
            include \(path("control-center-headers.conf"));
            \(log)

            """
    }

    /// Exact keys 0.000 ... 0.999 for the view log's duration map.
    static let millisecondMap: String = (0..<1000).map { i in
        "0." + String(repeating: "0", count: 3 - String(i).count) + String(i) + " \(i);\n"
    }.joined()
}
