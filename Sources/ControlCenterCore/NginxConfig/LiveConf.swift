extension NginxRender {
    /// Internal prefix of the handshake checks (auth_request subrequests).
    static let authorizePrefix = "/.cc-stream-authorize"

    /// Channel ids that exist (the system channel's shards and the events
    /// channel); a subscriber names one only through its location.
    var liveChannelIDs: [String] { LiveChannels.systemShards(config.nginx.streamShards) + [LiveChannels.events] }

    /// The system channel's id in a subscriber location: the shard
    /// `streamShardMap` gives the client's address.
    var systemChannelID: String {
        config.nginx.streamShards == 1 ? LiveChannels.systemShards(1)[0] : "\(LiveChannels.system).$cc_stream_shard"
    }

    /// http level: `$cc_stream_shard`, the system channel's shard of the
    /// client address (equal shares of nginx's MurmurHash2 of
    /// `$remote_addr`, the address real_ip gives behind CC_TRUSTED_PROXIES),
    /// empty with one shard. The same address always lands in the same
    /// shard, so a resume id names a message of the buffer it resumes from.
    var streamShardMap: String {
        let n = config.nginx.streamShards
        guard n > 1 else { return "" }
        // split_clients takes percentages with two decimals; the last shard takes the rest.
        let share = 10_000 / n
        let lines = (0..<(n - 1)).map { "    \(share / 100).\(share % 100 < 10 ? "0" : "")\(share % 100)% \($0);\n" }.joined()
        return """
            # The system channel's shard of each client address (CC_STREAM_SHARDS): the
            # collector publishes to the shards one after another, so that no one fan-out
            # holds nginx's workers for long. Clients behind one untrusted proxy share a shard.
            split_clients "$remote_addr" $cc_stream_shard {
            \(lines)    * \(n - 1);
            }

            """
    }

    /// Seconds back that a resume id may reach and still be in a channel's
    /// buffer (cc_live_resume.lua drops older ones): CC_STREAM_BUFFER's age,
    /// and for the system channel, one message per CC_COLLECT_INTERVAL, no
    /// more than its count covers. At least 1.
    func resumeWindow(channel: String) -> Int {
        let s = config.nginx
        let seconds = channel != LiveChannels.events  // the system channel, or one of its shards
            ? min(Double(s.streamBufferSeconds), Double(s.streamBufferLength) * config.collectInterval)
            : Double(s.streamBufferSeconds)
        return max(1, Int(seconds))
    }

    /// `control-center-live-http.conf` (http level, included by
    /// control-center-http.conf): nchan's shared memory, the per-address
    /// subscriber limit, and the publisher server, which listens only on a
    /// unix socket in the run directory (mode from nginx's umask: only the
    /// user nginx's master runs as, and root, may connect) and which only
    /// the collector uses.
    var liveHTTP: String {
        let s = config.nginx
        let channels = liveChannelIDs.map { $0.replacingOccurrences(of: ".", with: "\\.") }.joined(separator: "|")
        return """
            # Control Center: live channels through nchan, http level (rendered by
            # control-center nginx-config). Included by control-center-http.conf.
            # Messages are small (a few KB) and at most CC_STREAM_BUFFER are kept per channel.
            nchan_shared_memory_size 32m;

            # Live subscriptions per client address (CC_STREAM_MAX_PER_IP); the
            # CC_RATE_LIMIT_EXEMPT networks have an empty key, which is never counted.
            limit_conn_zone $cc_limit_key zone=cc_stream:10m;

            # A resume id is one this server sent (nchan's SECONDS:TAG, in the header or,
            # percent-encoded or not, in ?last_event_id=) or none; anything else is 400.
            map "$http_last_event_id|$arg_last_event_id" $cc_stream_bad_id {
                "~^([0-9]{1,12}:[0-9]{1,6})?\\|([0-9]{1,12}(:|%3[Aa])[0-9]{1,6})?$" 0;
                default 1;
            }

            \(streamShardMap)\(authorizeServer)
            # The collector's publisher endpoint: POST /pub/<channel id>.
            server {
                listen unix:\(config.publishSocket);
                access_log off;
                location ~ ^/pub/(\(channels))$ {
                    nchan_publisher http;
                    nchan_channel_id $1;
                    # Resume buffer (CC_STREAM_BUFFER): bounded in count and in age.
                    nchan_message_buffer_length \(s.streamBufferLength);
                    nchan_message_timeout \(s.streamBufferSeconds)s;
                }
                location / {
                    return 404;
                }
            }

            """
    }

    /// `control-center-live.conf` (server level, included by
    /// control-center.conf): the subscriber locations. With CC_PUBLIC_READ=
    /// true the system channel is public like the old dashboard's `/ws`;
    /// otherwise, and always for the events channel, nchan asks the main
    /// pool once per handshake (StreamRoutes answers 204 or an error).
    var liveServer: String {
        let s = config.nginx
        func common(_ uri: String, channel: String, isPublic: Bool) -> String {
            // nginx's auth_request (access phase: nchan sees only admitted subscribers),
            // not nchan_authorize_request: with that, a reload's thousands of
            // reconnecting handshakes crashed nchan 1.3.6's workers (Scripts/loadtest
            // reload-storm). The subrequest has no client address of its own: the
            // subscriber's is kept in variables the subrequest shares. A location with
            // error_page directives inherits none, so the server's pages are named again.
            let authorize = isPublic ? "" : """

                    auth_request \(Self.authorizePrefix)\(uri);
                    set $cc_stream_remote $remote_addr;
                    set $cc_stream_https $cc_https;
                    set $cc_stream_ticket $arg_ticket;
                    error_page 401 = @cc_stream_401;
                    error_page 403 = @cc_stream_403;
                    error_page 429 = @cc_429;
                    # auth_request's answer to a check that failed (the pool down, a 5xx).
                    error_page 500 = @cc_503;
                """
            return """
                limit_conn cc_stream \(s.streamMaxPerIP);
                nchan_channel_id \(channel);
                # A new subscriber without a message id gets the newest message only, not
                # the whole buffer; one with Last-Event-ID (or ?last_event_id=) gets every
                # buffered message after it. An id the buffer cannot serve (from the future,
                # older than the buffer, from before this worker's first seconds) is dropped
                # first (cc_live_resume.lua): nchan mishandles those.
                nchan_subscriber_first_message newest;
                set_by_lua_file $cc_resume_id \(path(Self.liveLuaFileName)) $http_last_event_id $arg_last_event_id \(resumeWindow(channel: channel));
                nchan_subscriber_last_message_id $cc_resume_id;\(authorize)
                # After a reload the old workers exit; a handshake one of them still holds
                # (its check was under way) is closed unanswered, and the client reconnects
                # to a new worker: nchan 1.3.6 crashed workers subscribing there (reload-storm).
                # Lua's access handler runs at the end of the access phase, after the check.
                access_by_lua_block { if ngx.worker.exiting() then return ngx.exit(444) end }
                default_type application/json;
                include \(path("control-center-headers.conf"));
                if ($cc_stream_bad_id) {
                    return 400 '{"error":{"code":"bad_last_event_id","message":"Last-Event-ID must be an id this channel sent (SECONDS:TAG), or absent","request_id":"$request_id"}}\\n';
                }
            """
        }
        return """
            # Control Center: live channels (rendered by control-center nginx-config).
            # Included by control-center.conf. Messages: LiveMessage.swift and
            # docs/openapi.yaml; the client rule for missed messages: docs/architecture.md.
            limit_conn_status 429;

            # The old dashboard's WebSocket.
            location = /ws {
                nchan_subscriber websocket;
                # Proxies drop idle connections after 40-60 s; nchan pings every 30 s and
                # drops a client that stops answering.
                nchan_websocket_ping_interval 30;
                if ($http_upgrade !~* ^websocket$) {
                    add_header Upgrade websocket always;
                    include \(path("control-center-headers.conf"));
                    return 426 '{"error":{"code":"upgrade_required","message":"/ws is a WebSocket: send Upgrade: websocket","request_id":"$request_id"}}\\n';
                }
            \(common("/ws", channel: systemChannelID, isPublic: config.publicRead))
            }

            # EventSource (Accept: text/event-stream) or long-poll (anything else).
            location = /api/stream/system {
                nchan_subscriber eventsource longpoll;
            \(common("/api/stream/system", channel: systemChannelID, isPublic: config.publicRead))
            }

            # Every row written to the events table; always needs a viewer token.
            location = /api/stream/events {
                nchan_subscriber websocket eventsource longpoll;
                nchan_websocket_ping_interval 30;
            \(common("/api/stream/events", channel: LiveChannels.events, isPublic: false))
            }

            \(authorizeLocation)

            \(refusalPages)

            """
    }

    /// The handshake check, server level: the auth_request subrequest (the
    /// subscriber's path and headers) is proxied to `authorizeServer`, which
    /// passes it to the main pool (StreamRoutes): 204 admits the subscriber,
    /// 401 or 403 refuses it with that status. (The proxy hop dates from
    /// nchan's own authorize subrequest, which crashed the worker when
    /// answered inside nginx, fastcgi_pass included.)
    var authorizeLocation: String {
        """
        # The handshake check: the subscriber's path and headers go, through
        # control-center-live-http.conf's authorize server, to the main pool.
        location ^~ \(Self.authorizePrefix)/ {
            internal;
            proxy_pass http://unix:\(config.streamAuthorizeSocket):;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            # The subscriber's Host: the served origin the worker compares Origin with.
            proxy_set_header Host $http_host;
            proxy_set_header X-CC-Remote-Addr $cc_stream_remote;
            proxy_set_header X-CC-Request-ID $request_id;
            proxy_set_header X-CC-HTTPS $cc_stream_https;
            # ?ticket= of the subscribe URL (POST /api/stream/ticket), never a client's own header.
            proxy_set_header X-CC-Stream-Ticket $cc_stream_ticket;
        }
        """
    }

    /// JSON answers to a refused handshake: nginx's auth_request keeps the
    /// status of the pool's answer (StreamRoutes) but not its body.
    var refusalPages: String {
        let headers = path("control-center-headers.conf")
        return [(401, "unauthorized", "This live channel needs a viewer token (Authorization: Bearer), the cc_session cookie or a ?ticket= from POST /api/stream/ticket"),
                (403, "forbidden", "Not allowed: the role, or the Origin of a cookie-authenticated subscription (CC_ALLOWED_ORIGINS)")]
            .map { code, name, message in
                """
                location @cc_stream_\(code) {
                    default_type application/json;
                    include \(headers);
                    return \(code) '{"error":{"code":"\(name)","message":"\(message)","request_id":"$request_id"}}\\n';
                }
                """
            }.joined(separator: "\n")
    }

    /// The http-level half of `authorizeLocation`: a server on a unix socket
    /// in the run directory (nginx makes it 0666: a local user reaching it
    /// learns only whether a token is valid, as through the public port) that
    /// passes each check to the main pool as `GET <subscriber's path>`.
    var authorizeServer: String {
        """
        # Handshake checks of the live channels (control-center-live.conf proxies
        # the auth_request subrequests of the handshake checks here).
        server {
            listen unix:\(config.streamAuthorizeSocket);
            access_log off;
            location ^~ \(Self.authorizePrefix)/ {
                rewrite ^\(Self.authorizePrefix.replacingOccurrences(of: ".", with: "\\."))(/.*)$ $1 break;
                fastcgi_pass_request_body off;
                fastcgi_param REQUEST_METHOD  GET;
                fastcgi_param REQUEST_URI     $uri;
                fastcgi_param DOCUMENT_URI    $uri;
                fastcgi_param QUERY_STRING    "";
                fastcgi_param SERVER_PROTOCOL $server_protocol;
                fastcgi_param REMOTE_ADDR     $http_x_cc_remote_addr;
                fastcgi_param REQUEST_ID      $http_x_cc_request_id;
                fastcgi_param REQUEST_START   $msec;
                fastcgi_param HTTPS           $http_x_cc_https if_not_empty;
                fastcgi_pass cc_main;
            }
            location / {
                return 404;
            }
        }

        """
    }
}
