// Pages whose API arrives with other parts of the project (services, alerts):
// they list what the route answers and say plainly when this server has no
// such route yet (404), so a later release lights them up without a change here.
import { api, APIError } from '../api.js';
import { h, fill, table, row, unavailable, errorLine } from '../dom.js';

function listPage(title, route, key, columns, empty) {
  return {
    async render(view) {
      const body = h('section', { class: 'panel', id: `${key}-list` }, 'loading…');
      fill(view, h('h1', {}, title), body);
      try {
        const { data } = await api(route);
        const items = Array.isArray(data) ? data : (data?.[key] ?? []);
        fill(body, table(columns.map(label => ({ label })),
          items.map(item => row(columns.map(c => item[c] === undefined || item[c] === null ? '—' : String(item[c])))), empty));
      } catch (e) {
        fill(body, e instanceof APIError && e.status === 404 ? unavailable(title, route) : errorLine(e));
      }
    },
  };
}

export const services = listPage('Services', '/api/services', 'services', ['name', 'status', 'health', 'pid'], 'No services are defined.');
export const alerts = listPage('Alerts', '/api/alerts', 'alerts', ['name', 'state', 'severity', 'since'], 'No active alerts.');
