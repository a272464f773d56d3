// Overview: live charts fed by the system channel (/ws), back-filled with
// GET /api/system/stats on load and after a gap or reset, and the pool's
// health from GET /health/detailed (every 5 s), the host from GET /api/system/info.
import { api } from '../api.js';
import { h, fill, errorLine } from '../dom.js';
import { bytes, rate, percent, clock, localTime, duration } from '../format.js';
import * as live from '../live.js';

/** Samples kept per chart: 5 minutes at the default 1 s interval. */
const KEEP = 300;
const palette = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];

function chartDefaults() {
  const css = getComputedStyle(document.documentElement);
  Chart.defaults.color = css.getPropertyValue('--muted').trim();
  Chart.defaults.borderColor = css.getPropertyValue('--line').trim();
}

function lineChart(canvas, labels, y) {
  return new Chart(canvas, {
    type: 'line',
    data: { datasets: labels.map((label, i) => ({ label, data: [], borderColor: palette[i], backgroundColor: palette[i],
      borderWidth: 1.5, pointRadius: 0 })) },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      scales: { x: { type: 'linear', ticks: { callback: clock, maxTicksLimit: 5, maxRotation: 0 } }, y: { beginAtZero: true, ...y } },
      plugins: { legend: { display: labels.length > 1 } },
    },
  });
}

function barChart(canvas, y) {
  return new Chart(canvas, {
    type: 'bar',
    data: { labels: [], datasets: [{ label: 'used', data: [], backgroundColor: palette[0] }] },
    options: { animation: false, responsive: true, maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, ...y } }, plugins: { legend: { display: false } } },
  });
}

const pct = { max: 100, title: { display: true, text: '%' } };

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
  const panels = {};
  const panel = (id, title, note) => {
    const canvas = h('canvas', { role: 'img', 'aria-label': title });
    panels[id] = h('div', { class: 'chart', id: `${id}-chart`, dataset: { points: '0' } }, canvas);
    return [h('section', { class: 'panel' }, h('h2', {}, title), panels[id], note ? h('p', { class: 'note' }, note) : null), canvas];
  };
  const [cpuP, cpuC] = panel('cpu', 'CPU, all cores (%)');
  const [coreP, coreC] = panel('cores', 'CPU per core (%)');
  const [memP, memC] = panel('memory', 'Memory and swap used (%)');
  const [loadP, loadC] = panel('load', 'Load average (runnable tasks)');
  const [diskP, diskC] = panel('disk', 'Disk space used per mount (%)');
  const [netP, netC] = panel('network', 'Network, all interfaces but loopback (bytes/s)');
  fill(view,
    h('h1', {}, 'Overview'),
    h('p', { class: 'note' }, 'Charts show the samples received since this page opened (one per collector interval).'),
    tiles, meta,
    h('div', { class: 'grid' },
      h('section', { class: 'panel' }, h('h2', {}, 'Host'), host),
      h('section', { class: 'panel' }, h('h2', {}, 'Pool health'), pool),
      cpuP, coreP, memP, loadP, diskP, netP));

  const charts = {
    cpu: lineChart(cpuC, ['CPU'], pct),
    cores: barChart(coreC, pct),
    memory: lineChart(memC, ['memory', 'swap'], pct),
    load: lineChart(loadC, ['1 min', '5 min', '15 min'], {}),
    disk: barChart(diskC, pct),
    network: lineChart(netC, ['received', 'sent'], { ticks: { callback: v => rate(v) } }),
  };

  const push = (chart, id, t, values) => {
    chart.data.datasets.forEach((d, i) => {
      d.data.push({ x: t, y: values[i] ?? null });
      if (d.data.length > KEEP) d.data.shift();
    });
    panels[id].dataset.points = String(chart.data.datasets[0].data.length);
  };
  const setBars = (chart, id, labels, values) => {
    chart.data.labels = labels;
    chart.data.datasets[0].data = values;
    panels[id].dataset.points = String(values.length);
  };

  let lastT = 0;
  let redraws = 0;
  const apply = s => {
    const t = Date.parse(s.timestamp);
    if (!(t > lastT)) return; // a back-fill may repeat the newest sample
    lastT = t;
    const started = performance.now();
    const cpu = s.cpu ?? {}, mem = s.memory ?? {}, swap = mem.swap ?? {}, net = s.network;
    push(charts.cpu, 'cpu', t, [cpu.usage_percent]);
    if (cpu.per_core) setBars(charts.cores, 'cores', cpu.per_core.map((_, i) => `cpu${i}`), cpu.per_core);
    push(charts.memory, 'memory', t, [mem.percent, swap.percent]);
    push(charts.load, 'load', t, cpu.load_avg ?? []);
    if (s.disks) setBars(charts.disk, 'disk', s.disks.map(d => d.mount), s.disks.map(d => d.percent));
    if (net) push(charts.network, 'network', t, [net.rx_bytes_per_sec, net.tx_bytes_per_sec]);
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
    // Main-thread time of one update, as a User Timing measure that the
    // browser test reads (the last 200 at most, so the buffer stays small).
    if (++redraws % 200 === 0) performance.clearMeasures('cc-redraw');
    performance.measure('cc-redraw', { start: started });
  };

  const backfill = async () => {
    try { apply((await api('/api/system/stats')).data); } catch (e) { fill(meta, errorLine(e)); }
  };
  const stopLive = live.subscribe((msg, gap) => {
    if (gap) backfill();
    if (msg.type === 'system_stats') apply(msg);
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
  health();
  api('/api/system/info').then(({ data: i }) => fill(host, h('dl', { class: 'detail' },
    h('dt', {}, 'name'), h('dd', {}, i.hostname),
    h('dt', {}, 'system'), h('dd', {}, i.distribution.pretty_name ?? i.os),
    h('dt', {}, 'kernel'), h('dd', {}, `${i.kernel.release} (${i.arch})`),
    h('dt', {}, 'processor'), h('dd', {}, `${i.processor}, ${i.cpuCores} logical CPUs`),
    h('dt', {}, 'memory'), h('dd', {}, bytes(i.totalMemory)),
    h('dt', {}, 'booted'), h('dd', {}, `${localTime(i.boot_time)} (up ${duration(i.uptime_seconds)})`))),
  e => fill(host, errorLine(e)));
  const timer = setInterval(health, 5000);
  return () => {
    stopLive();
    clearInterval(timer);
    for (const c of Object.values(charts)) c.destroy();
  };
}
