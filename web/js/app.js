// The dashboard's shell: who is signed in (GET /api/auth/me with the
// session cookie), the hash router (#/overview, #/processes, ...), the
// navigation and the live indicator. Each page module exports
// `render(view, ctx)` and may return a function that stops its timers.

import { api, APIError } from './api.js';
import { h, fill, errorLine } from './dom.js';
import * as live from './live.js';
import { localTime } from './format.js';
import * as overview from './pages/overview.js';
import * as processes from './pages/processes.js';
import * as network from './pages/network.js';
import * as events from './pages/events.js';
import * as users from './pages/users.js';
import * as optional from './pages/optional.js';
import * as login from './pages/login.js';
import * as password from './pages/password.js';

const pages = {
  overview, processes, network, events, users, login, password,
  services: optional.services, alerts: optional.alerts,
};

const view = document.getElementById('view');
let me = null;
let stopPage = null;

async function loadMe() {
  try {
    me = (await api('/api/auth/me')).data;
  } catch (e) {
    if (!(e instanceof APIError) || e.status !== 401) throw e;
    me = null;
  }
  showAccount();
}

function showAccount() {
  document.getElementById('nav').hidden = !me;
  document.getElementById('account').hidden = !me;
  fill(document.getElementById('whoami'), me ? `${me.username} (${me.role})` : '');
  for (const a of document.querySelectorAll('nav a[data-role="admin"]')) a.hidden = me?.role !== 'admin';
}

async function route() {
  if (stopPage) { stopPage(); stopPage = null; }
  let name = location.hash.replace(/^#\/?/, '').split('?')[0] || 'overview';
  if (!me && name !== 'login') name = 'login';
  else if (me?.must_change_password && name !== 'password') name = 'password';
  else if (me && name === 'login') name = 'overview';
  const page = pages[name];
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!page) { fill(view, h('h1', {}, 'Not found'), h('p', {}, `No page ${name}.`)); return; }
  if (me && !me.must_change_password) live.start();
  try {
    stopPage = await page.render(view, ctx) ?? null;
  } catch (e) {
    fill(view, errorLine(e));
  }
  view.focus({ preventScroll: true });
}

/** What pages may use: the signed-in user, navigation and a session reload. */
const ctx = {
  get me() { return me; },
  go(name) {
    if (location.hash === `#/${name}`) route(); else location.hash = `#/${name}`;
  },
  async signedIn() { await loadMe(); ctx.go('overview'); },
};

live.onStatus(s => {
  const el = document.getElementById('live');
  el.dataset.state = s;
  if (s === 'live') el.title = `connected since ${localTime(Date.now())}`;
  el.textContent = { off: 'offline', connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…' }[s];
});

document.getElementById('logout').addEventListener('click', async () => {
  try { await api('/api/auth/logout', { method: 'POST' }); } catch { /* signed out either way */ }
  me = null;
  showAccount();
  location.reload();
});

window.addEventListener('hashchange', route);
loadMe().then(route, e => fill(view, errorLine(e)));
