extension NginxRender {
    /// `ADDR:PORT` of the standalone server, IPv6 in brackets.
    static func hostPort(_ config: Config) -> String {
        let a = config.nginx.httpAddress
        return (a.contains(":") ? "[\(a)]" : a) + ":\(config.httpPort)"
    }

    /// Where the standalone nginx answers, e.g. `http://127.0.0.1:8080`.
    public static func url(_ config: Config) -> String { "http://" + hostPort(config) }

    /// `nginx.conf`: the standalone nginx of Scripts/run, the tests and the
    /// benchmarks, in the foreground with every path under `directory`
    /// (start it with `nginx -p DIR -c DIR/nginx.conf`).
    var standalone: String {
        let s = config.nginx
        let mods = Self.modulesDirectory
        let modules = Self.liveModules.map { "load_module \(mods)/\($0);\n" }.joined()
        let user = s.user.map { "# nginx's workers never run as root (CC_NGINX_USER).\nuser \($0);\n" } ?? ""
        let listen = Self.hostPort(config)
        return """
            # Standalone nginx for Scripts/run, the tests and the benchmarks (rendered by
            # control-center nginx-config; re-render, do not edit): runs in the foreground
            # with every path under this directory.
            \(user)worker_processes \(s.workers);
            pid \(path("nginx.pid"));
            error_log \(path("error.log")) warn;
            daemon off;
            worker_rlimit_nofile \(openFilesLimit);
            \(modules)
            events {
                # As many as a worker may open files: live subscribers are connections
                # (about 0.5 KB of slot each, allocated at start).
                worker_connections \(openFilesLimit);
                multi_accept on;
            }

            http {
                default_type application/octet-stream;
                access_log off; # the workers write one JSON line per request
                sendfile on;
                tcp_nopush on;
                keepalive_requests 100000;
                server_tokens off;
                # The maps of the views and the live channels add variables beyond the default size.
                variables_hash_max_size 2048;
                client_body_temp_path \(path("tmp/body"));
                proxy_temp_path \(path("tmp/proxy"));
                fastcgi_temp_path \(path("tmp/fastcgi"));
                uwsgi_temp_path \(path("tmp/uwsgi"));
                scgi_temp_path \(path("tmp/scgi"));
                types {
                    application/json json;
                    application/yaml yaml;
                    text/html html;
                }

                include \(path("control-center-http.conf"));

                server {
                    # reuseport: one listening socket per nginx worker, so the kernel
                    # spreads connections evenly; with a shared socket one worker took
                    # 194 of 200 benchmark connections and the tail latency grew.
                    listen \(listen) backlog=4096 reuseport;
                    \(bench ? "include \(path("control-center-bench.conf"));" : "# (benchmark locations only with --bench)")
                    include \(path("control-center.conf"));
                }
            }

            """
    }
}
