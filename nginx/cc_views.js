// Control Center: lets nginx send a pre-rendered default view itself while
// it is fresh. Workers write $CC_STATE_DIR/views/<kind>.json on every
// refresh (the body up to `"age_ms":`) and stamp its mtime with the
// snapshot's time; a missing, stale or non-default request goes to a worker,
// which serves it and, being the one refresher, writes the next view.
import fs from 'fs';

const NONE = '/.cc-no-view';

// try_files target: the view's URI under `root`, or one that never exists.
function route(r) {
    const v = r.variables;
    if ((r.method !== 'GET' && r.method !== 'HEAD') || v.args) return NONE;
    const name = '/' + v.cc_view_kind + '.json';
    let st;
    try {
        st = fs.statSync(v.document_root + name);
    } catch (e) {
        return NONE;
    }
    const age = Date.now() - st.mtimeMs;
    // A clock step back makes a copy look young; never trust a negative age.
    if (age < -1000 || age >= Number(v.cc_view_ttl_ms)) return NONE;
    v.cc_view_age = String(Math.max(0, Math.floor(age)));
    v.cc_view_taken_at = new Date(st.mtimeMs).toISOString();
    return name;
}

// Access-log fields in the workers' form: milliseconds, ISO time with ms.
function durationMs(r) {
    return (Number(r.variables.request_time) * 1000).toFixed(3);
}

function time(r) {
    return new Date(Number(r.variables.msec) * 1000).toISOString();
}

export default { route, durationMs, time };
