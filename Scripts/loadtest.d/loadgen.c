/*
 * loadgen.c: the HTTP/1.1 load generator of Control Center's load harness.
 *
 * Built on first use by Scripts/loadtest (gcc -O2 -pthread, cached outside
 * the repository).  Driven by a small spec file that the Python orchestrator
 * writes; see Scripts/loadtest.d/cc_loadtest/gen.py for the writer and
 * docs/performance.md for the reasons it exists.
 *
 * Design:
 *  - one epoll loop per thread, non-blocking sockets, TCP_NODELAY,
 *    HTTP/1.1 keep-alive, no pipelining (one request in flight per connection);
 *  - groups of traffic, each either
 *      closed loop: N users, each with its own connection, send -> wait for
 *                   the whole response -> think (fixed/exp/uniform) -> repeat;
 *      open loop:   a constant (or Poisson) arrival rate; every request has an
 *                   INTENDED send time fixed by the schedule, and its latency
 *                   is measured from that time, whatever happened to it
 *                   (waiting for a free connection included), so a stalled
 *                   server cannot hide its queue (no coordinated omission);
 *  - a weighted list of raw request templates per group; the 10-byte marker
 *    "@@SEQ@@@@@" in a template is replaced by the request's unique sequence
 *    number (zero padded, so Content-Length stays valid);
 *  - responses parsed fully: Content-Length, chunked, read-until-close,
 *    1xx skipped, HEAD/204/304 without body;
 *  - a per-request timeout counted from the intended send time;
 *  - one 32-byte binary record per request (see rec_t) written to
 *    OUT.<thread>; the analysis is done afterwards in Python.
 *
 * Every run is bounded: no request starts after `duration`, and the drain
 * after it lasts at most `timeout`.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_TPL 256
#define MAX_GROUPS 32
#define MAX_SEQ_MARKS 8
#define SEQ_MARK "@@SEQ@@@@@"
#define SEQ_LEN 10
#define HBUF 16384
#define LBUF 256
#define RBUF (256 * 1024)
#define RECBUF 65536

enum { E_OK = 0, E_CONNECT = 1, E_TIMEOUT = 2, E_RESET = 3, E_PARSE = 4 };
enum { F_RETRIED = 1, F_NEWCONN = 2 };
enum { PS_HDR, PS_BODY, PS_CLOSE, PS_CSIZE, PS_CDATA, PS_CCRLF, PS_TRAIL };

typedef struct __attribute__((packed)) {
    uint64_t intended_us; /* intended send time, us since the run's t0 */
    uint32_t queue_us;    /* actual start - intended (generator queue / lateness) */
    uint32_t service_us;  /* end - actual start */
    uint32_t seq;         /* unique request number (the @@SEQ@@ value) */
    uint32_t bytes;       /* body bytes received (decoded from chunks) */
    uint16_t endpoint;    /* endpoint id from the spec */
    uint16_t status;      /* HTTP status, 0 if none */
    uint8_t err;          /* E_* */
    uint8_t group;
    uint8_t flags;        /* F_* */
    uint8_t pad;
} rec_t;
_Static_assert(sizeof(rec_t) == 32, "record size");

typedef struct {
    char *data;
    size_t len;
    size_t seqoff[MAX_SEQ_MARKS];
    int nseq;
    int endpoint;
    int group;
    double weight;
    int is_head;
} tpl_t;

typedef struct {
    int open;        /* 0 closed loop, 1 open loop */
    int users;       /* closed */
    double think_ms; /* closed: mean think time */
    int think_dist;  /* 0 fixed, 1 exponential, 2 uniform [0, 2*mean] */
    double rate;     /* open: requests per second */
    int max_conns;   /* open: connection cap */
    int poisson;     /* open: 0 constant spacing, 1 Poisson arrivals */
    double start_s;  /* group starts this many seconds after t0 */
    double stop_s;   /* and stops starting requests here (0 = duration) */
    int ntpl;
    int tpl[MAX_TPL];
    double cum[MAX_TPL];
} group_t;

typedef struct conn {
    int fd;
    int busy;
    int connecting;
    int want_out;
    int group;
    int tpl;
    uint32_t seq;
    uint64_t intended, start;
    char *wbuf, *priv;
    size_t privcap, wlen, woff;
    uint32_t served;
    uint8_t flags;
    int ps;
    size_t hlen, llen;
    uint64_t remaining, body;
    int status, close_after, is_head;
    uint64_t got;
    char hbuf[HBUF];
    char lbuf[LBUF];
} conn_t;

typedef struct {
    uint64_t intended;
    int tpl;
} pend_t;

typedef struct {
    int g;
    double interval_us;
    double next_f;
    uint64_t start_us, stop_us;
    int base, maxc;
    int *idle_open, nidle_open;
    int *unopened, nunopened;
    pend_t *q;
    size_t qhead, qlen, qcap;
} ol_t;

typedef struct {
    uint64_t wake;
    int idx;
} hent_t;

typedef struct {
    int id;
    int ep;
    uint64_t rng;
    conn_t *conns;
    int nconns;
    /* closed-loop users */
    hent_t *heap;
    int nheap, capheap;
    int *user_group; /* per conn: -1 for open-loop slots */
    /* open-loop */
    ol_t ol[MAX_GROUPS];
    int nol;
    int *conn_ol; /* per conn: index into ol or -1 */
    FILE *out;
    rec_t *rbuf;
    size_t rn;
    uint64_t inflight;
    uint32_t seqctr;
    char *rdbuf;
} thr_t;

static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static double g_duration = 10.0, g_timeout = 5.0;
static int g_threads = 1, g_progress = 0;
static uint64_t g_seed = 12345;
static char g_out[4096] = "loadgen.rec";
static tpl_t g_tpl[MAX_TPL];
static int g_ntpl;
static group_t g_groups[MAX_GROUPS];
static int g_ngroups;
static volatile sig_atomic_t g_stop;
static uint64_t g_t0, g_end_us, g_timeout_us;
static uint64_t g_cnt_done, g_cnt_err, g_cnt_retry, g_cnt_errk[8];
static int g_have_pwait2 = 1;

static uint64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000ull;
}

static void die(const char *fmt, const char *arg) {
    fprintf(stderr, "loadgen: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

static double rnd(thr_t *t) { /* xorshift64*, uniform in (0,1) */
    uint64_t x = t->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    return ((double)((x * 2685821657736338717ull) >> 11) + 0.5) / 9007199254740992.0;
}

/* ---------------- spec ---------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s", path);
    struct stat st;
    if (fstat(fileno(f), &st) != 0) die("cannot stat %s", path);
    char *b = malloc((size_t)st.st_size + 1);
    size_t n = fread(b, 1, (size_t)st.st_size, f);
    fclose(f);
    b[n] = 0;
    *len = n;
    return b;
}

static const char *kv(const char *line, const char *key) {
    size_t kl = strlen(key);
    const char *p = line;
    while ((p = strstr(p, key)) != NULL) {
        if ((p == line || p[-1] == ' ') && p[kl] == '=') return p + kl + 1;
        p += kl;
    }
    return NULL;
}

static void parse_spec(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot open spec %s", path);
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char a[256], b[256];
        if (sscanf(line, "addr %255s %255s", a, b) == 2) {
            int port = atoi(b);
            struct sockaddr_in *s4 = (struct sockaddr_in *)&g_addr;
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&g_addr;
            memset(&g_addr, 0, sizeof g_addr);
            if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
                s4->sin_family = AF_INET;
                s4->sin_port = htons((uint16_t)port);
                g_addrlen = sizeof *s4;
            } else if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons((uint16_t)port);
                g_addrlen = sizeof *s6;
            } else
                die("bad address %s", a);
        } else if (sscanf(line, "duration %255s", a) == 1 && !strncmp(line, "duration", 8)) {
            g_duration = atof(a);
        } else if (!strncmp(line, "timeout ", 8)) {
            g_timeout = atof(line + 8);
        } else if (!strncmp(line, "threads ", 8)) {
            g_threads = atoi(line + 8);
        } else if (!strncmp(line, "seed ", 5)) {
            g_seed = strtoull(line + 5, NULL, 10);
        } else if (!strncmp(line, "progress ", 9)) {
            g_progress = atoi(line + 9);
        } else if (!strncmp(line, "out ", 4)) {
            snprintf(g_out, sizeof g_out, "%s", line + 4);
        } else if (!strncmp(line, "group ", 6)) {
            if (g_ngroups >= MAX_GROUPS) die("too many groups%s", "");
            group_t *g = &g_groups[g_ngroups++];
            memset(g, 0, sizeof *g);
            const char *v;
            g->open = strstr(line, " open") != NULL;
            if ((v = kv(line, "users"))) g->users = atoi(v);
            if ((v = kv(line, "think_ms"))) g->think_ms = atof(v);
            if ((v = kv(line, "dist"))) {
                if (!strncmp(v, "exp", 3)) g->think_dist = 1;
                else if (!strncmp(v, "uniform", 7)) g->think_dist = 2;
                else if (!strncmp(v, "poisson", 7)) g->poisson = 1;
            }
            if ((v = kv(line, "rate"))) g->rate = atof(v);
            g->max_conns = 1000;
            if ((v = kv(line, "max_conns"))) g->max_conns = atoi(v);
            if ((v = kv(line, "start"))) g->start_s = atof(v);
            if ((v = kv(line, "stop"))) g->stop_s = atof(v);
            if (g->open && g->rate <= 0) die("open group needs rate=%s", "");
            if (!g->open && g->users <= 0) die("closed group needs users=%s", "");
            if (g->max_conns < 1) g->max_conns = 1;
        } else if (!strncmp(line, "tpl ", 4)) {
            int gi, ep;
            double w;
            char file[4096];
            if (sscanf(line, "tpl %d %lf %d %4095s", &gi, &w, &ep, file) != 4) die("bad tpl line: %s", line);
            if (gi < 0 || gi >= g_ngroups) die("tpl for unknown group: %s", line);
            if (g_ntpl >= MAX_TPL) die("too many templates%s", "");
            tpl_t *tp = &g_tpl[g_ntpl];
            tp->data = read_file(file, &tp->len);
            tp->endpoint = ep;
            tp->group = gi;
            tp->weight = w;
            tp->is_head = tp->len >= 5 && !memcmp(tp->data, "HEAD ", 5);
            tp->nseq = 0;
            for (char *p = tp->data; (p = memmem(p, tp->len - (size_t)(p - tp->data), SEQ_MARK, SEQ_LEN)) != NULL;
                 p += SEQ_LEN) {
                if (tp->nseq < MAX_SEQ_MARKS) tp->seqoff[tp->nseq++] = (size_t)(p - tp->data);
            }
            group_t *g = &g_groups[gi];
            double prev = g->ntpl ? g->cum[g->ntpl - 1] : 0.0;
            g->tpl[g->ntpl] = g_ntpl;
            g->cum[g->ntpl] = prev + w;
            g->ntpl++;
            g_ntpl++;
        } else {
            die("unknown spec line: %s", line);
        }
    }
    fclose(f);
    if (!g_addrlen) die("spec has no addr%s", "");
    if (!g_ngroups) die("spec has no group%s", "");
    for (int i = 0; i < g_ngroups; i++)
        if (!g_groups[i].ntpl || g_groups[i].cum[g_groups[i].ntpl - 1] <= 0) die("a group has no requests%s", "");
    if (g_threads < 1) g_threads = 1;
    if (g_threads > 64) g_threads = 64;
}

/* ---------------- heap of sleeping users ---------------- */

static void heap_push(thr_t *t, uint64_t wake, int idx) {
    if (t->nheap == t->capheap) {
        t->capheap = t->capheap ? t->capheap * 2 : 64;
        t->heap = realloc(t->heap, sizeof(hent_t) * (size_t)t->capheap);
    }
    int i = t->nheap++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (t->heap[p].wake <= wake) break;
        t->heap[i] = t->heap[p];
        i = p;
    }
    t->heap[i].wake = wake;
    t->heap[i].idx = idx;
}

static hent_t heap_pop(thr_t *t) {
    hent_t top = t->heap[0];
    hent_t last = t->heap[--t->nheap];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        uint64_t mw = last.wake;
        if (l < t->nheap && t->heap[l].wake < mw) { m = l; mw = t->heap[l].wake; }
        if (r < t->nheap && t->heap[r].wake < mw) { m = r; }
        if (m == i) break;
        t->heap[i] = t->heap[m];
        i = m;
    }
    if (t->nheap) t->heap[i] = last;
    return top;
}

/* ---------------- records ---------------- */

static void rec_flush(thr_t *t) {
    if (t->rn) {
        if (fwrite(t->rbuf, sizeof(rec_t), t->rn, t->out) != t->rn) {
            fprintf(stderr, "loadgen: write error on records\n");
            exit(2);
        }
        t->rn = 0;
    }
}

static void record(thr_t *t, conn_t *c, uint64_t intended, uint64_t start, uint64_t end, int tpl, uint32_t seq,
                   int status, uint64_t bytes, int err, int flags, int group) {
    rec_t *r = &t->rbuf[t->rn++];
    r->intended_us = intended - g_t0;
    uint64_t q = start > intended ? start - intended : 0;
    uint64_t s = end > start ? end - start : 0;
    r->queue_us = q > 0xffffffffull ? 0xffffffffu : (uint32_t)q;
    r->service_us = s > 0xffffffffull ? 0xffffffffu : (uint32_t)s;
    r->seq = seq;
    r->bytes = bytes > 0xffffffffull ? 0xffffffffu : (uint32_t)bytes;
    r->endpoint = (uint16_t)g_tpl[tpl].endpoint;
    r->status = (uint16_t)status;
    r->err = (uint8_t)err;
    r->group = (uint8_t)group;
    r->flags = (uint8_t)flags;
    r->pad = 0;
    (void)c;
    __atomic_fetch_add(&g_cnt_done, 1, __ATOMIC_RELAXED);
    if (err) {
        __atomic_fetch_add(&g_cnt_err, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&g_cnt_errk[err & 7], 1, __ATOMIC_RELAXED);
    }
    if (t->rn == RECBUF) rec_flush(t);
}

/* ---------------- connections ---------------- */

static int pick_tpl(thr_t *t, int gi) {
    group_t *g = &g_groups[gi];
    double x = rnd(t) * g->cum[g->ntpl - 1];
    for (int i = 0; i < g->ntpl; i++)
        if (x < g->cum[i]) return g->tpl[i];
    return g->tpl[g->ntpl - 1];
}

static void conn_close(conn_t *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->connecting = 0;
    c->want_out = 0;
    c->served = 0;
}

static void finish(thr_t *t, int idx, int err, uint64_t now);
static void do_write(thr_t *t, int idx);

static void set_events(thr_t *t, int idx, int want_out) {
    conn_t *c = &t->conns[idx];
    if (c->want_out == want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.u32 = (uint32_t)idx};
    epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

static int conn_open(thr_t *t, int idx) {
    conn_t *c = &t->conns[idx];
    int fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->served = 0;
    c->flags |= F_NEWCONN;
    int r = connect(fd, (struct sockaddr *)&g_addr, g_addrlen);
    if (r != 0 && errno != EINPROGRESS) {
        conn_close(c);
        return -1;
    }
    c->connecting = (r != 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)idx};
    if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        conn_close(c);
        return -1;
    }
    c->want_out = 1;
    return 0;
}

static void reset_parser(conn_t *c) {
    c->ps = PS_HDR;
    c->hlen = c->llen = 0;
    c->remaining = c->body = 0;
    c->status = 0;
    c->close_after = 0;
    c->got = 0;
}

static void start_request(thr_t *t, int idx, int tpl, uint64_t intended, uint64_t now) {
    conn_t *c = &t->conns[idx];
    tpl_t *tp = &g_tpl[tpl];
    c->busy = 1;
    c->tpl = tpl;
    c->intended = intended;
    c->start = now;
    c->flags = 0;
    c->seq = t->seqctr++ * (uint32_t)g_threads + (uint32_t)t->id;
    c->is_head = tp->is_head;
    t->inflight++;
    if (tp->nseq) {
        /* private copy with the sequence number written in */
        if (c->privcap < tp->len) {
            free(c->priv);
            c->privcap = tp->len;
            c->priv = malloc(c->privcap);
        }
        memcpy(c->priv, tp->data, tp->len);
        char num[16];
        snprintf(num, sizeof num, "%010u", c->seq);
        for (int i = 0; i < tp->nseq; i++) memcpy(c->priv + tp->seqoff[i], num, SEQ_LEN);
        c->wbuf = c->priv;
    } else {
        c->wbuf = tp->data;
    }
    c->wlen = tp->len;
    c->woff = 0;
    reset_parser(c);
    if (c->fd < 0) {
        if (conn_open(t, idx) != 0) {
            finish(t, idx, E_CONNECT, now);
            return;
        }
        if (c->connecting) return;
    }
    do_write(t, idx);
}

/* A connection failed while a request was on it. A kept-alive connection
 * that the server had already closed (idle timeout, reload) fails before a
 * single response byte: retry that once on a fresh connection, as browsers
 * and HTTP client libraries do. */
static void conn_failed(thr_t *t, int idx, int err, uint64_t now) {
    conn_t *c = &t->conns[idx];
    if (err == E_RESET && c->got == 0 && c->served > 0 && !(c->flags & F_RETRIED)) {
        conn_close(c);
        c->flags |= F_RETRIED;
        __atomic_fetch_add(&g_cnt_retry, 1, __ATOMIC_RELAXED);
        c->woff = 0;
        reset_parser(c);
        uint8_t fl = c->flags;
        if (conn_open(t, idx) != 0) {
            c->flags = fl | F_NEWCONN;
            finish(t, idx, E_CONNECT, now);
            return;
        }
        c->flags = fl | F_NEWCONN;
        if (!c->connecting) do_write(t, idx);
        return;
    }
    finish(t, idx, err, now);
}

static void do_write(thr_t *t, int idx) {
    conn_t *c = &t->conns[idx];
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(t, idx, 1);
            return;
        }
        if (n < 0 && errno == EINTR) continue;
        conn_failed(t, idx, E_RESET, mono_us());
        return;
    }
    set_events(t, idx, 0);
}

static const char *find_hdr_end(const char *b, size_t from, size_t len) {
    if (len < 4) return NULL;
    const char *p = memmem(b + from, len - from, "\r\n\r\n", 4);
    return p;
}

static int header_is(const char *line, size_t ll, const char *name) {
    size_t nl = strlen(name);
    return ll > nl && line[nl] == ':' && !strncasecmp(line, name, nl);
}

static int contains_ci(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!strncasecmp(s + i, needle, k)) return 1;
    return 0;
}

/* Parse the header block c->hbuf[0..hend). Returns 1 when the response is
 * complete (no body), 0 when a body follows, -1 on a malformed response. */
static int parse_headers(conn_t *c, size_t hend) {
    char *b = c->hbuf;
    if (hend < 12 || strncmp(b, "HTTP/1.", 7) != 0) return -1;
    int minor = b[7] - '0';
    if (b[8] != ' ') return -1;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (b[i] < '0' || b[i] > '9') return -1;
        st = st * 10 + (b[i] - '0');
    }
    c->status = st;
    int chunked = 0, has_len = 0, ka = 0, close = 0;
    uint64_t clen = 0;
    char *p = memchr(b, '\n', hend);
    if (!p) return -1;
    p++;
    while (p < b + hend) {
        char *e = memchr(p, '\n', (size_t)(b + hend - p));
        if (!e) break;
        size_t ll = (size_t)(e - p);
        if (ll && p[ll - 1] == '\r') ll--;
        if (ll == 0) break;
        if (header_is(p, ll, "content-length")) {
            char *v = p + 15;
            while (*v == ' ' || *v == '\t') v++;
            clen = strtoull(v, NULL, 10);
            has_len = 1;
        } else if (header_is(p, ll, "transfer-encoding")) {
            if (contains_ci(p, ll, "chunked")) chunked = 1;
        } else if (header_is(p, ll, "connection")) {
            if (contains_ci(p + 11, ll - 11, "close")) close = 1;
            if (contains_ci(p + 11, ll - 11, "keep-alive")) ka = 1;
        }
        p = e + 1;
    }
    if (st >= 100 && st < 200) return 2; /* interim response: skip it */
    c->close_after = close || (minor == 0 && !ka);
    if (c->is_head || st == 204 || st == 304) return 1;
    if (chunked) {
        c->ps = PS_CSIZE;
        c->llen = 0;
        return 0;
    }
    if (has_len) {
        if (clen == 0) return 1;
        c->remaining = clen;
        c->ps = PS_BODY;
        return 0;
    }
    c->ps = PS_CLOSE;
    c->close_after = 1;
    return 0;
}

/* Feed bytes to the parser. Returns 1 when the response is complete, 0 when
 * more is needed, -1 on a protocol error. */
static int feed(conn_t *c, const char *p, size_t n) {
    c->got += n;
    while (n > 0) {
        switch (c->ps) {
        case PS_HDR: {
            size_t old = c->hlen;
            size_t room = HBUF - 1 - old;
            size_t take = n < room ? n : room;
            if (take == 0) return -1;
            memcpy(c->hbuf + old, p, take);
            c->hlen += take;
            const char *e = find_hdr_end(c->hbuf, old >= 3 ? old - 3 : 0, c->hlen);
            if (!e) {
                p += take;
                n -= take;
                if (c->hlen >= HBUF - 1) return -1;
                break;
            }
            size_t hend = (size_t)(e - c->hbuf) + 4;
            size_t used = hend - old;
            p += used;
            n -= used;
            int r = parse_headers(c, hend);
            if (r < 0) return -1;
            if (r == 2) {
                c->hlen = 0;
                break;
            }
            if (r == 1) return 1;
            break;
        }
        case PS_BODY: {
            size_t take = n < c->remaining ? n : (size_t)c->remaining;
            c->body += take;
            c->remaining -= take;
            p += take;
            n -= take;
            if (c->remaining == 0) return 1;
            break;
        }
        case PS_CLOSE:
            c->body += n;
            n = 0;
            break;
        case PS_CDATA: {
            size_t take = n < c->remaining ? n : (size_t)c->remaining;
            c->body += take;
            c->remaining -= take;
            p += take;
            n -= take;
            if (c->remaining == 0) {
                c->ps = PS_CCRLF;
                c->llen = 0;
            }
            break;
        }
        case PS_CSIZE:
        case PS_CCRLF:
        case PS_TRAIL: {
            const char *nl = memchr(p, '\n', n);
            size_t take = nl ? (size_t)(nl - p) + 1 : n;
            size_t room = LBUF - 1 - c->llen;
            size_t cp = take < room ? take : room;
            memcpy(c->lbuf + c->llen, p, cp);
            c->llen += cp;
            p += take;
            n -= take;
            if (!nl) {
                if (c->llen >= LBUF - 1 && c->ps != PS_TRAIL) return -1;
                break;
            }
            c->lbuf[c->llen] = 0;
            size_t ll = c->llen;
            while (ll && (c->lbuf[ll - 1] == '\n' || c->lbuf[ll - 1] == '\r')) ll--;
            c->llen = 0;
            if (c->ps == PS_CSIZE) {
                char *end;
                if (!isxdigit((unsigned char)c->lbuf[0])) return -1;
                unsigned long long sz = strtoull(c->lbuf, &end, 16);
                if (sz == 0) {
                    c->ps = PS_TRAIL;
                } else {
                    c->remaining = sz;
                    c->ps = PS_CDATA;
                }
            } else if (c->ps == PS_CCRLF) {
                if (ll != 0) return -1;
                c->ps = PS_CSIZE;
            } else {
                if (ll == 0) return 1;
            }
            break;
        }
        }
    }
    return 0;
}

static void do_read(thr_t *t, int idx) {
    conn_t *c = &t->conns[idx];
    for (int round = 0; round < 8; round++) {
        ssize_t n = recv(c->fd, t->rdbuf, RBUF, 0);
        if (n > 0) {
            if (!c->busy) { /* data on an idle connection: not ours to keep */
                conn_close(c);
                return;
            }
            int r = feed(c, t->rdbuf, (size_t)n);
            if (r == 1) {
                finish(t, idx, E_OK, mono_us());
                return;
            }
            if (r < 0) {
                finish(t, idx, E_PARSE, mono_us());
                return;
            }
            if ((size_t)n < RBUF) return;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0 && errno == EINTR) continue;
        /* EOF or error */
        if (!c->busy) {
            conn_close(c);
            return;
        }
        if (n == 0 && c->ps == PS_CLOSE) {
            finish(t, idx, E_OK, mono_us());
            return;
        }
        conn_failed(t, idx, E_RESET, mono_us());
        return;
    }
}

/* ---------------- scheduling ---------------- */

static void ol_dispatch(thr_t *t, ol_t *o, uint64_t now);

static void finish(thr_t *t, int idx, int err, uint64_t now) {
    conn_t *c = &t->conns[idx];
    int gi = c->group;
    record(t, c, c->intended, c->start, now, c->tpl, c->seq, err ? (err == E_PARSE ? c->status : 0) : c->status,
           c->body, err, c->flags, gi);
    if (err == E_OK && c->status == 0) { /* cannot happen, but never record a 0 as success */
    }
    c->busy = 0;
    t->inflight--;
    if (err || c->close_after)
        conn_close(c);
    else
        c->served++;
    group_t *g = &g_groups[gi];
    if (!g->open) {
        double think = 0;
        if (g->think_ms > 0) {
            if (g->think_dist == 1)
                think = -log(rnd(t)) * g->think_ms;
            else if (g->think_dist == 2)
                think = rnd(t) * 2.0 * g->think_ms;
            else
                think = g->think_ms;
        }
        if (err == E_CONNECT && think < 10.0) think = 10.0; /* no busy loop while the server is down */
        uint64_t wake = now + (uint64_t)(think * 1000.0);
        uint64_t stop = g->stop_s > 0 ? g_t0 + (uint64_t)(g->stop_s * 1e6) : g_end_us;
        if (stop > g_end_us) stop = g_end_us;
        if (wake < stop) heap_push(t, wake, idx);
    } else {
        ol_t *o = &t->ol[t->conn_ol[idx]];
        if (c->fd >= 0)
            o->idle_open[o->nidle_open++] = idx;
        else
            o->unopened[o->nunopened++] = idx;
        ol_dispatch(t, o, now);
    }
}

static void ol_push(ol_t *o, uint64_t intended, int tpl) {
    if (o->qlen == o->qcap) {
        size_t nc = o->qcap ? o->qcap * 2 : 1024;
        pend_t *nq = malloc(sizeof(pend_t) * nc);
        for (size_t i = 0; i < o->qlen; i++) nq[i] = o->q[(o->qhead + i) % o->qcap];
        free(o->q);
        o->q = nq;
        o->qcap = nc;
        o->qhead = 0;
    }
    o->q[(o->qhead + o->qlen) % o->qcap] = (pend_t){intended, tpl};
    o->qlen++;
}

static void ol_dispatch(thr_t *t, ol_t *o, uint64_t now) {
    while (o->qlen) {
        int idx = -1;
        while (o->nidle_open) {
            int k = o->idle_open[--o->nidle_open];
            if (t->conns[k].fd >= 0) {
                idx = k;
                break;
            }
            o->unopened[o->nunopened++] = k;
        }
        if (idx < 0 && o->nunopened) idx = o->unopened[--o->nunopened];
        if (idx < 0) return;
        pend_t pd = o->q[o->qhead];
        o->qhead = (o->qhead + 1) % o->qcap;
        o->qlen--;
        start_request(t, idx, pd.tpl, pd.intended, now);
    }
}

/* Requests that waited in the generator queue past the timeout: the server
 * never had a free connection for them; they count as timeouts, measured
 * from their intended send time. */
static void ol_expire(thr_t *t, ol_t *o, uint64_t now) {
    while (o->qlen) {
        pend_t *pd = &o->q[o->qhead];
        if (now - pd->intended < g_timeout_us) break;
        uint32_t seq = t->seqctr++ * (uint32_t)g_threads + (uint32_t)t->id;
        record(t, NULL, pd->intended, now, now, pd->tpl, seq, 0, 0, E_TIMEOUT, 0, o->g);
        o->qhead = (o->qhead + 1) % o->qcap;
        o->qlen--;
    }
}

static void scan_timeouts(thr_t *t, uint64_t now) {
    for (int i = 0; i < t->nconns; i++) {
        conn_t *c = &t->conns[i];
        if (c->busy && now > c->intended && now - c->intended >= g_timeout_us) finish(t, i, E_TIMEOUT, now);
    }
    for (int k = 0; k < t->nol; k++) ol_expire(t, &t->ol[k], now);
}

static void on_event(thr_t *t, uint32_t idx, uint32_t evs) {
    conn_t *c = &t->conns[idx];
    if (c->fd < 0) return;
    if (c->connecting) {
        if (evs & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            int err = 0;
            socklen_t l = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
            if (err) {
                conn_close(c);
                if (c->busy) finish(t, (int)idx, E_CONNECT, mono_us());
                return;
            }
            c->connecting = 0;
            if (c->busy) do_write(t, (int)idx);
            else set_events(t, (int)idx, 0);
        }
        return;
    }
    if ((evs & EPOLLOUT) && c->busy && c->woff < c->wlen) {
        do_write(t, (int)idx);
        if (c->fd < 0 || !c->busy) return;
    }
    if (evs & (EPOLLIN | EPOLLHUP | EPOLLERR)) do_read(t, (int)idx);
}

static void *thread_main(void *arg) {
    thr_t *t = arg;
    char path[4200];
    snprintf(path, sizeof path, "%s.%d", g_out, t->id);
    t->out = fopen(path, "wb");
    if (!t->out) die("cannot write %s", path);
    t->rbuf = malloc(sizeof(rec_t) * RECBUF);
    t->rdbuf = malloc(RBUF);
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    t->rng = g_seed * 0x9E3779B97F4A7C15ull + (uint64_t)t->id * 0xBF58476D1CE4E5B9ull + 1;
    /* lay out connections: closed users, then open-loop slots */
    int total = 0;
    for (int gi = 0; gi < g_ngroups; gi++) {
        group_t *g = &g_groups[gi];
        if (!g->open) {
            int share = g->users / g_threads + (t->id < g->users % g_threads ? 1 : 0);
            total += share;
        } else {
            int share = (g->max_conns + g_threads - 1) / g_threads;
            total += share;
        }
    }
    t->conns = calloc((size_t)(total ? total : 1), sizeof(conn_t));
    t->conn_ol = calloc((size_t)(total ? total : 1), sizeof(int));
    t->nconns = total;
    uint64_t now = g_t0;
    int at = 0;
    for (int gi = 0; gi < g_ngroups; gi++) {
        group_t *g = &g_groups[gi];
        uint64_t gstart = g_t0 + (uint64_t)(g->start_s * 1e6);
        uint64_t gstop = g->stop_s > 0 ? g_t0 + (uint64_t)(g->stop_s * 1e6) : g_end_us;
        if (gstop > g_end_us) gstop = g_end_us;
        if (!g->open) {
            int share = g->users / g_threads + (t->id < g->users % g_threads ? 1 : 0);
            for (int u = 0; u < share; u++, at++) {
                conn_t *c = &t->conns[at];
                c->fd = -1;
                c->group = gi;
                t->conn_ol[at] = -1;
                /* spread the first requests over one think time */
                uint64_t off = g->think_ms > 0 ? (uint64_t)(rnd(t) * g->think_ms * 1000.0) : 0;
                if (gstart + off < gstop) heap_push(t, gstart + off, at);
            }
        } else {
            int share = (g->max_conns + g_threads - 1) / g_threads;
            ol_t *o = &t->ol[t->nol];
            memset(o, 0, sizeof *o);
            o->g = gi;
            double trate = g->rate / g_threads;
            o->interval_us = 1e6 / trate;
            o->start_us = gstart;
            o->stop_us = gstop;
            /* threads interleave their schedules */
            o->next_f = (double)gstart + (1e6 / g->rate) * t->id;
            o->base = at;
            o->maxc = share;
            o->idle_open = malloc(sizeof(int) * (size_t)share);
            o->unopened = malloc(sizeof(int) * (size_t)share);
            for (int k = share - 1; k >= 0; k--) {
                conn_t *c = &t->conns[at + k];
                c->fd = -1;
                c->group = gi;
                t->conn_ol[at + k] = t->nol;
                o->unopened[o->nunopened++] = at + k;
            }
            at += share;
            t->nol++;
        }
    }
    (void)now;
    struct epoll_event evs[512];
    uint64_t last_scan = g_t0, next_prog = g_t0 + 1000000;
    int stopping = 0;
    for (;;) {
        now = mono_us();
        if (g_stop && !stopping) {
            stopping = 1;
            g_end_us = now;
        }
        /* next deadline */
        uint64_t dl = now + 10000;
        if (t->nheap && t->heap[0].wake < dl) dl = t->heap[0].wake;
        for (int k = 0; k < t->nol; k++) {
            ol_t *o = &t->ol[k];
            uint64_t nx = (uint64_t)o->next_f;
            if (nx < o->stop_us && nx < dl) dl = nx;
        }
        int n;
        if (dl > now) {
            uint64_t w = dl - now;
            if (g_have_pwait2) {
                struct timespec ts = {.tv_sec = (time_t)(w / 1000000), .tv_nsec = (long)(w % 1000000) * 1000};
                n = epoll_pwait2(t->ep, evs, 512, &ts, NULL);
                if (n < 0 && errno == ENOSYS) {
                    g_have_pwait2 = 0;
                    n = epoll_wait(t->ep, evs, 512, (int)((w + 999) / 1000));
                }
            } else {
                n = epoll_wait(t->ep, evs, 512, (int)((w + 999) / 1000));
            }
        } else {
            n = epoll_wait(t->ep, evs, 512, 0);
        }
        for (int i = 0; i < n; i++) on_event(t, evs[i].data.u32, evs[i].events);
        now = mono_us();
        /* users whose think time is over */
        while (t->nheap && t->heap[0].wake <= now) {
            hent_t h = heap_pop(t);
            group_t *g = &g_groups[t->conns[h.idx].group];
            uint64_t gstop = g->stop_s > 0 ? g_t0 + (uint64_t)(g->stop_s * 1e6) : g_end_us;
            if (gstop > g_end_us) gstop = g_end_us;
            if (now >= gstop) continue;
            start_request(t, h.idx, pick_tpl(t, t->conns[h.idx].group), h.wake, now);
        }
        /* open-loop arrivals */
        for (int k = 0; k < t->nol; k++) {
            ol_t *o = &t->ol[k];
            uint64_t stop = o->stop_us < g_end_us ? o->stop_us : g_end_us;
            int added = 0;
            while ((uint64_t)o->next_f <= now && (uint64_t)o->next_f < stop) {
                ol_push(o, (uint64_t)o->next_f, pick_tpl(t, o->g));
                added++;
                if (g_groups[o->g].poisson)
                    o->next_f += -log(rnd(t)) * o->interval_us;
                else
                    o->next_f += o->interval_us;
            }
            if (added || o->qlen) ol_dispatch(t, o, now);
        }
        if (now - last_scan >= 10000) {
            scan_timeouts(t, now);
            last_scan = now;
        }
        if (g_progress && t->id == 0 && now >= next_prog) {
            fprintf(stderr, "progress %.1f %llu %llu\n", (double)(now - g_t0) / 1e6,
                    (unsigned long long)__atomic_load_n(&g_cnt_done, __ATOMIC_RELAXED),
                    (unsigned long long)__atomic_load_n(&g_cnt_err, __ATOMIC_RELAXED));
            next_prog += 1000000;
        }
        if (now >= g_end_us) {
            int queued = 0;
            for (int k = 0; k < t->nol; k++) queued += (int)t->ol[k].qlen;
            if (t->inflight == 0 && queued == 0) break;
            /* hard bound: the drain never outlasts the timeout (+1 s) */
            if (now > g_end_us + g_timeout_us + 1000000) {
                scan_timeouts(t, now + g_timeout_us + 1);
                break;
            }
        }
    }
    rec_flush(t);
    fclose(t->out);
    for (int i = 0; i < t->nconns; i++) conn_close(&t->conns[i]);
    close(t->ep);
    return NULL;
}

static void on_signal(int s) {
    (void)s;
    g_stop = 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: loadgen SPECFILE\n");
        return 2;
    }
    parse_spec(argv[1]);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    g_timeout_us = (uint64_t)(g_timeout * 1e6);
    g_t0 = mono_us() + 20000; /* all threads start on the same tick */
    g_end_us = g_t0 + (uint64_t)(g_duration * 1e6);
    pthread_t th[64];
    thr_t *ts = calloc((size_t)g_threads, sizeof(thr_t));
    for (int i = 0; i < g_threads; i++) {
        ts[i].id = i;
        pthread_create(&th[i], NULL, thread_main, &ts[i]);
    }
    for (int i = 0; i < g_threads; i++) pthread_join(th[i], NULL);
    uint64_t end = mono_us();
    double el = (double)(end - g_t0) / 1e6;
    printf("{\"requests\":%llu,\"errors\":%llu,\"connect\":%llu,\"timeout\":%llu,\"reset\":%llu,\"parse\":%llu,"
           "\"retries\":%llu,\"elapsed_s\":%.3f,\"threads\":%d,\"t0_monotonic_us\":%llu}\n",
           (unsigned long long)g_cnt_done, (unsigned long long)g_cnt_err, (unsigned long long)g_cnt_errk[E_CONNECT],
           (unsigned long long)g_cnt_errk[E_TIMEOUT], (unsigned long long)g_cnt_errk[E_RESET],
           (unsigned long long)g_cnt_errk[E_PARSE], (unsigned long long)g_cnt_retry, el, g_threads,
           (unsigned long long)g_t0);
    return 0;
}
