-- The resume id a live subscriber may hand to nchan (control-center-live.conf:
-- set_by_lua_file $cc_resume_id <this file> $http_last_event_id $arg_last_event_id WINDOW).
-- nchan 1.3.6 sends nothing for an id from the future and the whole buffer, with no sign
-- of the gap, for one that fell out of it; after such resumes it was seen delivering
-- nothing to the channel's next new subscribers for seconds. So an id whose SECONDS part
-- is more than 1 s ahead of nginx's clock, or more than WINDOW seconds behind it (what the
-- channel's buffer still holds), never reaches nchan: the subscriber gets the newest
-- message instead, and the jump in its `seq` tells the client to back-fill
-- (docs/architecture.md). An id that is not SECONDS:TAG was refused with 400 before this.
-- An absent header or argument arrives as nil.
local id = ngx.arg[1]
if id == nil or id == "" then id = ngx.arg[2] end
if id == nil then return "" end
local seconds = tonumber(string.match(id, "^(%d+)"))
if not seconds then return "" end
local now = ngx.time()
if seconds > now + 1 or seconds < now - tonumber(ngx.arg[3]) then return "" end
return id
