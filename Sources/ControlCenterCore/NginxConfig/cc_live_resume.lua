-- The resume id a live subscriber may hand to nchan (control-center-live.conf:
-- set_by_lua_file $cc_resume_id <this file> $http_last_event_id $arg_last_event_id WINDOW).
-- nchan 1.3.6 sends nothing for an id from the future and the whole buffer, with no sign
-- of the gap, for one that fell out of it; after such resumes it was seen delivering
-- nothing to the channel's next new subscribers for seconds. An nginx reload empties its
-- buffer, and EventSource clients resuming at once with ids from before it crashed the
-- worker (spool.c:479 spool_fetch_msg assertion; Scripts/loadtest reload-storm). So an id
-- never reaches nchan when its SECONDS part is more than 1 s ahead of nginx's clock, more
-- than WINDOW seconds behind it (what the channel's buffer still holds), or not more than
-- GRACE seconds after this worker's start (a reload starts new workers, and the old ones,
-- exiting for a second or two meanwhile, take messages of those first seconds with them:
-- ids of those still crashed workers at 6,000 subscribers), nor in an old worker that is
-- exiting: the subscriber gets the newest message instead, and the jump in its `seq` tells the client to back-fill (docs/architecture.md).
-- An id that is not SECONDS:TAG is refused with 400 after this.

-- This worker's start, Unix seconds (/proc/self/stat's starttime after /proc/stat's
-- btime, in clock ticks of 1/100 s), read once per worker.
local function worker_start()
    local f = io.open("/proc/self/stat")
    local stat = f and f:read("*l")
    if f then f:close() end
    local g = io.open("/proc/stat")
    local all = g and g:read("*a")
    if g then g:close() end
    local btime = all and tonumber(string.match(all, "\nbtime (%d+)"))
    local after = stat and string.match(stat, "%)%s+(.*)$")
    if not (btime and after) then return ngx.time() end
    local i = 2 -- the fields after the command name start at field 3
    for field in string.gmatch(after, "%S+") do
        i = i + 1
        if i == 22 then return btime + math.floor(tonumber(field) / 100) end
    end
    return ngx.time()
end

local GRACE = 5

local state = package.loaded.cc_live_resume_state
if not state then
    state = { started = worker_start() }
    package.loaded.cc_live_resume_state = state
end

-- An absent header or argument arrives as nil.
local id = ngx.arg[1]
if id == nil or id == "" then id = ngx.arg[2] end
if id == nil or ngx.worker.exiting() then return "" end
local seconds = tonumber(string.match(id, "^(%d+)"))
if not seconds then return "" end
local now = ngx.time()
if seconds > now + 1 or seconds < now - tonumber(ngx.arg[3]) or seconds <= state.started + GRACE then return "" end
return id
