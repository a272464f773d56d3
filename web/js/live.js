// The system live channel (/ws, fanned out by nginx's nchan) for the whole
// page: one WebSocket, reconnected with back-off, and the client rule of
// docs/openapi.yaml: a `seq` that is not the previous plus one, a changed
// `epoch` or a `reset` message means messages were missed, so listeners are
// told to back-fill (the overview: GET /api/system/history and /stats).

const listeners = new Set();
const statusListeners = new Set();
let socket = null;
let retryMs = 1000;
let last = null; // { epoch, seq }
let state = 'off';

function setState(s) {
  state = s;
  for (const f of statusListeners) f(s);
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  socket = new WebSocket(`${scheme}//${location.host}/ws`);
  socket.addEventListener('open', () => { retryMs = 1000; setState('live'); });
  socket.addEventListener('message', ev => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    const gap = msg.type === 'reset' || (last && (msg.epoch !== last.epoch || msg.seq !== last.seq + 1));
    last = { epoch: msg.epoch, seq: msg.seq };
    for (const f of listeners) f(msg, gap);
  });
  socket.addEventListener('close', () => {
    socket = null;
    if (state === 'off') return;
    setState('reconnecting');
    // A random wait up to retryMs ("full jitter"): after an nginx reload every page reconnects, and
    // spread out their handshakes (authorize requests to the pool) do not all arrive at once.
    setTimeout(() => { if (state !== 'off') connect(); }, Math.random() * retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  });
}

/** Opens the channel (once). */
export function start() {
  if (socket || state === 'reconnecting') return;
  setState('connecting');
  connect();
}

/** Calls `f(message, gap)` for each message; returns the function that stops it. */
export function subscribe(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** Calls `f(state)` now and on each change: off, connecting, live, reconnecting. */
export function onStatus(f) {
  statusListeners.add(f);
  f(state);
}
