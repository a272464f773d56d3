// Services: the registry (GET /api/services) with each one's status and
// health (GET /api/services/{name}/status), start/stop/restart (operator)
// whose action is polled until it ends (GET …/actions/{id}), a log tail
// refreshed every 2 s from the logs route's `since` cursor, and create, edit
// and delete (admin) with the command as a list of argv fields, never a shell
// string. "Not available" when this server has no services route (404).
import { api, APIError } from '../api.js';
import { h, fill, table, row, unavailable, errorLine, confirmDialog } from '../dom.js';
import { bytes, duration, localTime } from '../format.js';

/** Services per page of the list. */
const PAGE = 50;
/** Lines kept in the log tail: the page must not grow with a chatty service. */
const TAIL = 500;
const statusClass = { running: 'ok', starting: 'warn', stopping: 'warn', backoff: 'bad', failed: 'bad' };
const healthClass = { healthy: 'ok', unhealthy: 'bad' };
/** The fields of a definition the API takes back on PUT (ServiceInput in docs/openapi.yaml). */
const inputFields = ['name', 'description', 'command', 'working_directory', 'environment', 'user', 'group', 'port',
  'autostart', 'restart_policy', 'backoff_initial_seconds', 'backoff_max_seconds', 'max_retries',
  'retry_cooldown_seconds', 'depends_on', 'start_timeout_seconds', 'stop_timeout_seconds', 'stop_signal',
  'health_check', 'limits'];

const pill = (text, cls) => h('span', { class: `pill ${cls ?? ''}` }, text);

export async function render(view, ctx) {
  const role = ctx.me?.role;
  const canOperate = role === 'operator' || role === 'admin';
  const isAdmin = role === 'admin';
  const list = h('div', { id: 'services-list' }, 'loading…');
  const meta = h('p', { class: 'meta' });
  const pager = h('div', { class: 'pager' });
  const detail = h('section', { class: 'panel', id: 'service-detail', hidden: true });
  const editor = h('section', { class: 'panel', id: 'service-editor', hidden: true });
  const newButton = isAdmin ? h('button', { type: 'button', id: 'service-new' }, 'New service') : null;
  newButton?.addEventListener('click', () => openEditor(null));
  fill(view, h('div', { class: 'controls' }, h('h1', {}, 'Services'), newButton), meta,
    h('section', { class: 'panel' }, list, pager), editor, detail);

  let selected = null;       // the name whose detail is open
  let statuses = {};         // name -> GET …/status answer
  let stopTail = null;
  // Names being deleted: a refresh that listed one just before its DELETE
  // must not ask for its status after it (a 404, an error in the console).
  const deleting = new Set();
  let stopped = false;

  let page = 1;

  /** `f` over `items`, at most `n` at a time (the API's rate limit counts each request). */
  async function eachLimited(items, n, f) {
    const out = new Array(items.length);
    let next = 0;
    const worker = async () => { while (next < items.length) { const i = next++; out[i] = await f(items[i]); } };
    await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
    return out;
  }

  async function load() {
    let data;
    try {
      data = (await api('/api/services', { query: { page, page_size: PAGE } })).data;
    } catch (e) {
      if (e instanceof APIError && e.status === 404) {
        fill(list, unavailable('Services', '/api/services'));
        if (newButton) newButton.hidden = true;
      } else fill(list, errorLine(e));
      return;
    }
    const services = data.services ?? [];
    // Health and the process tree are on each service's status (the list has
    // neither): read for the services with a process, and the one whose
    // detail is open; a stopped one's health is unknown anyway.
    const wanted = services.filter(s => s.status !== 'stopped' || s.name === selected);
    const answers = await eachLimited(wanted, 4, s => deleting.has(s.name) ? null
      : api(`/api/services/${encodeURIComponent(s.name)}/status`).then(r => r.data, () => null));
    statuses = Object.fromEntries(wanted.map((s, i) => [s.name, answers[i]]));
    fill(list, table(['name', 'status', 'health', 'PID', 'port', 'uptime', 'last run', 'description', '']
      .map((label, i) => ({ label, num: i === 3 || i === 4 || i === 5 })),
    services.map(s => {
      const st = statuses[s.name];
      const status = st?.status ?? s.status;
      return row([
        h('a', { href: '#/services', onclick: ev => { ev.preventDefault(); select(s.name); } }, s.name),
        pill(status, statusClass[status]),
        pill(st?.health ?? 'unknown', healthClass[st?.health]),
        { text: s.pid ?? '—', num: true }, { text: s.port ?? '—', num: true },
        { text: duration(s.uptime_seconds), num: true },
        localTime(s.last_run_time), s.description || '—',
        canOperate ? actionButtons(s.name, status) : null,
      ], { 'data-service': s.name, 'data-status': status, 'aria-selected': String(s.name === selected) });
    }), 'No services are defined yet.' + (isAdmin ? ' Use "New service" to add one.' : '')));
    const m = data.meta ?? {};
    const total = m.total ?? services.length;
    fill(meta, `${total} service${total === 1 ? '' : 's'}; status as the supervisor last recorded it, refreshed every 5 s`);
    if (m.has_prev || m.has_next) {
      fill(pager, h('button', { type: 'button', disabled: !m.has_prev, onclick: () => { page--; load(); } }, 'Previous'),
        `page ${m.page} of ${m.total_pages}`,
        h('button', { type: 'button', disabled: !m.has_next, onclick: () => { page++; load(); } }, 'Next'));
    } else fill(pager);
    if (selected && !services.some(s => s.name === selected)) closeDetail();
    else if (selected) showStatus(selected);
  }

  function actionButtons(name, status) {
    const b = (action, label, disabled) => h('button', { type: 'button', 'data-action': action, disabled,
      onclick: () => runAction(name, action) }, label);
    return h('span', { class: 'controls' },
      b('start', 'Start', status === 'running' || status === 'starting'),
      b('stop', 'Stop', status === 'stopped'),
      b('restart', 'Restart', false));
  }

  // Start, stop or restart: 202 gives an action id, polled every 0.5 s until
  // it is done, failed or superseded; the progress shows in the detail.
  async function runAction(name, action) {
    await select(name);
    const progress = detail.querySelector('.action');
    const say = (text, cls) => { progress.className = `action ${cls ?? ''}`; progress.textContent = text; };
    say(`${action}: sent…`, 'warn');
    try {
      let a = (await api(`/api/services/${encodeURIComponent(name)}/${action}`, { method: 'POST' })).data;
      const id = a.action_id;
      while (!stopped && (a.status === 'pending' || a.status === 'running')) {
        say(`${action} (action ${id}): ${a.status}…`, 'warn');
        await new Promise(r => setTimeout(r, 500));
        a = (await api(`/api/services/${encodeURIComponent(name)}/actions/${id}`)).data;
      }
      const ok = a.status === 'done';
      say(`${action} (action ${id}): ${a.status}${a.pid ? `, PID ${a.pid}` : ''}${a.message ? ` — ${a.message}` : ''}`,
        ok ? 'ok' : 'bad');
      progress.dataset.result = a.status;
    } catch (e) {
      say(`${action}: ${e.message}`, 'bad');
      progress.dataset.result = 'error';
    }
    if (!stopped) { await load(); showStatus(name); }
  }

  function closeDetail() {
    if (stopTail) { stopTail(); stopTail = null; }
    selected = null;
    detail.hidden = true;
  }

  function showStatus(name) {
    const st = statuses[name];
    const box = detail.querySelector('.status');
    if (!box || !st) return;
    const items = [
      ['status', st.status], ['health', st.health], ['PID', st.pid ?? '—'],
      ['started', localTime(st.started_at)], ['uptime', duration(st.uptime_seconds)],
      ['restarts by policy', st.restarts],
      ['last exit', st.last_exit?.at ? `${st.last_exit.code !== null && st.last_exit.code !== undefined
        ? `code ${st.last_exit.code}` : `signal ${st.last_exit.signal}`} at ${localTime(st.last_exit.at)}` : '—'],
      ['next retry', st.next_retry_at ? localTime(st.next_retry_at) : '—'],
      ['processes', st.tree ? st.tree.processes : '—'], ['resident memory', st.tree ? bytes(st.tree.rss_bytes) : '—'],
      ['CPU time', st.tree ? `${Number(st.tree.cpu_seconds ?? 0).toFixed(2)} s` : '—'], ['message', st.message ?? '—'],
    ];
    fill(box, h('dl', { class: 'detail' }, items.map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])));
  }

  async function select(name) {
    if (selected === name && !detail.hidden) return;
    closeDetail();
    selected = name;
    for (const tr of list.querySelectorAll('tbody tr')) tr.setAttribute('aria-selected', String(tr.dataset.service === name));
    const log = h('pre', { class: 'log', id: 'service-log', tabindex: '0', 'aria-label': `${name} log` });
    const logMeta = h('p', { class: 'meta', id: 'service-log-meta' }, 'loading…');
    const edit = isAdmin ? h('button', { type: 'button', id: 'service-edit', onclick: () => openEditor(name) }, 'Edit') : null;
    const del = isAdmin ? h('button', { type: 'button', class: 'danger', id: 'service-delete', onclick: () => remove(name) }, 'Delete') : null;
    const close = h('button', { type: 'button', onclick: closeDetail }, 'Close');
    fill(detail, h('div', { class: 'controls' }, h('h2', {}, name), edit, del, close),
      h('p', { class: 'action', 'aria-live': 'polite' }),
      h('div', { class: 'status' }),
      h('h2', {}, 'Log (stdout and stderr, newest last)'), logMeta, log);
    detail.hidden = false;
    if (statuses[name]) showStatus(name);
    else {
      api(`/api/services/${encodeURIComponent(name)}/status`).then(r => {
        statuses[name] = r.data;
        if (selected === name) showStatus(name);
      }, e => { if (selected === name) fill(detail.querySelector('.status'), errorLine(e)); });
    }
    stopTail = tail(name, log, logMeta);
  }

  // The log tail: the last 100 lines, then every 2 s the lines after the
  // cursor the previous answer gave; at most TAIL lines stay on the page.
  // Its stop function returns a promise that settles when a read in flight
  // has ended, so that a delete can wait for it (else that read gets 404).
  function tail(name, log, logMeta) {
    let cursor = null;
    let timer = null;
    let done = false;
    let inflight = null;
    const poll = async () => {
      try {
        const { data } = await api(`/api/services/${encodeURIComponent(name)}/logs`,
          { query: cursor ? { since: cursor, lines: 1000 } : { lines: 100 } });
        if (done) return;
        const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        if (data.truncated) log.append(h('span', { class: 'note' }, '… older lines were rotated away before they could be shown …\n'));
        for (const line of data.logs) log.append(line + '\n');
        while (log.childNodes.length > TAIL) log.firstChild.remove();
        if (atEnd) log.scrollTop = log.scrollHeight;
        cursor = data.next;
        logMeta.textContent = `${log.childNodes.length} lines shown; refreshed every 2 s, last at ${localTime(Date.now())}`;
      } catch (e) {
        if (!done) fill(logMeta, errorLine(e));
      }
      if (!done) timer = setTimeout(() => { inflight = poll(); }, 2000);
    };
    inflight = poll();
    return () => { done = true; clearTimeout(timer); return inflight; };
  }

  async function remove(name) {
    if (!await confirmDialog(`Delete the service ${name}? A running service is stopped first.`, 'Delete')) return;
    deleting.add(name);
    try {
      if (stopTail) { await stopTail(); stopTail = null; }
      await api(`/api/services/${encodeURIComponent(name)}`, { method: 'DELETE' });
      closeDetail();
      load();
    } catch (e) { fill(detail.querySelector('.action'), errorLine(e)); }
    // A service created again under this name later is asked for as usual.
    setTimeout(() => deleting.delete(name), 10000);
  }

  // Create (name editable) or edit (PUT replaces the whole definition, so the
  // stored one is the base and the form's fields are laid over it).
  async function openEditor(name) {
    let base = {};
    if (name) {
      try { base = (await api(`/api/services/${encodeURIComponent(name)}`)).data; } catch (e) { fill(editor, errorLine(e)); editor.hidden = false; return; }
    }
    const status = h('div', { 'aria-live': 'polite' });
    const nameIn = h('input', { id: 'service-name', required: true, pattern: '[a-z0-9][a-z0-9_\\-]{0,62}', maxlength: 63,
    title: 'lower-case letters, digits, _ and -', value: base.name ?? '', readonly: !!name });
    const descIn = h('input', { id: 'service-description', value: base.description ?? '' });
    const argv = h('ol', { class: 'argv', id: 'service-argv' });
    const addArg = value => {
      const input = h('input', { class: 'arg', value: value ?? '', 'aria-label': 'argument' });
      const drop = h('button', { type: 'button', 'aria-label': 'remove this argument', onclick: () => li.remove() }, '×');
      const li = h('li', {}, input, drop);
      argv.append(li);
      return input;
    };
    for (const a of base.command ?? ['']) addArg(a);
    const more = h('button', { type: 'button', id: 'service-add-arg', onclick: () => addArg('').focus() }, 'Add argument');
    const dirIn = h('input', { id: 'service-directory', value: base.working_directory ?? '', placeholder: '/' });
    const userIn = h('input', { id: 'service-user', value: base.user ?? '', placeholder: 'the server\'s user' });
    const portIn = h('input', { id: 'service-port', type: 'number', min: 1, max: 65535, value: base.port ?? '' });
    const policy = h('select', { id: 'service-restart' }, ['on-failure', 'always', 'no'].map(p =>
      h('option', { value: p, selected: (base.restart_policy ?? 'on-failure') === p }, p)));
    const autostart = h('input', { id: 'service-autostart', type: 'checkbox', checked: !!base.autostart });
    const save = h('button', { type: 'submit', id: 'service-save' }, name ? 'Save' : 'Create');
    const cancel = h('button', { type: 'button', onclick: () => { editor.hidden = true; fill(editor); } }, 'Cancel');
    const form = h('form', { class: 'stack', id: 'service-form' },
      h('label', {}, 'Name', nameIn), h('label', {}, 'Description', descIn),
      h('fieldset', {}, h('legend', {}, 'Command: the program, then one argument per field (no shell)'), argv, more),
      h('label', {}, 'Working directory', dirIn), h('label', {}, 'Run as user', userIn),
      h('label', {}, 'Port it listens on (optional)', portIn), h('label', {}, 'Restart policy', policy),
      h('label', { class: 'check' }, autostart, 'Start with the server'),
      h('div', { class: 'controls' }, save, cancel), status);
    form.addEventListener('submit', async ev => {
      ev.preventDefault();
      fill(status);
      const body = Object.fromEntries(inputFields.filter(k => base[k] !== undefined).map(k => [k, base[k]]));
      Object.assign(body, {
        name: nameIn.value.trim(), description: descIn.value,
        // Empty trailing fields are left out; an empty one in between is sent (and refused by the server).
        command: [...argv.querySelectorAll('input')].map(i => i.value).reduceRight((acc, v) => (acc.length || v !== '' ? [v, ...acc] : acc), []),
        working_directory: dirIn.value.trim() || null, user: userIn.value.trim() || null,
        port: portIn.value === '' ? null : Number(portIn.value), restart_policy: policy.value, autostart: autostart.checked,
      });
      try {
        await api(name ? `/api/services/${encodeURIComponent(name)}` : '/api/services', { method: name ? 'PUT' : 'POST', body });
        editor.hidden = true;
        fill(editor);
        await load();
        select(body.name);
      } catch (e) { fill(status, errorLine(e)); }
    });
    fill(editor, h('h2', {}, name ? `Edit ${name}` : 'New service'), form);
    editor.hidden = false;
    (name ? descIn : nameIn).focus();
  }

  await load();
  const timer = setInterval(() => { if (!list.contains(document.activeElement)) load(); }, 5000);
  return () => { stopped = true; clearInterval(timer); closeDetail(); };
}
