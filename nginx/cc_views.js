// Control Center: lets nginx send a pre-rendered default view itself.
// Workers write $CC_STATE_DIR/views/<kind>.json on every refresh (the body
// up to `"age_ms":`), its mtime the snapshot's time, and touch
// <kind>.refreshing as a refresh starts. This is the snapshot cache's
// contract at nginx's end:
//   - view younger than the TTL: nginx sends it;
//   - stale, but a refresh is under way (marker newer than the view, and
//     recent) and the view is younger than CC_CACHE_MAX_STALE: nginx sends
//     the previous copy, as workers do while one of them refreshes;
//   - otherwise (missing, stale with no refresh, a query string, another
//     method): a worker answers, and the first such request refreshes.
import fs from 'fs';

const NONE = '/.cc-no-view';

function mtime(path) {
    try {
        return fs.statSync(path).mtimeMs;
    } catch (e) {
        return -1;
    }
}

// try_files target: the view's URI under `root`, or one that never exists.
function route(r) {
    const v = r.variables;
    if ((r.method !== 'GET' && r.method !== 'HEAD') || v.args) return NONE;
    const base = v.document_root + '/' + v.cc_view_kind;
    const taken = mtime(base + '.json');
    if (taken < 0) return NONE;
    const now = Date.now();
    const age = now - taken;
    // A clock step back makes a copy look young; never trust a negative age.
    if (age < -1000) return NONE;
    if (age >= Number(v.cc_view_ttl_ms)) {
        if (age >= Number(v.cc_view_max_stale_ms)) return NONE;
        const marker = mtime(base + '.refreshing');
        if (!(marker > taken && now - marker < Number(v.cc_view_refresh_grace_ms))) return NONE;
    }
    v.cc_view_age = String(Math.max(0, Math.floor(age)));
    v.cc_view_taken_at = new Date(taken).toISOString();
    return '/' + v.cc_view_kind + '.json';
}

export default { route };
