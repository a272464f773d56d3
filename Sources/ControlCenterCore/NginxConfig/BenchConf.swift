extension NginxRender {
    /// `control-center-bench.conf` (`--bench` only): Scripts/bench's reference
    /// locations, loopback only. Never part of the serving configuration.
    var benchLocations: String {
        """
        # Benchmark references (rendered by control-center nginx-config --bench).
        # nginx's own limit.
        location = /__bench/return200 {
            allow 127.0.0.1;
            deny all;
            default_type application/json;
            return 200 '{"status":"healthy","timestamp":"2026-01-01T00:00:00.000Z","version":"0.1.0","uptime_seconds":12.345}';
        }
        # Scripts/bench's bare libfcgi reference pool (Scripts/bench.d/ref); 502 when not running.
        location = /__bench/fcgi-bare {
            allow 127.0.0.1;
            deny all;
            fastcgi_pass unix:\(config.runDir)/bench-bare.sock;
        }
        location /__bench/static/ {
            allow 127.0.0.1;
            deny all;
            alias \(config.stateDir)/bench/;
            default_type application/json;
        }

        """
    }
}
