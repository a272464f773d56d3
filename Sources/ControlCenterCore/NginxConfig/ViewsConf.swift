extension NginxRender {
    /// `control-center-views-http.conf`: http-level part of the nginx-sent
    /// views: maps only (no module beyond nginx's own).
    var viewsHTTP: String {
        """
        # Control Center: http-level part of the nginx-sent views (rendered by
        # control-center nginx-config). Included by control-center-http.conf.

        # A view is the anonymous form of a default answer: GET or HEAD, no query
        # string, no token, no session cookie. Anything else gets a directory that
        # does not exist, so try_files falls through to the workers. (Methods hold
        # no ':', so only those requests make these keys.)
        map "$request_method:$is_args:$http_authorization:$cookie_cc_session" $cc_view_dir {
            "GET:::" "";
            "HEAD:::" "";
            default "/.cc-no-view";
        }

        # Request ids of the answers nginx sends itself, without nginx's own request id
        # (an OpenSSL RAND_bytes call per request): the nginx worker's pid, the
        # connection's serial number (a counter nginx's workers share) and the
        # request's number on it, then the time: unique per nginx instance, and the
        # time tells restarts apart. A map's value is computed once per request, so
        # the header and the access line carry the same id.
        map $pid $cc_view_request_id {
            default "$pid-$connection-$connection_requests-$msec";
        }

        # The workers' time format (YYYY-MM-DDTHH:MM:SS.mmmZ) from nginx's cached
        # time; nginx's $time_iso8601 is local time, so another time zone keeps it.
        map "$time_iso8601|$msec" $cc_view_time {
            "~^(?<cc_ts>.{19})\\+00:00\\|\\d+\\.(?<cc_tms>\\d{3})$" "$cc_ts.${cc_tms}Z";
            default $time_iso8601;
        }

        # The workers' duration_ms without a regular expression per request:
        # $request_time is seconds with three decimals, so below one second it is an
        # exact key here; the regex only runs for slower requests.
        map $request_time $cc_view_duration_ms {
            include \(path("control-center-views-ms.map"));
            "~^(?<cc_vs>[1-9]\\d*)\\.(?<cc_vms>\\d{3})$" $cc_vs$cc_vms;
            default 0;
        }

        # Same fields as the workers' access-log lines, plus who served it.
        log_format cc_view_json escape=json
            '{"time":"$cc_view_time","request_id":"$cc_view_request_id","method":"$request_method",'
            '"path":"$cc_view_path","status":$status,"duration_ms":$cc_view_duration_ms,"pid":$pid,'
            '"bytes":$body_bytes_sent,"remote":"$remote_addr","served_by":"nginx-view"}';

        """
    }

    /// `control-center-views.conf`: an anonymous GET or HEAD without a query
    /// string of /api/system/{processes,stats,network} is a static send of
    /// $CC_STATE_DIR/views/<kind>.json while that file exists; anything else,
    /// or no file, goes to the main pool. No age check per request: the
    /// collector rewrites each view every TTL/2, and the master removes them
    /// when the collector dies and any older than CC_CACHE_MAX_STALE (ViewFiles).
    var viewsServer: String {
        var out = """
            # Control Center: default views sent by nginx itself (CC_NGINX_VIEWS; rendered
            # by control-center nginx-config). Included by control-center.conf.

            """
        for kind in SnapshotKind.allCases where kind.hasNginxView {
            out += """
                location = /api/system/\(kind.rawValue) {
                    \(apiLimit)
                    include \(path("control-center-view.inc"));
                    try_files $cc_view_dir/\(kind.rawValue).json @cc_view_worker;
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
            # The workers' answers carry no validators, so neither do these (no 304s).
            etag off;
            if_modified_since off;
            # try_files rewrites $uri to the file's name; the log wants the route.
            set $cc_view_path $uri;
            # The file's mtime is the snapshot's time: Last-Modified, in the same
            # HTTP-date form as the workers' X-Snapshot-Taken-At.
            add_header X-Snapshot-Taken-At $sent_http_last_modified always;
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
