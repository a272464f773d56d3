// Alerts: active alerts with ack (GET /api/alerts/active, POST
// /api/alerts/{id}/ack), silences (GET|POST /api/alerts/silences), rules
// (GET|POST /api/alerts/rules, PUT|DELETE /api/alerts/rules/{id}; operators
// change them) and the recent history (GET /api/alerts/history). Each part
// reads only the fields it shows, so extra fields are harmless, and says
// "not available" when this server has no such route (404).
import { api, APIError } from '../api.js';
import { h, fill, table, row, unavailable, errorLine, confirmDialog } from '../dom.js';
import { duration, localTime } from '../format.js';

const severityClass = { critical: 'bad', warning: 'warn', info: '' };
const stateClass = { firing: 'bad', pending: 'warn', resolved: 'ok' };
/** Fields of a stored rule that are not part of its definition (left out of a PUT). */
// Sent back on a PUT without these: `targets` absent keeps the stored ones (an
// operator sees them masked, and must not store the mask).
const storedOnly = ['id', 'created_at', 'updated_at', 'state', 'is_default', 'masked', 'targets'];

const pill = (text, cls) => h('span', { class: `pill ${cls ?? ''}` }, text ?? '—');

/** "cpu", "disk_percent (/)": an alert's or rule's metric with its label. */
export const metricName = a => (a.label ? `${a.metric} (${a.label})` : a.metric ?? '—');

/** One failed read: "not available" for a 404, else the error line. */
const failure = (e, what, route) => (e instanceof APIError && e.status === 404 ? unavailable(what, route) : errorLine(e));

/**
 * The active alerts as a table, or an empty state; `onAck(alert)` adds an Ack
 * button to those not yet acknowledged. Also used by the overview.
 */
export function activeTable(alerts, onAck) {
  return table(['alert', 'metric', 'state', 'severity', 'value', 'threshold', 'since', 'acknowledged', '']
    .map((label, i) => ({ label, num: i === 4 || i === 5 })),
  alerts.map(a => row([a.rule_name ?? `rule ${a.rule_id}`, metricName(a), pill(a.state, stateClass[a.state]),
    pill(a.severity, severityClass[a.severity]), { text: a.value ?? '—', num: true }, { text: a.threshold ?? '—', num: true },
    localTime(a.fired_at ?? a.started_at),
    a.acked_by ? `${a.acked_by}, ${localTime(a.acked_at)}` : 'no',
    onAck && !a.acked_by ? h('button', { type: 'button', 'data-ack': a.id, onclick: () => onAck(a) }, 'Ack') : null],
  { 'data-alert': a.id })), 'No active alerts.');
}

export async function render(view, ctx) {
  const canChange = ctx.me?.role === 'operator' || ctx.me?.role === 'admin';
  const active = h('div', { id: 'alerts-active' }, 'loading…');
  const silences = h('div', { id: 'alerts-silences' }, 'loading…');
  const rules = h('div', { id: 'alerts-rules' }, 'loading…');
  const history = h('div', { id: 'alerts-history' }, 'loading…');
  const status = h('div', { 'aria-live': 'polite', id: 'alerts-status' });
  const ruleForm = canChange ? h('div', { id: 'rule-editor' }) : null;
  const silenceForm = canChange ? h('div', { id: 'silence-editor' }) : null;
  fill(view, h('h1', {}, 'Alerts'), status,
    h('section', { class: 'panel' }, h('h2', {}, 'Active'), active),
    h('div', { class: 'grid' },
      h('section', { class: 'panel' }, h('h2', {}, 'Silences'), silences, silenceForm),
      h('section', { class: 'panel' }, h('h2', {}, 'Recent history'), history)),
    h('section', { class: 'panel' }, h('h2', {}, 'Rules'), rules, ruleForm));

  let ruleList = [];

  async function act(fn, done) {
    fill(status);
    try { await fn(); fill(status, h('p', { class: 'note' }, done)); } catch (e) { fill(status, errorLine(e)); }
    loadAll();
  }

  async function loadActive() {
    try {
      const { data } = await api('/api/alerts/active');
      fill(active, activeTable(data.alerts ?? [], canChange
        ? a => act(() => api(`/api/alerts/${a.id}/ack`, { method: 'POST' }), `Acknowledged ${a.rule_name ?? a.id}.`)
        : null));
    } catch (e) { fill(active, failure(e, 'Active alerts', '/api/alerts/active')); }
  }

  async function loadHistory() {
    try {
      const { data } = await api('/api/alerts/history');
      fill(history, table(['alert', 'metric', 'severity', 'fired', 'resolved', 'lasted'].map(label => ({ label })),
        (data.alerts ?? []).map(a => row([a.rule_name ?? `rule ${a.rule_id}`, metricName(a), pill(a.severity, severityClass[a.severity]),
          localTime(a.fired_at ?? a.started_at), localTime(a.resolved_at),
          a.resolved_at && (a.fired_at ?? a.started_at)
            ? duration((Date.parse(a.resolved_at) - Date.parse(a.fired_at ?? a.started_at)) / 1000) : '—'])),
        'No alert has fired yet.'));
    } catch (e) { fill(history, failure(e, 'Alert history', '/api/alerts/history')); }
  }

  async function loadSilences() {
    try {
      const { data } = await api('/api/alerts/silences');
      fill(silences, table(['matches', 'until', 'by', 'comment'].map(label => ({ label })),
        (data.silences ?? []).map(s => row([matcherText(s.matcher ?? s), localTime(s.ends_at), s.created_by ?? '—', s.comment || '—'])),
        'No silences.'));
      if (silenceForm && !silenceForm.firstChild) fill(silenceForm, silenceEditor());
    } catch (e) { fill(silences, failure(e, 'Silences', '/api/alerts/silences')); }
  }

  function matcherText(m) {
    const parts = [];
    if (m.rule_name) parts.push(m.rule_name);
    if (m.metric) parts.push(metricName(m));
    else if (m.label) parts.push(m.label);
    if (m.severity) parts.push(m.severity);
    return parts.join(', ') || 'everything';
  }

  async function loadRules() {
    try {
      const { data } = await api('/api/alerts/rules');
      ruleList = data.rules ?? [];
      fill(rules, table(['rule', 'metric', 'fires when', 'clears when', 'for', 'keep firing for', 'severity', 'enabled', '']
        .map(label => ({ label })),
      ruleList.map(r => row([r.name, metricName(r), `${r.comparator ?? '>'} ${r.threshold}`,
        r.clear_threshold === undefined || r.clear_threshold === null ? '—'
          : `${String(r.comparator ?? '>').startsWith('<') ? 'above' : 'below'} ${r.clear_threshold}`,
        duration(r.for_seconds), duration(r.keep_firing_for_seconds), pill(r.severity, severityClass[r.severity]),
        r.enabled === false ? 'no' : 'yes',
        canChange ? h('span', { class: 'controls' },
          h('button', { type: 'button', onclick: () => act(() => api(`/api/alerts/rules/${r.id}`, { method: 'PUT',
            body: { ...Object.fromEntries(Object.entries(r).filter(([k]) => !storedOnly.includes(k))), enabled: r.enabled === false } }),
          `Rule ${r.name} ${r.enabled === false ? 'enabled' : 'disabled'}.`) }, r.enabled === false ? 'Enable' : 'Disable'),
          h('button', { type: 'button', class: 'danger', onclick: async () => {
            if (await confirmDialog(`Delete the rule ${r.name}?`, 'Delete')) {
              act(() => api(`/api/alerts/rules/${r.id}`, { method: 'DELETE' }), `Rule ${r.name} deleted.`);
            }
          } }, 'Delete')) : null], { 'data-rule': r.id })),
      'No rules.'));
      if (ruleForm && !ruleForm.firstChild) fill(ruleForm, ruleEditor());
    } catch (e) { fill(rules, failure(e, 'Alert rules', '/api/alerts/rules')); }
  }

  function ruleEditor() {
    const f = {
      name: h('input', { required: true, id: 'rule-name' }),
      metric: h('input', { required: true, id: 'rule-metric', placeholder: 'cpu, memory, swap, disk, load1, net_rx…' }),
      label: h('input', { id: 'rule-label', placeholder: 'mount or interface (optional)' }),
      comparator: h('select', { id: 'rule-comparator' }, ['>', '>=', '<', '<='].map(c => h('option', { value: c }, c))),
      threshold: h('input', { type: 'number', step: 'any', required: true, id: 'rule-threshold' }),
      clear: h('input', { type: 'number', step: 'any', id: 'rule-clear' }),
      forS: h('input', { type: 'number', min: 0, value: 300, id: 'rule-for' }),
      keepS: h('input', { type: 'number', min: 0, value: 0, id: 'rule-keep' }),
      severity: h('select', { id: 'rule-severity' }, ['warning', 'critical'].map(s => h('option', { value: s }, s))),
    };
    const form = h('form', { class: 'controls', id: 'rule-form' },
      h('label', {}, 'Name', f.name), h('label', {}, 'Metric', f.metric), h('label', {}, 'Label', f.label),
      h('label', {}, 'Fires when', f.comparator), h('label', {}, 'Threshold', f.threshold),
      h('label', {}, 'Clear threshold', f.clear), h('label', {}, 'For (s)', f.forS),
      h('label', {}, 'Keep firing for (s)', f.keepS), h('label', {}, 'Severity', f.severity),
      h('button', { type: 'submit' }, 'Add rule'));
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      const num = i => (i.value === '' ? null : Number(i.value));
      act(() => api('/api/alerts/rules', { method: 'POST', body: {
        name: f.name.value.trim(), metric: f.metric.value.trim(), label: f.label.value.trim() || null,
        comparator: f.comparator.value, threshold: num(f.threshold), clear_threshold: num(f.clear),
        for_seconds: num(f.forS), keep_firing_for_seconds: num(f.keepS), severity: f.severity.value, enabled: true,
      } }).then(() => form.reset()), `Rule ${f.name.value.trim()} added.`);
    });
    return [h('h2', {}, 'New rule'), form];
  }

  function silenceEditor() {
    const rule = h('select', { id: 'silence-rule' }, h('option', { value: '' }, 'any rule'),
      ruleList.map(r => h('option', { value: r.name }, r.name)));
    const metric = h('input', { id: 'silence-metric', placeholder: 'any metric' });
    const hours = h('select', { id: 'silence-hours' }, [1, 4, 24, 168].map(n => h('option', { value: n }, `${n} h`)));
    const comment = h('input', { id: 'silence-comment' });
    const form = h('form', { class: 'controls', id: 'silence-form' },
      h('label', {}, 'Rule', rule), h('label', {}, 'Metric', metric), h('label', {}, 'For', hours),
      h('label', {}, 'Comment', comment), h('button', { type: 'submit' }, 'Silence'));
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      const matcher = {};
      if (rule.value) matcher.rule_name = rule.value;
      if (metric.value.trim()) matcher.metric = metric.value.trim();
      act(() => api('/api/alerts/silences', { method: 'POST', body: {
        matcher, ends_at: new Date(Date.now() + Number(hours.value) * 3600e3).toISOString(), comment: comment.value,
      } }).then(() => form.reset()), 'Silence added.');
    });
    return [h('h2', {}, 'New silence'), form];
  }

  async function loadAll() {
    await loadRules(); // silences name their rules
    await Promise.all([loadActive(), loadSilences(), loadHistory()]);
  }

  await loadAll();
  // No refresh while an Ack button has the keyboard focus: it would be replaced under it.
  const timer = setInterval(() => { if (!active.contains(document.activeElement)) loadActive(); }, 5000);
  return () => clearInterval(timer);
}
