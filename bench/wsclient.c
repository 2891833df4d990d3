/* bench/wsclient.c: a lean receive-only WebSocket client for bench/fanout.py (--client-impl c).
 *
 * Why: in a burst the Python client worker (asyncio, json.loads per frame) spends more CPU per
 * delivery than the server it measures, so on a 2-core machine the clients, not the servers,
 * take the cores. This one does what `client_worker` does with libc alone: one process, epoll
 * (level-triggered), nonblocking sockets, big reads, frames parsed in place, and only the three
 * JSON fields it needs ("type", "id", "data"."t") picked out of each text frame.
 *
 *     gcc -O2 -Wall -Wextra -o wsclient bench/wsclient.c
 *
 * Commands, one per line on stdin (bench/fanout.py `c_command` writes them):
 *     open <concurrency> <origin|-> [source-ip ...]   then one ws:// URL per line, then: end
 *     phase <name> <id> [<id> ...]
 *     cpu | report | close
 * Answers on stdout: the same JSON lines client_worker writes (opened, reached, progress, cpu,
 * report, closed). Latencies use CLOCK_MONOTONIC, the clock of Python's perf_counter, so an
 * event's "data":{"t":...} stamped by the emitter is comparable with our receipt time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (1 << 20)     /* the shared read buffer: many frames per recv() */
#define MAX_FRAME (64u << 20)    /* a bigger frame is a protocol error here */
#define MAX_EVENT_ID (1L << 20) /* ids index arrays (~34 bytes each, grown by doubling:
                                   71 MB at most); fanout.py numbers its events from 1 up (and
                                   refuses to send more), so a larger id is a stray: ignored */
#define WELCOME_TIMEOUT 120.0    /* like open_share's wait_for(fut, 120) */
#define MAX_PHASES 32

enum { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_DONE };

typedef struct {
    double *v;
    size_t n, cap;
} dvec;

typedef struct {
    int fd;
    int state;
    int greeted;    /* the welcome came (or the handshake was refused: counted then) */
    int resolved;   /* counted in its open's outcome (welcomed, failed or timed out) */
    int close_code; /* from the server's close frame; -1 = none (Python's None) */
    int source;     /* index into the open's source addresses, -1 = any */
    double deadline;
    const char *url;
    unsigned char *pend; /* bytes of a frame (or the HTTP answer) split across reads */
    size_t plen, pcap;
    int lowat;     /* its SO_RCVLOWAT now (0 or 1: the kernel's default) */
    long burst_got; /* burst frames received since the burst's watermark was armed */
    long minframe; /* bytes of its smallest event frame so far (0: none yet) */
} conn;

typedef struct {
    char name[96];
    long n;
} reason;

/* ------------------------------------------------------------------------------ state */

static int ep;
static int stdin_tag; /* its address marks stdin in the epoll set */
static unsigned char *rbuf;
static size_t rcap = READ_CHUNK;
static uint64_t rng;

static long held;
static int finished;
static long total;
static double last_receipt, last_progress;

static long *counts;
static signed char *phase_of; /* index into phases; 0 = "?" (no phase told yet) */
static char *pending;         /* a "reached" is owed once every socket has it */
static dvec *by_event;        /* single events' latencies, per id */
static long ids_cap;

static char phases[MAX_PHASES][32] = {"?"};
static int nphases = 1;
static dvec latencies[MAX_PHASES];

static reason *reasons;
static int nreasons, reasons_cap;

/* The open in progress: its URLs, the gate, and the outcome so far. */
static struct {
    int collecting; /* reading its URL lines */
    int active;     /* sockets still connecting/handshaking */
    int concurrency;
    char origin[512];
    char **urls;
    size_t nurls, urls_cap, next, inflight, resolved;
    long welcomed;
    double t0, last_scan;
    struct sockaddr_in *sources;
    int nsources;
    conn *conns;
} op;

static conn **all_conns; /* every socket of every open, for close */
static size_t nall, all_cap;

/* stdin, buffered: lines are taken one at a time (an open defers the rest until it ends) */
static char *inbuf;
static size_t inlen, incap;
static int stdin_eof;

/* ------------------------------------------------------------------------------ helpers */

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "wsclient: out of memory\n");
        exit(2);
    }
    return q;
}

static uint64_t next_rand(void) { /* xorshift64*: masks and keys need no crypto strength */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

static void dpush(dvec *d, double x) {
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->v = xrealloc(d->v, d->cap * sizeof(double));
    }
    d->v[d->n++] = x;
}

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static void json_string(const char *s) {
    fputc('"', stdout);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', stdout);
        fputc(*s, stdout);
    }
    fputc('"', stdout);
}

static void closed_add(const char *name) { /* Stats.closed[name] += 1 */
    for (int i = 0; i < nreasons; i++)
        if (!strcmp(reasons[i].name, name)) {
            reasons[i].n++;
            return;
        }
    if (nreasons == reasons_cap) {
        reasons_cap = reasons_cap ? reasons_cap * 2 : 8;
        reasons = xrealloc(reasons, reasons_cap * sizeof(reason));
    }
    snprintf(reasons[nreasons].name, sizeof reasons[nreasons].name, "%s", name);
    reasons[nreasons++].n = 1;
}

static void code_text(int code, char *out, size_t n) { /* Python's str() of the close code */
    if (code < 0)
        snprintf(out, n, "None");
    else
        snprintf(out, n, "%d", code);
}

static const char *errno_name(int err) { /* the exception Python's connect would raise */
    switch (err) {
    case ECONNREFUSED: return "ConnectionRefusedError";
    case ECONNRESET: return "ConnectionResetError";
    case ECONNABORTED: return "ConnectionAbortedError";
    case EPIPE: return "BrokenPipeError";
    case ETIMEDOUT: return "TimeoutError";
    case EAGAIN: return "BlockingIOError";
    default: return "OSError";
    }
}

static void ensure_id(long id) {
    if (id < ids_cap)
        return;
    long cap = ids_cap ? ids_cap : 1024;
    while (cap <= id)
        cap *= 2;
    counts = xrealloc(counts, cap * sizeof(long));
    phase_of = xrealloc(phase_of, cap);
    pending = xrealloc(pending, cap);
    by_event = xrealloc(by_event, cap * sizeof(dvec));
    memset(counts + ids_cap, 0, (cap - ids_cap) * sizeof(long));
    memset(phase_of + ids_cap, 0, cap - ids_cap);
    memset(pending + ids_cap, 0, cap - ids_cap);
    memset(by_event + ids_cap, 0, (cap - ids_cap) * sizeof(dvec));
    ids_cap = cap;
}

static int phase_index(const char *name) {
    for (int i = 0; i < nphases; i++)
        if (!strcmp(phases[i], name))
            return i;
    if (nphases == MAX_PHASES)
        return 0;
    snprintf(phases[nphases], sizeof phases[0], "%s", name);
    return nphases++;
}

/* ------------------------------------------------------------------------------ recording */

static int single_phase = -1, burst_phase = -1;

/* While burst events are owed, the loop naps PACE_US after each round of reads, so every wake-up
 * serves many sockets with many frames each: in a burst the kernel's cost per wake-up and per
 * recv(), not the parsing, is most of a client's CPU (~30% less CPU per delivery at 1 ms). It
 * adds at most that nap to a burst frame's latency and to the burst's last receipt (under 0.3%
 * of a burst of 400 ms); single events are never delayed. WSCLIENT_PACE_US overrides (0: off). */
#define PACE_US 1000
static long pace_us = PACE_US;
static long burst_pending; /* burst ids not yet on every socket */

/* While burst events are owed, each socket's SO_RCVLOWAT is raised to RCVLOWAT bytes: epoll then
 * reports it readable only once that much is queued, so one wake-up and one recv() carry many
 * more frames (and the kernel sends fewer window-update ACKs). So that the end of the burst is
 * not held below the watermark, a socket's watermark is never above what it is still owed:
 * (burst events it lacks) x (its smallest event frame so far, less FRAME_SLACK bytes), minus the
 * part of a frame already read; at a frame or less it drops to 1. Should that guess fail (a
 * socket that never gets some event, shorter frames), a burst with no read at all for
 * LOWAT_STALL_MS drops every watermark to 1 for the rest of it. Single events never see a
 * watermark: it is armed when the burst's phase is told and dropped when its last event is on
 * every socket. It delays a burst frame's receipt (burst latencies) but not the burst's end.
 * WSCLIENT_RCVLOWAT (bytes; 0: off) and WSCLIENT_LOWAT_STALL_MS override. */
#define RCVLOWAT 8192
#define FRAME_SLACK 16
#define LOWAT_STALL_MS 2000
static long rcvlowat = RCVLOWAT, lowat_stall_ms = LOWAT_STALL_MS;
static int lowat_armed;
static long burst_total;   /* burst events each socket is owed since the watermark was armed */
static double last_read;   /* the last recv() that returned data */
static struct {            /* WSCLIENT_STATS=1: on stderr with each report */
    long wakeups, reads, frames, setopts, stalls;
} st;
static int last_phase = -1; /* the phase of the event record() last counted */

static void set_lowat(conn *c, int v) {
    if (c->fd < 0 || (v <= 1 && c->lowat <= 1) || v == c->lowat)
        return;
    st.setopts++;
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0)
        c->lowat = v;
}

/* What c may wait for: no more than the rest of the burst it is owed (see RCVLOWAT). */
static int lowat_for(const conn *c) {
    long owed = burst_total - c->burst_got;
    if (!lowat_armed || owed <= 0 || c->minframe <= FRAME_SLACK)
        return 1;
    long bytes = owed * (c->minframe - FRAME_SLACK) - (long)c->plen;
    if (bytes <= c->minframe)
        return 1;
    return bytes < rcvlowat ? (int)bytes : (int)rcvlowat;
}

static void lowat_update(conn *c) { /* after a read: only ever lowered within a burst */
    int want = lowat_for(c);
    if (want < c->lowat)
        set_lowat(c, want);
}

static void lowat_arm(void) { /* the burst's phase was told: every open socket waits */
    if (rcvlowat <= 1 || lowat_armed || !burst_pending)
        return;
    lowat_armed = 1;
    burst_total = burst_pending;
    last_read = mono();
    for (size_t i = 0; i < nall; i++) {
        conn *c = all_conns[i];
        c->burst_got = 0;
        if (c->state == ST_OPEN)
            set_lowat(c, lowat_for(c));
    }
}

static void lowat_disarm(void) { /* the burst is done (or stalled): back to every byte */
    lowat_armed = 0;
    for (size_t i = 0; i < nall; i++)
        set_lowat(all_conns[i], 1);
}

static void record(long id, double sent_at, double now) { /* Stats.record + on_record */
    if (id < 0 || id > MAX_EVENT_ID)
        return;
    ensure_id(id);
    counts[id]++;
    int ph = phase_of[id];
    last_phase = ph;
    dpush(&latencies[ph], now - sent_at);
    if (ph == single_phase)
        dpush(&by_event[id], now - sent_at);
    total++;
    last_receipt = now;
    if (pending[id] && counts[id] >= held) {
        pending[id] = 0;
        if (ph == burst_phase && --burst_pending == 0 && lowat_armed)
            lowat_disarm();
        emit("{\"ev\":\"reached\",\"id\":%ld}", id);
    }
    if (now - last_progress > 0.5) { /* the parent's stall detector: still receiving */
        last_progress = now;
        emit("{\"ev\":\"progress\",\"total\":%ld}", total);
    }
}

/* ------------------------------------------------------------------------------ JSON, in place */

static const char *ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at an opening quote: past the closing one (or NULL). */
static const char *skip_string(const char *p, const char *e) {
    for (p++; p < e;) {
        const char *q = memchr(p, '"', e - p);
        if (!q)
            return NULL;
        const char *b = q;
        while (b > p && b[-1] == '\\')
            b--;
        if ((q - b) % 2 == 0)
            return q + 1;
        p = q + 1;
    }
    return NULL;
}

static const char *skip_value(const char *p, const char *e) {
    if (p >= e)
        return NULL;
    if (*p == '"')
        return skip_string(p, e);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < e) {
            if (*p == '"') {
                if (!(p = skip_string(p, e)))
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return NULL;
    }
    while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n')
        p++;
    return p;
}

/* Iterates an object's members: key, klen and val (the value's first byte); p at '{' first,
 * then what the previous call returned. NULL at the end (or on malformed JSON). */
static const char *member(const char *p, const char *e, const char **key, size_t *klen,
                          const char **val, int first) {
    p = ws(p, e);
    if (first) {
        if (p >= e || *p != '{')
            return NULL;
        p = ws(p + 1, e);
    } else {
        if (p < e && *p == ',')
            p = ws(p + 1, e);
    }
    if (p >= e || *p != '"')
        return NULL;
    const char *kend = skip_string(p, e);
    if (!kend)
        return NULL;
    *key = p + 1;
    *klen = kend - p - 2;
    p = ws(kend, e);
    if (p >= e || *p != ':')
        return NULL;
    *val = ws(p + 1, e);
    return skip_value(*val, e);
}

static int key_is(const char *k, size_t n, const char *want) {
    return n == strlen(want) && !memcmp(k, want, n);
}

static int number(const char *p, const char *e, double *out) { /* copied: p is not NUL-ended */
    char tmp[64];
    size_t n = 0;
    while (p + n < e && n < sizeof tmp - 1 && strchr("+-.0123456789eE", p[n]))
        n++;
    if (!n)
        return 0;
    memcpy(tmp, p, n);
    tmp[n] = 0;
    char *end;
    *out = strtod(tmp, &end);
    return end != tmp;
}

/* A text frame: a welcome returns 1; an event with its id and time is recorded (2). */
static int on_text(const char *p, size_t n, double now) {
    const char *e = p + n, *key, *val, *type = NULL, *q;
    size_t klen, tlen = 0;
    long id = -1;
    double t = 0;
    int have_t = 0, first = 1;
    for (q = p; (q = member(q, e, &key, &klen, &val, first)); first = 0) {
        if (key_is(key, klen, "type") && *val == '"') {
            type = val + 1;
            tlen = q - val - 2;
            if (!(tlen == 5 && !memcmp(type, "event", 5)))
                break; /* a welcome (or a frame we ignore): nothing else needed */
        } else if (key_is(key, klen, "id")) {
            const char *d = *val == '"' ? val + 1 : val;
            if (d < e && *d >= '0' && *d <= '9') {
                id = 0;
                while (d < e && *d >= '0' && *d <= '9' && id <= MAX_EVENT_ID)
                    id = id * 10 + (*d++ - '0');
            }
        } else if (key_is(key, klen, "data") && *val == '{') {
            const char *dk, *dv, *r;
            size_t dklen;
            int f2 = 1;
            for (r = val; (r = member(r, q, &dk, &dklen, &dv, f2)); f2 = 0)
                if (key_is(dk, dklen, "t")) {
                    have_t = number(dv, q, &t);
                    break;
                }
        }
        if (type && id >= 0 && have_t)
            break;
    }
    if (!type)
        return 0;
    if (tlen == 5 && !memcmp(type, "event", 5)) {
        if (id >= 0 && have_t && id <= MAX_EVENT_ID) {
            record(id, t, now);
            return 2;
        }
        return 0;
    }
    return tlen == 7 && !memcmp(type, "welcome", 7);
}

/* ------------------------------------------------------------------------------ sockets */

static void send_frame(conn *c, int opcode, const unsigned char *payload, size_t n) {
    /* Client frames are masked (RFC 6455 5.3). Control payloads are <= 125 bytes, one small
     * send: a short write on a socket whose buffer is full is dropped (a benchmark, not a
     * browser; pongs and closes are all it ever sends). */
    unsigned char out[2 + 4 + 125];
    if (n > 125)
        n = 125;
    uint32_t m = (uint32_t)next_rand();
    out[0] = 0x80 | opcode;
    out[1] = 0x80 | (unsigned char)n;
    memcpy(out + 2, &m, 4);
    for (size_t i = 0; i < n; i++)
        out[6 + i] = payload[i] ^ out[2 + (i & 3)];
    if (send(c->fd, out, 6 + n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* the close that follows reports it */
    }
}

static void open_next(void);
static void open_done(void);

static void resolve(conn *c, int ok) { /* one socket's outcome in its open (the gate opens) */
    if (c->resolved)
        return;
    c->resolved = 1;
    op.resolved++;
    op.inflight--;
    if (ok)
        op.welcomed++;
    if (op.active) {
        open_next();
        /* (open_next may resolve sockets that fail at once, recursively, and the innermost
         * call may already have ended the open: answer `opened` once) */
        if (op.active && op.resolved == op.nurls)
            open_done();
    }
}

/* WSClient.connection_lost: the fd is gone; count why. */
static void lost(conn *c) {
    char code[16], name[96];
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = ST_DONE;
    code_text(c->close_code, code, sizeof code);
    if (!c->greeted) {
        snprintf(name, sizeof name, "no welcome (%s)", code);
        closed_add(name);
        resolve(c, 0);
    } else if ((c->close_code != 1000 && c->close_code != -1) || !finished) {
        snprintf(name, sizeof name, "closed %s", code);
        closed_add(name);
    }
    free(c->pend);
    c->pend = NULL;
    c->plen = c->pcap = 0;
}

static void keep(conn *c, const unsigned char *p, size_t n) { /* the unparsed tail, for later */
    if (n > c->pcap) {
        c->pcap = n < 512 ? 512 : n;
        c->pend = xrealloc(c->pend, c->pcap);
    }
    memmove(c->pend, p, n);
    c->plen = n;
}

static void send_request(conn *c) {
    /* ws://host[:port]/path?query: Host is the netloc, the request target path + query */
    const char *u = c->url, *netloc = strstr(u, "://");
    netloc = netloc ? netloc + 3 : u;
    const char *path = netloc + strcspn(netloc, "/?");
    char origin[600], req[16384];
    int hlen = (int)(path - netloc);
    if (op.origin[0])
        snprintf(origin, sizeof origin, "%s", op.origin);
    else /* the page's origin is the server the socket goes to (each process has its port) */
        snprintf(origin, sizeof origin, "http://%.*s", hlen, netloc);
    unsigned char raw[16];
    uint64_t a = next_rand(), b = next_rand();
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char key[25];
    for (int i = 0, j = 0; i < 16; i += 3) {
        uint32_t v = raw[i] << 16 | (i + 1 < 16 ? raw[i + 1] << 8 : 0);
        v |= i + 2 < 16 ? raw[i + 2] : 0;
        key[j++] = b64[v >> 18 & 63];
        key[j++] = b64[v >> 12 & 63];
        key[j++] = i + 1 < 16 ? b64[v >> 6 & 63] : '=';
        key[j++] = i + 2 < 16 ? b64[v & 63] : '=';
    }
    key[24] = 0;
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %.*s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n",
                     *path ? path : "/", hlen, netloc, key, origin);
    if (n < 0 || (size_t)n >= sizeof req || send(c->fd, req, n, MSG_NOSIGNAL) != n) {
        lost(c); /* a fresh socket takes a request this small whole, or it is broken */
        return;
    }
    c->state = ST_HANDSHAKE;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int resolve_addr(const char *url, struct sockaddr_in *out) {
    const char *netloc = strstr(url, "://");
    netloc = netloc ? netloc + 3 : url;
    size_t hlen = strcspn(netloc, "/?");
    char host[256];
    if (hlen >= sizeof host)
        return -1;
    memcpy(host, netloc, hlen);
    host[hlen] = 0;
    char *colon = strrchr(host, ':');
    int port = 80;
    if (colon) {
        *colon = 0;
        port = atoi(colon + 1);
    }
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons(port);
    if (inet_pton(AF_INET, host, &out->sin_addr) == 1)
        return 0;
    static char cached_host[256];
    static struct in_addr cached;
    if (!strcmp(host, cached_host)) {
        out->sin_addr = cached;
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, NULL, &hints, &res))
        return -1;
    out->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    snprintf(cached_host, sizeof cached_host, "%s", host);
    cached = out->sin_addr;
    return 0;
}

static void connect_failed(conn *c, int err) { /* open_socket's OSError: no connection_lost */
    char name[96];
    snprintf(name, sizeof name, "connect failed: %s", errno_name(err));
    closed_add(name);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = ST_DONE;
    resolve(c, 0);
}

static void start_connect(conn *c) {
    struct sockaddr_in addr;
    c->deadline = mono() + WELCOME_TIMEOUT;
    op.inflight++;
    if (resolve_addr(c->url, &addr) < 0) {
        connect_failed(c, EINVAL);
        return;
    }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        connect_failed(c, errno);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as asyncio does */
    if (c->source >= 0 &&
        bind(c->fd, (struct sockaddr *)&op.sources[c->source], sizeof op.sources[0]) < 0) {
        connect_failed(c, errno);
        return;
    }
    c->state = ST_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        connect_failed(c, errno);
        return;
    }
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
        connect_failed(c, errno);
    /* else EPOLLOUT tells when it is done (even if it already is) */
}

static void connected(conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err)
        connect_failed(c, err);
    else
        send_request(c);
}

/* The frames in b[pos..len]; returns where the unparsed rest starts, or SIZE_MAX when the
 * socket is gone. *need: the size a split frame needs in one buffer. */
static size_t frames(conn *c, unsigned char *b, size_t pos, size_t len, double now, size_t *need) {
    while (len - pos >= 2) {
        unsigned b0 = b[pos], b1 = b[pos + 1];
        uint64_t n = b1 & 0x7F;
        size_t head = 2;
        if (n == 126) {
            if (len - pos < 4)
                break;
            n = (uint64_t)b[pos + 2] << 8 | b[pos + 3];
            head = 4;
        } else if (n == 127) {
            if (len - pos < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | b[pos + 2 + i];
            head = 10;
        }
        if (n > MAX_FRAME) {
            lost(c);
            return SIZE_MAX;
        }
        size_t maskpos = head;
        if (b1 & 0x80) /* servers must not mask; unmask anyway */
            head += 4;
        if (len - pos < head + n) {
            *need = head + n;
            break;
        }
        unsigned char *p = b + pos + head;
        if (b1 & 0x80)
            for (uint64_t i = 0; i < n; i++)
                p[i] ^= b[pos + maskpos + (i & 3)];
        pos += head + n;
        switch (b0 & 0x0F) {
        case 0x1:
            switch (on_text((const char *)p, n, now)) {
            case 1:
                if (!c->greeted) {
                    c->greeted = 1;
                    resolve(c, 1);
                }
                break;
            case 2:
                st.frames++;
                if (!c->minframe || (long)(head + n) < c->minframe)
                    c->minframe = (long)(head + n);
                c->burst_got += last_phase == burst_phase;
                break;
            }
            break;
        case 0x8:
            c->close_code = n >= 2 ? p[0] << 8 | p[1] : n == 1 ? p[0] : 1005;
            send_frame(c, 0x8, p, n < 2 ? n : 2);
            lost(c);
            return SIZE_MAX;
        case 0x9:
            send_frame(c, 0xA, p, n);
            break;
        default: /* pong, binary, continuation: nothing the benchmark sends */
            break;
        }
    }
    return pos;
}

static void readable(conn *c) {
    size_t len = c->plen, need = 0;
    if (len)
        memcpy(rbuf, c->pend, len);
    ssize_t got = recv(c->fd, rbuf + len, rcap - len, 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got <= 0) {
        lost(c);
        return;
    }
    len += got;
    double now = mono();
    st.reads++;
    last_read = now;
    size_t pos = 0;
    if (c->state == ST_HANDSHAKE) {
        unsigned char *end = memmem(rbuf, len, "\r\n\r\n", 4);
        if (!end) {
            if (len > 65536) {
                lost(c);
                return;
            }
            keep(c, rbuf, len);
            return;
        }
        unsigned char *eol = memmem(rbuf, len, "\r\n", 2);
        if (!memmem(rbuf, eol - rbuf, " 101 ", 5)) {
            closed_add("handshake refused");
            c->greeted = 1;
            resolve(c, 0);
            lost(c); /* WSClient counts this close too ("closed None") */
            return;
        }
        pos = end + 4 - rbuf;
        c->state = ST_OPEN;
    }
    pos = frames(c, rbuf, pos, len, now, &need);
    if (pos == SIZE_MAX)
        return;
    keep(c, rbuf + pos, len - pos);
    if (c->lowat > 1)
        lowat_update(c);
    if (need + 65536 > rcap || c->plen + 65536 > rcap) { /* room for a big frame whole */
        rcap = (need > c->plen ? need : c->plen) + READ_CHUNK;
        rbuf = xrealloc(rbuf, rcap);
    }
}

/* ------------------------------------------------------------------------------ opening */

static void open_next(void) {
    while (op.inflight < (size_t)op.concurrency && op.next < op.nurls) {
        conn *c = &op.conns[op.next];
        c->source = op.nsources ? (int)(op.next % op.nsources) : -1;
        op.next++;
        start_connect(c);
    }
}

static void open_done(void) {
    op.active = 0;
    held = op.welcomed;
    emit("{\"ev\":\"opened\",\"held\":%ld,\"seconds\":%.6f}", held, mono() - op.t0);
}

static void open_begin(void) {
    op.conns = calloc(op.nurls ? op.nurls : 1, sizeof(conn));
    if (!op.conns) {
        fprintf(stderr, "wsclient: out of memory\n");
        exit(2);
    }
    if (nall + op.nurls > all_cap) {
        all_cap = (nall + op.nurls) * 2;
        all_conns = xrealloc(all_conns, all_cap * sizeof(conn *));
    }
    for (size_t i = 0; i < op.nurls; i++) {
        op.conns[i].fd = -1;
        op.conns[i].close_code = -1;
        op.conns[i].url = op.urls[i];
        all_conns[nall++] = &op.conns[i];
    }
    op.next = op.inflight = op.resolved = 0;
    op.welcomed = 0;
    op.t0 = op.last_scan = mono();
    op.active = 1;
    open_next();
    if (op.resolved == op.nurls && op.active)
        open_done();
}

/* "no welcome in 120 s": given up and closed quietly (client_worker leaves such a socket
 * open, where a late welcome would make it receive events that `held` does not count). */
static void open_timeouts(double now) {
    if (now - op.last_scan < 0.5)
        return;
    op.last_scan = now;
    for (size_t i = 0; i < op.next && op.active; i++) {
        conn *c = &op.conns[i];
        if (!c->resolved && now > c->deadline) {
            closed_add("no welcome in 120 s");
            if (c->fd >= 0)
                close(c->fd);
            c->fd = -1;
            c->state = ST_DONE;
            resolve(c, 0);
        }
    }
}

/* ------------------------------------------------------------------------------ commands */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(dvec *d, double q) { /* fanout.pct: sorted, index round(q*(n-1)), half-even */
    double x = q * (d->n - 1);
    size_t i = (size_t)x;
    double frac = x - i;
    if (frac > 0.5 || (frac == 0.5 && (i & 1)))
        i++;
    if (i > d->n - 1)
        i = d->n - 1;
    return d->v[i];
}

static void report(void) {
    printf("{\"ev\":\"report\",\"held\":%ld,\"counts\":{", held);
    int first = 1;
    for (long id = 0; id < ids_cap; id++)
        if (counts[id]) {
            printf("%s\"%ld\":%ld", first ? "" : ",", id, counts[id]);
            first = 0;
        }
    printf("},\"latencies\":{");
    first = 1;
    for (int ph = 0; ph < nphases; ph++) {
        if (!latencies[ph].n)
            continue;
        printf("%s", first ? "" : ",");
        json_string(phases[ph]);
        putchar(':');
        for (size_t i = 0; i < latencies[ph].n; i++)
            printf("%c%.6f", i ? ',' : '[', latencies[ph].v[i]);
        putchar(']');
        first = 0;
    }
    printf("},\"by_event\":{");
    first = 1;
    for (long id = 0; id < ids_cap; id++) {
        dvec *d = &by_event[id];
        if (!d->n)
            continue;
        qsort(d->v, d->n, sizeof(double), cmp_double);
        printf("%s\"%ld\":[%.6f,%.6f,%.6f]", first ? "" : ",", id, pct(d, 0.5), pct(d, 0.99),
               d->v[d->n - 1]);
        first = 0;
    }
    /* the watermark's stall fallbacks (each pushed the burst's end out by the stall time) */
    printf("},\"last_receipt\":%.6f,\"lowat_stalls\":%ld,\"closed\":{", last_receipt,
           (long)st.stalls);
    for (int i = 0; i < nreasons; i++) {
        printf("%s", i ? "," : "");
        json_string(reasons[i].name);
        printf(":%ld", reasons[i].n);
    }
    emit("}}");
}

static void close_all(void) {
    finished = 1;
    static const unsigned char normal[2] = {0x03, 0xE8}; /* 1000 */
    for (size_t i = 0; i < nall; i++) {
        conn *c = all_conns[i];
        if (c->fd < 0)
            continue;
        if (c->state == ST_OPEN)
            send_frame(c, 0x8, normal, 2);
        lost(c);
    }
    struct timespec pause = {0, 200 * 1000 * 1000}; /* like client_worker's sleep(0.2) */
    nanosleep(&pause, NULL);
    emit("{\"ev\":\"closed\"}");
    exit(0);
}

static void command(char *line) {
    char *save, *word = strtok_r(line, " ", &save);
    if (op.collecting) { /* the open's URL lines */
        if (word && !strcmp(word, "end")) {
            op.collecting = 0;
            open_begin();
        } else if (word) {
            if (op.nurls == op.urls_cap) {
                op.urls_cap = op.urls_cap ? op.urls_cap * 2 : 1024;
                op.urls = xrealloc(op.urls, op.urls_cap * sizeof(char *));
            }
            op.urls[op.nurls++] = strdup(word);
        }
        return;
    }
    if (!word)
        return;
    if (!strcmp(word, "open")) {
        char *conc = strtok_r(NULL, " ", &save), *origin = strtok_r(NULL, " ", &save), *src;
        op.concurrency = conc && atoi(conc) > 0 ? atoi(conc) : 1;
        snprintf(op.origin, sizeof op.origin, "%s", origin && strcmp(origin, "-") ? origin : "");
        op.nurls = 0;
        op.urls = NULL;
        op.urls_cap = 0; /* (the previous open's URLs stay: its sockets point at them) */
        op.sources = NULL;
        op.nsources = 0;
        while ((src = strtok_r(NULL, " ", &save))) {
            op.sources = xrealloc(op.sources, (op.nsources + 1) * sizeof(struct sockaddr_in));
            struct sockaddr_in *s = &op.sources[op.nsources];
            memset(s, 0, sizeof *s);
            s->sin_family = AF_INET;
            if (inet_pton(AF_INET, src, &s->sin_addr) == 1)
                op.nsources++;
        }
        op.collecting = 1;
    } else if (!strcmp(word, "phase")) {
        char *name = strtok_r(NULL, " ", &save), *tok;
        int ph = phase_index(name ? name : "?");
        if (name && !strcmp(name, "single"))
            single_phase = ph;
        if (name && !strcmp(name, "burst"))
            burst_phase = ph;
        while ((tok = strtok_r(NULL, " ", &save))) {
            long id = atol(tok);
            if (id < 0 || id > MAX_EVENT_ID)
                continue;
            ensure_id(id);
            if (pending[id] && phase_of[id] == burst_phase)
                burst_pending--; /* told again */
            phase_of[id] = (signed char)ph;
            pending[id] = 0;
            if (counts[id] >= held) {
                emit("{\"ev\":\"reached\",\"id\":%ld}", id);
            } else {
                pending[id] = 1;
                burst_pending += ph == burst_phase;
            }
        }
        if (ph == burst_phase)
            lowat_arm();
    } else if (!strcmp(word, "cpu")) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
                     ru.ru_stime.tv_usec * 1e-6;
        emit("{\"ev\":\"cpu\",\"cpu\":%.6f}", cpu);
    } else if (!strcmp(word, "report")) {
        report();
        if (getenv("WSCLIENT_STATS"))
            fprintf(stderr,
                    "wsclient %d: %ld wake-ups, %ld reads, %ld event frames (%.1f a read), "
                    "%ld SO_RCVLOWAT sets, %ld stalls\n",
                    (int)getpid(), st.wakeups, st.reads, st.frames,
                    st.reads ? (double)st.frames / st.reads : 0.0, st.setopts, st.stalls);
    } else if (!strcmp(word, "close")) {
        close_all();
    } else {
        fprintf(stderr, "wsclient: unknown command %s\n", word);
    }
}

/* Serve the buffered lines; an open holds the rest until its sockets are settled, as
 * client_worker awaits open_share before it reads the next command. */
static void commands(void) {
    size_t pos = 0;
    while (!op.active && pos < inlen) {
        char *nl = memchr(inbuf + pos, '\n', inlen - pos);
        if (!nl)
            break;
        *nl = 0;
        if (nl > inbuf + pos && nl[-1] == '\r')
            nl[-1] = 0;
        command(inbuf + pos);
        pos = nl + 1 - inbuf;
    }
    memmove(inbuf, inbuf + pos, inlen - pos);
    inlen -= pos;
    if (stdin_eof && !op.active && !memchr(inbuf, '\n', inlen))
        exit(0); /* the parent is gone */
}

static void read_stdin(void) {
    if (incap - inlen < 65536) {
        incap = incap ? incap * 2 : 1 << 20;
        inbuf = xrealloc(inbuf, incap);
    }
    ssize_t n = read(0, inbuf + inlen, incap - inlen);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        stdin_eof = 1;
        epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
    } else {
        inlen += n;
    }
    commands();
}

int main(void) {
    /* Killed with its parent (a test's timeout, an interrupted bench): an orphan would hold
     * every socket open. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        return 1;
    const char *pace = getenv("WSCLIENT_PACE_US");
    if (pace)
        pace_us = atol(pace);
    const char *lw = getenv("WSCLIENT_RCVLOWAT"), *ls = getenv("WSCLIENT_LOWAT_STALL_MS");
    if (lw)
        rcvlowat = atol(lw);
    if (rcvlowat > 1 << 20)
        rcvlowat = 1 << 20;
    if (ls && atol(ls) > 0)
        lowat_stall_ms = atol(ls);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* 10,000 sockets need it */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrandom(&rng, sizeof rng, 0) != sizeof rng || !rng)
        rng = (uint64_t)mono() * 6364136223846793005ULL ^ (uint64_t)getpid();
    rng |= 1;
    static char outbuf[1 << 20];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    rbuf = xrealloc(NULL, rcap);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &stdin_tag};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) < 0) {
        perror("wsclient: epoll on stdin (it must be a pipe)");
        return 2;
    }
    struct epoll_event evs[1024];
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, op.active ? 100 : lowat_armed ? 10 : 500);
        if (n < 0 && errno != EINTR) {
            perror("wsclient: epoll_wait");
            return 2;
        }
        /* Commands first: a phase sent before its event's frames is applied before them. */
        for (int i = 0; i < n; i++)
            if (evs[i].data.ptr == &stdin_tag)
                read_stdin();
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c == (conn *)&stdin_tag || c->state == ST_DONE || c->fd < 0)
                continue;
            if (c->state == ST_CONNECTING)
                connected(c);
            else
                readable(c);
        }
        if (n > 0)
            st.wakeups++;
        if (lowat_armed && mono() - last_read > lowat_stall_ms * 1e-3) {
            st.stalls++; /* nothing for a while: what is left is below some watermark */
            lowat_disarm();
        }
        if (pace_us > 0 && burst_pending && n > 0) {
            struct timespec nap = {pace_us / 1000000, pace_us % 1000000 * 1000L};
            nanosleep(&nap, NULL);
        }
        if (op.active)
            open_timeouts(mono());
        else if (inlen || stdin_eof)
            commands(); /* lines held while an open was in progress; or the parent left */
    }
}
