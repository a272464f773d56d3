/*
 * subscriber.c: the live-channel subscriber client of Control Center's load
 * harness (Scripts/loadtest live).  Built on first use like loadgen.c
 * (gcc -O2, cached outside the repository).
 *
 *   subscriber HOST PORT [--ws N] [--sse M] [--ws-path P] [--sse-path P]
 *              [--duration S] [--connect-rate R] [--per-ip K] [--header 'Name: value']
 *              [--reconnect BASE_S]
 *
 * Opens N WebSocket (RFC 6455) and M EventSource (SSE) subscriptions in one
 * epoll thread, non-blocking.  Subscriber i binds its socket to a source
 * address in 127.0.0.0/8 (127.1.0.0 + 1 + i / K), so that no address holds
 * more than K subscriptions and nginx's per-address limit
 * (CC_STREAM_MAX_PER_IP) holds without exempting loopback.
 *
 * Per message: delay = receive time (CLOCK_REALTIME) minus the message's
 * "published_at_ms" (the collector's wall clock, same host), kept in a
 * 0.1 ms histogram; the first message of each subscription is left out
 * (nginx replays the newest buffered message on connect).  A second
 * histogram measures from the sample's time ("taken_at_ms" of its
 * snapshot), which includes the collector's spread over the shards of the
 * system channel (CC_STREAM_SHARDS).  Per subscriber:
 * gaps in "seq" (a changed "epoch" or a "reset" message restarts the count;
 * those are counted apart).  Server frames are unmasked text; pings get
 * pongs (RFC 6455 5.5.3), client frames are masked.
 *
 * --reconnect BASE_S: like a browser's client, a subscription that ends
 * (the server closes it, a handshake is refused, a connect fails) is opened
 * again after a random delay in [0, min(30, BASE_S * 2^failures)] s ("full
 * jitter" back-off; failures counts the attempts since its last successful
 * handshake), an EventSource one with Last-Event-ID set to the last "id:" it
 * got.  A WebSocket one resumes without an id: nchan's WebSocket frames carry
 * none (the dashboard's client does the same).
 *
 * stderr: "connected N failed F" once every subscription has answered its
 * handshake (or failed), then "progress T MESSAGES OPEN" each second (OPEN:
 * subscriptions open now), and with --reconnect "open N" whenever the count
 * of open ones changes, at most every 50 ms.
 * On SIGTERM/SIGINT or after --duration: one JSON line on stdout:
 *   {"connected","failed","closed","messages","missed","silent","resets","first_seq",
 *    "last_seq","delay_ms":{"p50","p95","p99","max","n"},"sample_delay_ms":{...},"cpu_user_s","cpu_sys_s","wall_s",
 *    "open","reconnects","handshake_status":{"2xx_other","4xx","429","5xx","connect_failed","closed_unanswered"},
 *    "down_ms":{"p50","p99","max","n"},"missed_across_reconnects"}
 * "sample_delay_ms" is the delay from the sample's time (taken_at_ms) where
 * "delay_ms" is from published_at; "reconnects" counts subscriptions opened
 * again after they ended; "down_ms" is, per reconnect, the time from the end
 * to the new handshake's success; "missed_across_reconnects" the seq gaps
 * over a reconnect (what a client back-fills), apart from "missed".
 * "missed" counts gaps inside each subscription plus, for a subscription
 * open at the end, the messages after its last one up to the one before the
 * highest seq any subscriber saw (the newest may still be on its way when
 * the client stops: nginx's fan-out, or the shards' spread, takes tens of
 * ms); "silent" counts open subscriptions that got no message.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { WS = 0, SSE = 1 };
enum { CONNECTING, HANDSHAKE, OPEN, DONE, WAITING };

typedef struct {
    int fd, kind, state, first_done;
    char *buf;
    size_t len, cap;
    long long epoch, last_seq;
    long long missed;
    /* --reconnect: failed attempts since the last handshake, when to try
       again (monotonic s), when it ended (monotonic s, 0: never), the last
       EventSource id, and whether the next message follows a reconnect. */
    int failures, after_reconnect;
    double retry_at, ended_at;
    char last_id[40];
} sub_t;

#define HIST_N 600000 /* 0.1 ms buckets up to 60 s */
static uint32_t hist[HIST_N + 1], sample_hist[HIST_N + 1];
static long long n_sample_delay;
static long long n_delay, n_msgs, n_missed, n_resets, max_seq = -1, min_seq = -1;
static long long n_reconnects, n_missed_reconnect, hs_ok_other, hs_4xx, hs_429, hs_5xx, hs_connect_failed, hs_unanswered;
static double reconnect_base; /* 0: no reconnect */
#define DOWN_N 600000 /* 0.1 ms buckets up to 60 s */
static uint32_t down_hist[DOWN_N + 1];
static long long n_down;
static volatile sig_atomic_t stop_flag;
static const char *ws_path = "/ws", *sse_path = "/api/stream/system", *extra_hdr = "";
static char host[64];
static int port;

static double now_real(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}
static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
static void on_signal(int s) { (void)s; stop_flag = 1; }

static void append(sub_t *s, const char *d, size_t n) {
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf) { perror("realloc"); exit(2); }
    }
    memcpy(s->buf + s->len, d, n);
    s->len += n;
    s->buf[s->len] = 0;
}
static void consume(sub_t *s, size_t n) {
    memmove(s->buf, s->buf + n, s->len - n);
    s->len -= n;
    if (s->buf) s->buf[s->len] = 0;
}

/* The integer after "key": in a JSON text of length n, or -1. */
static long long json_int(const char *p, size_t n, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 3 < n; i++) {
        if (p[i] == '"' && memcmp(p + i + 1, key, kl) == 0 && p[i + 1 + kl] == '"' && p[i + 2 + kl] == ':') {
            return strtoll(p + i + 3 + kl, NULL, 10);
        }
    }
    return -1;
}

static void on_message(sub_t *s, const char *p, size_t n) {
    double t = now_real();
    n_msgs++;
    long long epoch = json_int(p, n, "epoch"), seq = json_int(p, n, "seq"), pub = json_int(p, n, "published_at_ms");
    if (memmem(p, n, "\"type\":\"reset\"", 14) || (s->epoch >= 0 && epoch != s->epoch)) {
        n_resets++;
        s->last_seq = -1;
    }
    s->epoch = epoch;
    if (seq > 0) {
        if (s->last_seq > 0 && seq > s->last_seq + 1) {
            if (s->after_reconnect) n_missed_reconnect += seq - s->last_seq - 1;
            else s->missed += seq - s->last_seq - 1;
        }
        s->after_reconnect = 0;
        if (seq > s->last_seq) s->last_seq = seq;
        if (seq > max_seq) max_seq = seq;
        if (min_seq < 0 || seq < min_seq) min_seq = seq;
    }
    if (s->first_done && pub > 0) {
        double d = (t - (double)pub) * 10.0;
        long b = d < 0 ? 0 : (d > HIST_N ? HIST_N : (long)d);
        hist[b]++;
        n_delay++;
        long long taken = json_int(p, n, "taken_at_ms");
        if (taken > 0) {
            d = (t - (double)taken) * 10.0;
            b = d < 0 ? 0 : (d > HIST_N ? HIST_N : (long)d);
            sample_hist[b]++;
            n_sample_delay++;
        }
    }
    s->first_done = 1;
}

static int send_all(int fd, const char *d, size_t n) {
    while (n) {
        ssize_t w = send(fd, d, n, MSG_NOSIGNAL);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        d += w; n -= (size_t)w;
    }
    return 0;
}

static int send_handshake(sub_t *s) {
    char req[2048], resume[80] = "";
    int n;
    if (s->kind == SSE && s->last_id[0]) snprintf(resume, sizeof resume, "Last-Event-ID: %s\r\n", s->last_id);
    if (s->kind == WS)
        n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     ws_path, host, port, extra_hdr);
    else
        n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n%s%s\r\n",
                     sse_path, host, port, resume, extra_hdr);
    return send_all(s->fd, req, (size_t)n);
}

/* A masked client frame (RFC 6455 5.3): the zero mask keeps the payload as is. */
static int send_frame(sub_t *s, int opcode, const char *p, size_t n) {
    char f[140];
    if (n > 125) n = 125;
    f[0] = (char)(0x80 | opcode);
    f[1] = (char)(0x80 | n);
    memset(f + 2, 0, 4);
    memcpy(f + 6, p, n);
    return send_all(s->fd, f, n + 6);
}

/* Parses what is buffered; returns -1 when the subscription ends. */
static int parse(sub_t *s) {
    if (s->state == HANDSHAKE) {
        char *e = strstr(s->buf, "\r\n\r\n");
        if (!e) return s->len > 16384 ? -1 : 0;
        int want = s->kind == WS ? 101 : 200;
        int code = s->len > 12 ? atoi(s->buf + 9) : 0;
        if (code != want) {
            if (code >= 500) hs_5xx++;
            else if (code == 429) hs_429++;
            else if (code >= 400) hs_4xx++;
            else hs_ok_other++;
            return -1;
        }
        consume(s, (size_t)(e + 4 - s->buf));
        s->state = OPEN;
        return 1;
    }
    if (s->kind == SSE) {
        /* nchan's EventSource replies are chunked: drop chunk-size lines, keep "data:" lines. */
        for (;;) {
            char *e = memmem(s->buf, s->len, "\n\n", 2);
            if (!e) return 0;
            size_t n = (size_t)(e - s->buf) + 2;
            char *d = memmem(s->buf, n, "data:", 5);
            /* The event's "id:" line (after a chunk-size line, or first). */
            char *id = n > 3 && memcmp(s->buf, "id:", 3) == 0 ? s->buf : memmem(s->buf, n, "\nid:", 4);
            if (id) {
                id += *id == '\n' ? 4 : 3;
                while (*id == ' ') id++;
                size_t k = 0;
                while (k + 1 < sizeof s->last_id && id + k < s->buf + n && id[k] != '\n' && id[k] != '\r') {
                    s->last_id[k] = id[k];
                    k++;
                }
                s->last_id[k] = 0;
            }
            if (d) on_message(s, d, n - (size_t)(d - s->buf));
            consume(s, n);
        }
    }
    for (;;) {
        if (s->len < 2) return 0;
        unsigned char *b = (unsigned char *)s->buf;
        int op = b[0] & 0x0f;
        size_t hl = 2, pl = b[1] & 0x7f;
        if (pl == 126) { if (s->len < 4) return 0; pl = ((size_t)b[2] << 8) | b[3]; hl = 4; }
        else if (pl == 127) {
            if (s->len < 10) return 0;
            pl = 0;
            for (int i = 2; i < 10; i++) pl = (pl << 8) | b[i];
            hl = 10;
        }
        if (b[1] & 0x80) hl += 4; /* servers do not mask; tolerate it anyway */
        if (s->len < hl + pl) return 0;
        const char *p = s->buf + hl;
        if (op == 0x1 || op == 0x2) on_message(s, p, pl);
        else if (op == 0x9) { if (send_frame(s, 0xA, p, pl) < 0) return -1; }
        else if (op == 0x8) return -1;
        consume(s, hl + pl);
    }
}

/* Ends a subscription: DONE, or with --reconnect WAITING for its next try. */
static void close_sub(int ep, sub_t *s) {
    int was_open = s->state == OPEN;
    if (s->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
    }
    s->fd = -1;
    s->len = 0;
    if (!reconnect_base) { s->state = DONE; return; }
    double now = now_mono();
    if (was_open || s->ended_at == 0) s->ended_at = now;
    if (!was_open) s->failures++;
    double cap = reconnect_base * (double)(1 << (s->failures < 10 ? s->failures : 10));
    if (cap > 30) cap = 30;
    s->retry_at = now + cap * ((double)random() / RAND_MAX);
    s->state = WAITING;
}

/* Subscriber i's socket from its own 127.0.0.0/8 source address, connecting. */
static void open_sub(int ep, sub_t *s, int i, int per_ip, const struct sockaddr_in *dst) {
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl((127u << 24) | (1u << 16) | (uint32_t)(1 + i / per_ip));
    int one = 1;
    if (s->fd >= 0) setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&src, sizeof src) < 0 ||
        (connect(s->fd, (const struct sockaddr *)dst, sizeof *dst) < 0 && errno != EINPROGRESS)) {
        hs_connect_failed++;
        close_sub(ep, s);
        return;
    }
    s->state = CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static double pct_of(const uint32_t *h, long top, long long n, double q) {
    if (!n) return 0;
    long long want = (long long)(q * (double)n + 0.999999), c = 0;
    if (want < 1) want = 1;
    for (long i = 0; i <= top; i++) { c += h[i]; if (c >= want) return i / 10.0; }
    return top / 10.0;
}
static double pct(double q) { return pct_of(hist, HIST_N, n_delay, q); }
static double spct(double q) { return pct_of(sample_hist, HIST_N, n_sample_delay, q); }

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: subscriber HOST PORT [--ws N] [--sse M] ...\n"); return 2; }
    snprintf(host, sizeof host, "%s", argv[1]);
    port = atoi(argv[2]);
    int nws = 0, nsse = 0, per_ip = 16;
    double duration = 0, rate = 2000;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--ws")) nws = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--sse")) nsse = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--ws-path")) ws_path = argv[i + 1];
        else if (!strcmp(argv[i], "--sse-path")) sse_path = argv[i + 1];
        else if (!strcmp(argv[i], "--duration")) duration = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--connect-rate")) rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--per-ip")) per_ip = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reconnect")) reconnect_base = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--header")) {
            static char h[1024];
            snprintf(h, sizeof h, "%s\r\n", argv[i + 1]);
            extra_hdr = h;
        } else { fprintf(stderr, "subscriber: unknown option %s\n", argv[i]); return 2; }
    }
    if (per_ip < 1) per_ip = 1;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)getpid());

    int total = nws + nsse;
    sub_t *subs = calloc((size_t)total + 1, sizeof *subs);
    int ep = epoll_create1(0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) { fprintf(stderr, "subscriber: HOST must be IPv4\n"); return 2; }
    int opened = 0, connected = 0, failed = 0, closed = 0, announced = 0, open_now = 0, open_said = -1;
    double t0 = now_mono(), next_progress = 1, next_open_line = 0;
    struct epoll_event evs[1024];
    while (!stop_flag) {
        double el = now_mono() - t0;
        if (duration > 0 && el >= duration) break;
        /* Open subscriptions at --connect-rate per second (a SYN burst of thousands overflows the backlog). */
        while (opened < total && opened < (int)(el * rate) + 1) {
            sub_t *s = &subs[opened];
            s->kind = opened < nws ? WS : SSE;
            s->epoch = -1; s->last_seq = -1;
            open_sub(ep, s, opened, per_ip, &dst);
            if (s->state != CONNECTING) failed++;
            opened++;
        }
        int waiting = 0;
        if (reconnect_base) {
            double now = now_mono();
            for (int i = 0; i < opened; i++) {
                if (subs[i].state != WAITING) continue;
                if (subs[i].retry_at <= now) {
                    open_sub(ep, &subs[i], i, per_ip, &dst);
                } else {
                    waiting = 1;
                }
            }
            if (open_now != open_said && el >= next_open_line) {
                fprintf(stderr, "open %d\n", open_now);
                open_said = open_now;
                next_open_line = el + 0.05;
            }
        }
        if (!announced && opened == total && connected + failed >= total) {
            fprintf(stderr, "connected %d failed %d\n", connected, failed);
            announced = 1;
        }
        if (el >= next_progress) {
            fprintf(stderr, "progress %.0f %lld %d\n", el, n_msgs, open_now);
            next_progress += 1;
        }
        int n = epoll_wait(ep, evs, 1024, opened < total ? 1 : waiting ? 5 : 50);
        for (int k = 0; k < n; k++) {
            sub_t *s = &subs[evs[k].data.u32];
            if (s->state == DONE || s->state == WAITING) continue;
            if (s->state == CONNECTING) {
                int err = 0;
                socklen_t l = sizeof err;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (err || send_handshake(s) < 0) {
                    if (!announced) failed++;
                    hs_connect_failed++;
                    close_sub(ep, s);
                    continue;
                }
                s->state = HANDSHAKE;
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[k].data.u32};
                epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
                continue;
            }
            char rb[65536];
            ssize_t r = recv(s->fd, rb, sizeof rb, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            int was_open = s->state == OPEN;
            if (r <= 0) {
                if (!was_open && s->state == HANDSHAKE) hs_unanswered++;
                if (was_open) { closed++; open_now--; } else if (!announced) failed++;
                close_sub(ep, s);
                continue;
            }
            append(s, rb, (size_t)r);
            int pr = parse(s);
            if (pr == 1) {
                open_now++;
                if (s->ended_at > 0) {
                    /* A reconnect: how long the client was without a subscription. */
                    double d = (now_mono() - s->ended_at) * 10000.0;
                    down_hist[d > DOWN_N ? DOWN_N : (long)d]++;
                    n_down++;
                    n_reconnects++;
                    s->ended_at = 0;
                    s->after_reconnect = 1;
                    s->first_done = 0;
                } else {
                    connected++;
                }
                s->failures = 0;
                pr = parse(s);
            }
            if (pr < 0) {
                was_open = s->state == OPEN;
                if (was_open) { closed++; open_now--; } else if (!announced) failed++;
                close_sub(ep, s);
            }
        }
    }
    long long tail = 0, silent = 0;
    /* A subscription waiting to reconnect at the end is neither open nor silent. */
    for (int i = 0; i < opened; i++) {
        n_missed += subs[i].missed;
        /* The newest message may still be on its way at the stop (a fan-out, or the shards' spread): not missed. */
        if (subs[i].state == OPEN && subs[i].last_seq > 0 && max_seq - 1 > subs[i].last_seq) tail += max_seq - 1 - subs[i].last_seq;
        if (subs[i].state == OPEN && subs[i].last_seq <= 0) silent++;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"connected\":%d,\"failed\":%d,\"closed\":%d,\"requested\":%d,\"messages\":%lld,\"missed\":%lld,"
           "\"missed_in_gaps\":%lld,\"missed_at_end\":%lld,\"silent\":%lld,\"resets\":%lld,\"first_seq\":%lld,\"last_seq\":%lld,"
           "\"delay_ms\":{\"p50\":%.1f,\"p95\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"n\":%lld},"
           "\"sample_delay_ms\":{\"p50\":%.1f,\"p95\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"n\":%lld},"
           "\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"wall_s\":%.3f,\"open\":%d,\"reconnects\":%lld,"
           "\"handshake_status\":{\"2xx_other\":%lld,\"4xx\":%lld,\"429\":%lld,\"5xx\":%lld,\"connect_failed\":%lld,\"closed_unanswered\":%lld},"
           "\"down_ms\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"n\":%lld},\"missed_across_reconnects\":%lld}\n",
           connected, failed, closed, total, n_msgs, n_missed + tail, n_missed, tail, silent, n_resets, min_seq, max_seq,
           pct(0.50), pct(0.95), pct(0.99), pct(1.0), n_delay,
           spct(0.50), spct(0.95), spct(0.99), spct(1.0), n_sample_delay,
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
           now_mono() - t0, open_now, n_reconnects, hs_ok_other, hs_4xx, hs_429, hs_5xx, hs_connect_failed, hs_unanswered,
           pct_of(down_hist, DOWN_N, n_down, 0.50), pct_of(down_hist, DOWN_N, n_down, 0.99),
           pct_of(down_hist, DOWN_N, n_down, 1.0), n_down, n_missed_reconnect);
    return 0;
}
