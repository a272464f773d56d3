// Overview: charts of the chosen range (15 min to 30 d) from GET
// /api/system/history, fed by the system channel (/ws) with each live sample
// folded into the bucket in progress (js/series.js), and back-filled again on
// load, on a range change and after a gap or reset; tiles with the newest
// sample (GET /api/system/stats); the pool's health from GET /health/detailed
// and the active alerts from GET /api/alerts/active (every 5 s), the host
// from GET /api/system/info.
import { api, APIError } from '../api.js';
import { h, fill, errorLine, unavailable } from '../dom.js';
import { bytes, rate, percent, clock, dayClock, span, localTime, duration } from '../format.js';
import * as live from '../live.js';
import { activeTable } from './alerts.js';
import { RANGES, METRICS, sampleFigures, historyPoints, fold, stepMillis, isolatedRadius } from '../series.js';

const palette = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];
/** The chosen range's id; kept while the page is open in this tab. */
let rangeId = '15m';

function chartDefaults() {
  const css = getComputedStyle(document.documentElement);
  Chart.defaults.color = css.getPropertyValue('--muted').trim();
  Chart.defaults.borderColor = css.getPropertyValue('--line').trim();
}

/** A line chart of {x, y, min, max} points; the tooltip gives a bucket's min and max with its average. */
function lineChart(canvas, y, fmt, axis) {
  return new Chart(canvas, {
    type: 'line',
    data: { datasets: [] },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true, spanGaps: false,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      scales: { x: { type: 'linear', ticks: { callback: v => axis.format(v), maxTicksLimit: 5, maxRotation: 0 } },
        y: { beginAtZero: true, ...y } },
      plugins: {
        legend: { labels: { boxWidth: 12 } },
        tooltip: { callbacks: {
          title: items => localTime(items[0].raw.x),
          label: c => {
            const p = c.raw;
            const range = p.min !== undefined && p.min !== null && p.min !== p.max ? ` (min ${fmt(p.min)}, max ${fmt(p.max)})` : '';
            return `${c.dataset.label}: ${fmt(p.y)}${range}`;
          },
        } },
      },
    },
  });
}

const pct = { max: 100, title: { display: true, text: '%' } };
const load2 = v => (v === null || v === undefined ? '—' : Number(v).toFixed(2));

/**
 * The charts: each shows the series `keys` names, or every series whose name
 * starts with `prefix` (one per core, one per mount).
 */
const CHARTS = [
  { id: 'cpu', title: 'CPU, all cores (%)', keys: ['cpu'], label: () => 'CPU', y: pct, fmt: v => percent(v) },
  { id: 'cores', title: 'CPU per core (%)', prefix: 'cpu_core:', label: k => `cpu${k.slice(9)}`, y: pct, fmt: v => percent(v) },
  { id: 'memory', title: 'Memory and swap used (%)', keys: ['memory', 'swap'], label: k => k, y: pct, fmt: v => percent(v) },
  { id: 'load', title: 'Load average (runnable tasks)', keys: ['load1', 'load5', 'load15'],
    label: k => `${k.slice(4)} min`, y: {}, fmt: load2 },
  { id: 'disk', title: 'Disk space used per mount (%)', prefix: 'disk:', label: k => k.slice(5), y: pct, fmt: v => percent(v) },
  { id: 'network', title: 'Network, all interfaces but loopback (bytes/s)', keys: ['net_rx', 'net_tx'],
    label: k => (k === 'net_rx' ? 'received' : 'sent'), y: { ticks: { callback: v => rate(v) } }, fmt: rate },
];

export async function render(view) {
  chartDefaults();
  // Tiles are built once and their values set in place on each update.
  const tileValues = {};
  const tileNames = ['CPU', 'Memory', 'Swap', 'Load 1/5/15 min', 'Disk /', 'Network in / out'];
  const tiles = h('div', { class: 'tiles', id: 'tiles' }, tileNames.map(label => {
    tileValues[label] = h('div', { class: 'value' }, '—');
    return h('div', { class: 'tile' }, h('div', { class: 'label' }, label), tileValues[label]);
  }));
  const meta = h('p', { class: 'meta', id: 'sample-age' }, 'waiting for the first sample…');
  const pool = h('div', { id: 'pool' }, 'loading…');
  const host = h('div', { id: 'host' }, 'loading…');
  const alerts = h('div', { id: 'overview-alerts' }, 'loading…');
  const rangeNote = h('p', { class: 'meta', id: 'range-note' }, 'loading the history…');
  const rangeButtons = RANGES.map(([id, label]) => h('button', {
    type: 'button', id: `range-${id}`, 'aria-pressed': String(id === rangeId), onclick: () => choose(id),
  }, label));
  const axis = { format: clock };
  const panels = {};
  const charts = {};
  const sections = CHARTS.map(def => {
    const canvas = h('canvas', { role: 'img', 'aria-label': def.title });
    panels[def.id] = h('div', { class: 'chart', id: `${def.id}-chart`, dataset: { points: '0' } }, canvas);
    charts[def.id] = lineChart(canvas, def.y, def.fmt, axis);
    return h('section', { class: 'panel' }, h('h2', {}, def.title), panels[def.id]);
  });
  fill(view,
    h('h1', {}, 'Overview'),
    h('section', { class: 'panel alerts' }, h('h2', {}, h('a', { href: '#/alerts' }, 'Active alerts')), alerts),
    tiles, meta,
    h('div', { class: 'controls range', role: 'group', 'aria-label': 'Chart range' }, h('span', {}, 'Range'), rangeButtons),
    rangeNote,
    h('div', { class: 'grid' }, sections,
      h('section', { class: 'panel' }, h('h2', {}, 'Host'), host),
      h('section', { class: 'panel' }, h('h2', {}, 'Pool health'), pool)));

  // The datasets of each chart by series name, made on first sight (a core or
  // a mount the history did not have yet gets its line when a sample has it).
  const dataset = (def, key) => {
    const chart = charts[def.id];
    let d = chart.data.datasets.find(x => x.key === key);
    if (!d) {
      const c = palette[chart.data.datasets.length % palette.length];
      d = { key, label: def.label(key), data: [], borderColor: c, backgroundColor: c, borderWidth: 1.5, pointRadius: 0 };
      chart.data.datasets.push(d);
    }
    return d;
  };
  const owner = key => CHARTS.find(def => (def.keys ? def.keys.includes(key) : key.startsWith(def.prefix)));
  // After a back-fill and when a new bucket starts: the panels' point counts
  // (read by the browser test) and the dots of points between gaps.
  const countPoints = () => {
    for (const def of CHARTS) {
      for (const d of charts[def.id].data.datasets) d.pointRadius = isolatedRadius(d.data, 2);
      const d = charts[def.id].data.datasets[0];
      panels[def.id].dataset.points = String(d ? d.data.reduce((n, p) => n + (p.y === null ? 0 : 1), 0) : 0);
    }
  };

  // The range's step (ms), from the newest history answer; live samples fold into its buckets.
  let step = 1000;
  let rangeMs = 900 * 1000;
  let lastT = 0;
  let redraws = 0;
  let backfills = 0;
  const setAxis = t => {
    for (const c of Object.values(charts)) {
      c.options.scales.x.min = t - rangeMs;
      c.options.scales.x.max = t;
    }
  };
  const apply = (s, fromLive) => {
    const t = Date.parse(s.timestamp);
    if (!(t > lastT)) return; // a back-fill may repeat the newest sample
    lastT = t;
    const started = performance.now();
    const cpu = s.cpu ?? {}, mem = s.memory ?? {}, swap = mem.swap ?? {}, net = s.network;
    for (const [key, value] of Object.entries(sampleFigures(s))) {
      const def = owner(key);
      if (def) fold(dataset(def, key).data, t, value, step, t - rangeMs);
    }
    setAxis(t);
    const d = charts.cpu.data.datasets[0]?.data ?? [];
    if (d.length && d[d.length - 1].n === 1) countPoints(); // a new bucket: the counts changed
    for (const c of Object.values(charts)) c.update('none');
    const load = (cpu.load_avg ?? []).map(v => v.toFixed(2)).join(' / ');
    const values = [
      percent(cpu.usage_percent),
      `${bytes(mem.used)} of ${bytes(mem.total)} (${percent(mem.percent, 0)})`,
      `${bytes(swap.used)} of ${bytes(swap.total)}`,
      load || '—',
      s.disk ? `${bytes(s.disk.used)} of ${bytes(s.disk.total)} (${percent(s.disk.percent, 0)})` : '—',
      net ? `${rate(net.rx_bytes_per_sec)} / ${rate(net.tx_bytes_per_sec)}` : '—',
    ];
    tileNames.forEach((label, i) => { tileValues[label].textContent = values[i]; });
    meta.textContent = `sample taken ${localTime(s.timestamp)}`;
    // Main-thread time of one live update, as a User Timing measure that the
    // browser test and Scripts/bench read (the last 200 at most, so the
    // buffer stays small). Back-fills are left out: the first one includes
    // the charts' first layout, which no later update repeats.
    if (!fromLive) return;
    panels.cpu.dataset.updates = String(++redraws); // counted by Scripts/loadtest ui-soak
    if (redraws % 200 === 0) performance.clearMeasures('cc-redraw');
    performance.measure('cc-redraw', { start: started });
  };

  // Back-fill: the range's history (every chart at once) and the newest
  // sample. A newer back-fill (a range change, another gap) wins over one
  // still in flight.
  let generation = 0;
  const backfill = async () => {
    const mine = ++generation;
    const [id, label, seconds] = RANGES.find(r => r[0] === rangeId);
    let answer, stats;
    try {
      [answer, stats] = await Promise.all([
        api('/api/system/history', { query: { metrics: METRICS, from: `-${id}` } }).then(r => r.data),
        api('/api/system/stats').then(r => r.data),
      ]);
    } catch (e) {
      if (mine === generation) fill(rangeNote, errorLine(e));
      return;
    }
    if (mine !== generation) return;
    step = stepMillis(answer);
    rangeMs = seconds * 1000;
    axis.format = seconds >= 86400 ? dayClock : clock;
    for (const c of Object.values(charts)) c.data.datasets = [];
    for (const [key, points] of Object.entries(historyPoints(answer))) {
      const def = owner(key);
      if (def) dataset(def, key).data = points;
    }
    for (const c of Object.values(charts)) c.options.plugins.legend.display = c.data.datasets.length > 1;
    countPoints();
    panels.cpu.dataset.range = id;
    panels.cpu.dataset.tier = answer.tier;
    panels.cpu.dataset.history = panels.cpu.dataset.points;
    lastT = 0;
    apply(stats);
    countPoints();
    setAxis(lastT || answer.to);
    for (const c of Object.values(charts)) c.update('none');
    panels.cpu.dataset.backfills = String(++backfills);
    fill(rangeNote, `${label} from the history (${answer.tier === 'raw' ? 'raw samples' : `${answer.tier} roll-ups`}, `
      + `one point per ${span(step / 1000)}), then live samples, folded into one point per bucket. `
      + 'Hover for a point\'s minimum and maximum; a gap is a time without samples.');
  };
  const choose = id => {
    rangeId = id;
    for (const b of rangeButtons) b.setAttribute('aria-pressed', String(b.id === `range-${id}`));
    backfill();
  };
  const stopLive = live.subscribe((msg, gap) => {
    if (gap) backfill();
    if (msg.type === 'system_stats') apply(msg, true);
  });
  live.start();
  await backfill();

  const health = async () => {
    try {
      const d = (await api('/health/detailed')).data;
      fill(pool, h('dl', { class: 'detail' },
        h('dt', {}, 'status'), h('dd', { class: `status-${d.status}` }, d.status),
        h('dt', {}, 'workers'), h('dd', {}, `${d.pool.workers} of ${d.pool.target} (${d.pool.busy} busy)`),
        h('dt', {}, 'worker restarts'), h('dd', {}, String(d.pool.restarts)),
        h('dt', {}, 'version'), h('dd', {}, d.version),
        h('dt', {}, 'uptime'), h('dd', {}, duration(d.uptime_seconds)),
        h('dt', {}, 'checked'), h('dd', {}, localTime(d.timestamp))));
    } catch (e) { fill(pool, errorLine(e)); }
  };
  let alertsRoute = true; // false once the route answered 404: no asking again every 5 s
  const activeAlerts = async () => {
    if (!alertsRoute) return;
    try {
      fill(alerts, activeTable((await api('/api/alerts/active')).data.alerts ?? []));
    } catch (e) {
      alertsRoute = !(e instanceof APIError && e.status === 404);
      fill(alerts, alertsRoute ? errorLine(e) : unavailable('Alerts', '/api/alerts/active'));
    }
  };
  health();
  activeAlerts();
  api('/api/system/info').then(({ data: i }) => fill(host, h('dl', { class: 'detail' },
    h('dt', {}, 'name'), h('dd', {}, i.hostname),
    h('dt', {}, 'system'), h('dd', {}, i.distribution.pretty_name ?? i.os),
    h('dt', {}, 'kernel'), h('dd', {}, `${i.kernel.release} (${i.arch})`),
    h('dt', {}, 'processor'), h('dd', {}, `${i.processor}, ${i.cpuCores} logical CPUs`),
    h('dt', {}, 'memory'), h('dd', {}, bytes(i.totalMemory)),
    h('dt', {}, 'booted'), h('dd', {}, `${localTime(i.boot_time)} (up ${duration(i.uptime_seconds)})`))),
  e => fill(host, errorLine(e)));
  const timer = setInterval(() => { health(); activeAlerts(); }, 5000);
  return () => {
    stopLive();
    clearInterval(timer);
    for (const c of Object.values(charts)) c.destroy();
  };
}
