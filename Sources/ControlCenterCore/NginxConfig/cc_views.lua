-- Control Center: lets nginx send a pre-rendered default view itself.
-- Workers write $CC_STATE_DIR/views/<kind>.json on every refresh (the body
-- up to `"age_ms":`), its mtime the snapshot's time, and touch
-- <kind>.refreshing as a refresh starts. This is the snapshot cache's
-- contract at nginx's end:
--   - view younger than the TTL: nginx sends it;
--   - stale, but a refresh is under way (marker newer than the view, and
--     recent) and the view is younger than CC_CACHE_MAX_STALE: nginx sends
--     the previous copy, as workers do while one of them refreshes;
--   - otherwise (missing, stale with no refresh, a query string, another
--     method, an Authorization header or a cc_session cookie): a worker
--     answers, and the first such request refreshes.
--
-- Lua (LuaJIT, one interpreter per nginx worker) rather than njs: njs builds
-- a VM per request, which cost more than sending the file (see
-- docs/performance.md). The file's time comes from statx(2) through the FFI:
-- its layout is the same on every architecture, unlike struct stat.
local ffi = require "ffi"
local C = ffi.C

ffi.cdef [[
struct cc_statx_timestamp { int64_t tv_sec; uint32_t tv_nsec; int32_t reserved; };
struct cc_statx {
    uint32_t mask; uint32_t blksize; uint64_t attributes;
    uint32_t nlink; uint32_t uid; uint32_t gid; uint16_t mode; uint16_t spare0;
    uint64_t ino; uint64_t size; uint64_t blocks; uint64_t attributes_mask;
    struct cc_statx_timestamp atime, btime, ctime, mtime;
    uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
    uint64_t spare2[14];
};
int statx(int dirfd, const char *path, int flags, unsigned int mask, struct cc_statx *buf);
struct cc_timespec { int64_t tv_sec; long tv_nsec; };
int clock_gettime(int clock, struct cc_timespec *ts);
]]

local AT_FDCWD, STATX_MTIME, CLOCK_REALTIME = -100, 0x40, 0
local NONE = "/.cc-no-view" -- a try_files target that never exists
local floor, format, date = math.floor, string.format, os.date

local statbuf = ffi.new("struct cc_statx")
local clockbuf = ffi.new("struct cc_timespec")

local function mtime_ms(path)
    if C.statx(AT_FDCWD, path, 0, STATX_MTIME, statbuf) ~= 0 then return nil end
    return tonumber(statbuf.mtime.tv_sec) * 1000 + floor(statbuf.mtime.tv_nsec / 1000000)
end

-- Real time, not nginx's cached per-loop time: the age must not read young.
local function now_ms()
    C.clock_gettime(CLOCK_REALTIME, clockbuf)
    return tonumber(clockbuf.tv_sec) * 1000 + floor(tonumber(clockbuf.tv_nsec) / 1000000)
end

-- YYYY-MM-DDTHH:MM:SS.mmmZ, the workers' format. At thousands of requests a
-- second most share their second with the one before, so that part is kept.
local second_cached, second_text = -1, ""
local function iso8601(ms)
    local s = floor(ms / 1000)
    if s ~= second_cached then
        second_cached, second_text = s, date("!%Y-%m-%dT%H:%M:%S", s)
    end
    return format("%s.%03dZ", second_text, ms - s * 1000)
end

-- Request ids for the answers nginx sends itself, in the form of nginx's
-- $request_id (32 hex digits): a random prefix per nginx worker, drawn on
-- its first view (not at load time: that runs in nginx's master, before the
-- workers fork), then a counter. nginx's own $request_id costs an OpenSSL
-- RAND_bytes call per request, a sixth of what a view cost nginx.
local tohex = require("bit").tohex
local id_prefix, id_counter = nil, 0
local function new_id_prefix()
    local f = io.open("/dev/urandom", "rb")
    local bytes = f and f:read(12)
    if f then f:close() end
    if bytes and #bytes == 12 then
        return (bytes:gsub(".", function(c) return format("%02x", c:byte()) end))
    end
    -- No /dev/urandom (a chroot): the worker's pid and the microsecond of
    -- its first view still tell its ids from every other worker's.
    return format("%08x%016x", ngx.worker.pid(), floor(ngx.now() * 1000000))
end
local function request_id()
    if id_prefix == nil or id_counter >= 0x7fffffff then id_prefix, id_counter = new_id_prefix(), 0 end
    id_counter = id_counter + 1
    return id_prefix .. tohex(id_counter, 8)
end

-- A refresh that has not finished by then is presumed dead: workers take over.
local REFRESH_GRACE_MS = 2000

local taken_cached, taken_text = -1, ""
local now_cached, now_text = -1, ""
local paths = {} -- kind -> {view file, refresh marker, uri}, built once per worker

local M = {}

-- set_by_lua target for try_files: the view's URI under `root`, or NONE.
-- kind, ttl and max_stale (ms) and the views directory are constants of
-- the calling location, not variables read per request. Also sets
-- $cc_view_age, $cc_view_taken_at (headers, body tail), $cc_view_time and
-- $cc_view_request_id (the X-Request-ID header and the access-log line).
local function route(kind, ttl, max_stale, dir)
    local method = ngx.req.get_method()
    local var = ngx.var
    if (method ~= "GET" and method ~= "HEAD") or var.args then return NONE end
    -- A view is the anonymous form: a request with credentials (a token or
    -- a session) goes to the workers, which answer by role.
    if var.http_authorization or var.cookie_cc_session then return NONE end
    local p = paths[kind]
    if not p then
        local base = dir .. "/" .. kind
        p = { base .. ".json", base .. ".refreshing", "/" .. kind .. ".json" }
        paths[kind] = p
    end
    local taken = mtime_ms(p[1])
    if not taken then return NONE end
    local now = now_ms()
    local age = now - taken
    -- A clock step back makes a copy look young; never trust a negative age.
    if age < -1000 then return NONE end
    if age >= ttl then
        if age >= max_stale then return NONE end
        local marker = mtime_ms(p[2])
        if not (marker and marker > taken and now - marker < REFRESH_GRACE_MS) then return NONE end
    end
    if age < 0 then age = 0 end
    -- Thousands of answers a second share their snapshot and millisecond.
    if taken ~= taken_cached then taken_cached, taken_text = taken, iso8601(taken) end
    if now ~= now_cached then now_cached, now_text = now, iso8601(now) end
    var.cc_view_age = age
    var.cc_view_taken_at = taken_text
    var.cc_view_time = now_text
    var.cc_view_request_id = request_id()
    return p[3]
end

-- Whatever goes wrong in here (a libc without statx, say) must cost a
-- worker round trip, never a 500: the workers answer every route anyway.
function M.route(kind, ttl, max_stale, dir)
    local ok, uri = pcall(route, kind, ttl, max_stale, dir)
    if ok then return uri end
    ngx.log(ngx.ERR, "cc_views: ", uri, "; the workers answer ", kind)
    return NONE
end

return M
