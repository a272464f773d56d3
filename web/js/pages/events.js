// Events: GET /api/events (newest first) with text search, level and source,
// paged by its keyset cursor ("Load older").
import { api } from '../api.js';
import { h, fill, table, row, field, errorLine } from '../dom.js';
import { localTime } from '../format.js';

const levels = ['', 'debug', 'info', 'warning', 'error', 'critical'];

export async function render(view) {
  const list = h('div', { id: 'event-list' }, 'loading…');
  const more = h('div', { class: 'pager' });
  const q = h('input', { id: 'event-q', type: 'search', placeholder: 'text in message, action or target' });
  const level = h('select', { id: 'event-level' }, levels.map(l => h('option', { value: l }, l || 'any')));
  const source = h('input', { id: 'event-source', placeholder: 'e.g. audit' });
  const form = h('form', { class: 'controls', role: 'search' }, field('Search', q), field('Level', level), field('Source', source),
    h('button', { type: 'submit' }, 'Search'));
  let rows = [];
  form.addEventListener('submit', ev => { ev.preventDefault(); rows = []; load(null); });
  fill(view, h('h1', {}, 'Events'), form, h('section', { class: 'panel' }, list, more));

  async function load(cursor) {
    try {
      const { data } = await api('/api/events', { query: { q: q.value.trim(), level: level.value, source: source.value.trim(), cursor, limit: 100 } });
      rows = rows.concat(data.events.map(e => row([localTime(e.timestamp), e.level, e.source, e.actor ?? '—',
        [e.action, e.target].filter(Boolean).join(' ') || '—', e.message])));
      fill(list, table(['time', 'level', 'source', 'actor', 'action', 'message'].map(label => ({ label })), rows,
        'No events match.'));
      if (data.next_cursor) {
        const b = h('button', { type: 'button' }, 'Load older');
        b.addEventListener('click', () => load(data.next_cursor));
        fill(more, b);
      } else fill(more);
    } catch (e) { fill(list, errorLine(e)); }
  }
  await load(null);
}
