// Processes: GET /api/system/processes with sort, filters (name, user,
// state) and paging, refreshed every 5 s; a row (click or Enter) opens the
// detail (GET /api/system/processes/{pid}) in a dialog.
import { api, APIError } from '../api.js';
import { h, fill, table, row, field, errorLine } from '../dom.js';
import { bytes, percent, localTime, snapshotAge } from '../format.js';

const PAGE = 50;
const sorts = [['cpu', 'CPU'], ['memory', 'memory'], ['rss', 'RSS'], ['pid', 'PID'], ['name', 'name'], ['start_time', 'start time']];
const states = ['', 'running', 'sleeping', 'disk-sleep', 'stopped', 'zombie', 'idle'];

export async function render(view) {
  const q = { sort: 'cpu', order: '', name: '', user: '', state: '', offset: 0 };
  let selected = null;
  const list = h('div', { id: 'process-list' }, 'loading…');
  const meta = h('p', { class: 'meta' });
  const pager = h('div', { class: 'pager' });
  // The detail opens as a modal dialog over the list (Esc or Close shuts it).
  const detailBody = h('div');
  const close = h('button', { type: 'button', id: 'process-detail-close' }, 'Close');
  const detail = h('dialog', { id: 'process-detail', 'aria-labelledby': 'process-detail-title' }, detailBody, close);
  close.addEventListener('click', () => detail.close());

  const name = h('input', { id: 'filter-name', type: 'search', placeholder: 'part of the name' });
  const user = h('input', { id: 'filter-user', placeholder: 'name or uid' });
  const state = h('select', { id: 'filter-state' }, states.map(s => h('option', { value: s }, s || 'any')));
  const sort = h('select', { id: 'sort' }, sorts.map(([v, l]) => h('option', { value: v }, l)));
  const order = h('select', { id: 'order' }, h('option', { value: '' }, 'default order'),
    h('option', { value: 'asc' }, 'ascending'), h('option', { value: 'desc' }, 'descending'));
  const controls = h('form', { class: 'controls', role: 'search' },
    field('Name', name), field('User', user), field('State', state), field('Sort by', sort), field('Order', order),
    h('button', { type: 'submit' }, 'Apply'));
  controls.addEventListener('submit', ev => {
    ev.preventDefault();
    Object.assign(q, { name: name.value.trim(), user: user.value.trim(), state: state.value, sort: sort.value, order: order.value, offset: 0 });
    load();
  });
  for (const s of [state, sort, order]) s.addEventListener('change', () => controls.requestSubmit());

  fill(view, h('h1', {}, 'Processes'), controls, meta,
    h('section', { class: 'panel' }, list, pager), detail);

  async function showDetail(pid) {
    selected = pid;
    for (const tr of list.querySelectorAll('tbody tr')) tr.setAttribute('aria-selected', String(tr.dataset.pid === String(pid)));
    fill(detailBody, h('p', {}, 'loading…'));
    if (!detail.open) detail.showModal();
    try {
      const p = (await api(`/api/system/processes/${pid}`)).data;
      const items = [
        ['PID', p.pid], ['parent PID', p.ppid], ['name', p.name], ['user', `${p.user} (uid ${p.uid})`],
        ['state', p.status], ['CPU', percent(p.cpu_percent)], ['memory', percent(p.memory_percent)],
        ['resident (RSS)', bytes(p.rss_bytes)], ['virtual', bytes(p.vms_bytes)], ['threads', p.threads], ['nice', p.nice],
        ['started', localTime(p.start_time * 1000)], ['command line', p.cmdline || undefined], ['executable', p.exe],
        ['working directory', p.cwd], ['open files', p.fd_count], ['cgroup', p.cgroup],
        ['read from storage', p.io ? bytes(p.io.read_bytes) : undefined], ['written to storage', p.io ? bytes(p.io.write_bytes) : undefined],
        ['children', p.children?.length ? p.children.join(', ') : 'none'],
      ].filter(([, v]) => v !== undefined && v !== null);
      fill(detailBody, h('h2', { id: 'process-detail-title' }, `${p.name} (${p.pid})`),
        h('dl', { class: 'detail' }, items.map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])));
    } catch (e) {
      fill(detailBody, h('h2', { id: 'process-detail-title' }, `Process ${pid}`),
        e instanceof APIError && e.status === 404 ? h('p', { class: 'empty' }, 'This process has exited.') : errorLine(e));
    }
  }

  async function load() {
    try {
      const { data } = await api('/api/system/processes', { query: { ...q, limit: PAGE } });
      const rows = data.processes.map(p => {
        const tr = row([{ text: p.pid, num: true }, p.name, p.user, p.status, { text: percent(p.cpu_percent), num: true },
          { text: percent(p.memory_percent), num: true }, { text: bytes(p.rss_bytes), num: true },
          { text: p.threads, num: true }, localTime(p.start_time * 1000)],
        { tabindex: '0', 'data-pid': p.pid, 'aria-selected': String(p.pid === selected) });
        tr.addEventListener('click', () => showDetail(p.pid));
        tr.addEventListener('keydown', ev => { if (ev.key === 'Enter') showDetail(p.pid); });
        return tr;
      });
      fill(list, table([{ label: 'PID', num: true }, { label: 'name' }, { label: 'user' }, { label: 'state' },
        { label: 'CPU', num: true }, { label: 'memory', num: true }, { label: 'RSS', num: true },
        { label: 'threads', num: true }, { label: 'started' }], rows, 'No process matches these filters.'));
      fill(meta, `${data.count} matching of ${data.total} processes; CPU is the share of one core since the previous snapshot; ${snapshotAge(data.snapshot)}`);
      const prev = h('button', { type: 'button', disabled: q.offset === 0 }, 'Previous');
      const next = h('button', { type: 'button', disabled: q.offset + PAGE >= data.count }, 'Next');
      prev.addEventListener('click', () => { q.offset = Math.max(0, q.offset - PAGE); load(); });
      next.addEventListener('click', () => { q.offset += PAGE; load(); });
      const last = Math.min(q.offset + PAGE, data.count);
      if (data.count > PAGE || q.offset > 0) fill(pager, prev, `${q.offset + 1}–${last} of ${data.count}`, next);
      else fill(pager);
    } catch (e) {
      fill(list, errorLine(e));
    }
  }
  await load();
  // No refresh while a row has the keyboard focus: it would be replaced under it.
  const timer = setInterval(() => { if (!list.contains(document.activeElement)) load(); }, 5000);
  return () => { clearInterval(timer); detail.close(); };
}
