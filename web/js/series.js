// The overview's chart data: one series per figure, keyed by the history
// route's series names (`cpu`, `cpu_core:0`, `disk:/`, ...), as points
// {x: bucket start (Unix ms), y: average, min, max}. Filled from GET
// /api/system/history, then fed with live samples folded into the bucket in
// progress, so a chart holds at most one point per bucket of the range's
// step whatever the sample interval.

/** The ranges the overview offers: [id, label, seconds]. The server picks the tier. */
export const RANGES = [['15m', '15 min', 900], ['1h', '1 h', 3600], ['24h', '24 h', 86400],
  ['7d', '7 d', 7 * 86400], ['30d', '30 d', 30 * 86400]];

/** The history metrics the charts show (the route's names; a bare name takes every label). */
export const METRICS = 'cpu,cpu_core,memory,swap,load1,load5,load15,disk,net_rx,net_tx';

/**
 * A live sample's figures under the history route's series names. Network is
 * the total of every interface but loopback (net_rx, net_tx), as the live
 * message carries it.
 */
export function sampleFigures(s) {
  const cpu = s.cpu ?? {}, mem = s.memory ?? {}, net = s.network;
  const out = { cpu: cpu.usage_percent, memory: mem.percent, swap: mem.swap?.percent };
  (cpu.load_avg ?? []).slice(0, 3).forEach((v, i) => { out[`load${[1, 5, 15][i]}`] = v; });
  if (cpu.cores) for (const c of cpu.cores) out[`cpu_core:${c.cpu}`] = c.usage_percent;
  else (cpu.per_core ?? []).forEach((v, i) => { out[`cpu_core:${i}`] = v; });
  for (const d of s.disks ?? []) out[`disk:${d.mount}`] = d.percent;
  if (net) { out.net_rx = net.rx_bytes_per_sec; out.net_tx = net.tx_bytes_per_sec; }
  return out;
}

/**
 * A history answer as {key: points}. Per-interface network series are summed
 * into `net_rx` and `net_tx` (sums of averages; their min and max are not
 * sums, so left out); a bucket no interface has stays null, a gap.
 */
export function historyPoints(answer) {
  const out = {};
  const sums = {};
  for (const s of answer.series) {
    const rows = s.data;
    if (s.metric === 'net_rx' || s.metric === 'net_tx') {
      const acc = sums[s.metric] ??= rows.map(r => ({ x: r[0], y: null }));
      rows.forEach((r, i) => { if (r[1] !== null) acc[i].y = (acc[i].y ?? 0) + r[1]; });
    } else {
      out[s.name] = rows.map(r => ({ x: r[0], y: r[1], min: r[2], max: r[3] }));
    }
  }
  return Object.assign(out, sums);
}

/**
 * Folds `value` sampled at `t` (Unix ms) into `points`, whose buckets are
 * `step` ms wide: a bucket of live samples keeps their average, minimum and
 * maximum (`n` counts them); a new bucket is appended after a null point when
 * buckets were skipped (a gap stays a gap), and points older than `from` are
 * dropped. The history's bucket in progress keeps the history's figures until
 * its end (the route does not say how many samples they cover, so a live
 * sample cannot be weighed against them), unless it had none. A null value
 * only leaves the gap.
 */
export function fold(points, t, value, step, from) {
  const b = t - t % step;
  const last = points[points.length - 1];
  if (last && last.x === b) {
    if (value === null || value === undefined) return;
    if (last.y === null) Object.assign(last, { y: value, min: value, max: value, n: 1 });
    else if (last.n !== undefined) {
      last.n += 1;
      last.y += (value - last.y) / last.n;
      last.min = Math.min(last.min, value);
      last.max = Math.max(last.max, value);
    }
  } else if (!last || b > last.x) {
    if (last && b > last.x + step) points.push({ x: last.x + step, y: null });
    const v = value ?? null;
    points.push({ x: b, y: v, min: v, max: v, n: 1 });
  }
  let drop = 0;
  while (drop < points.length && points[drop].x < from) drop++;
  if (drop) points.splice(0, drop);
}

/**
 * A history answer's bucket width in ms, from its rows: `step_s` is whole
 * seconds, and a raw tier sampled every 0.25 s has steps like 3.75 s.
 */
export function stepMillis(answer) {
  const rows = answer.series.find(s => s.data.length > 1)?.data;
  return rows ? rows[1][0] - rows[0][0] : Math.max(1, answer.step_s) * 1000;
}

/**
 * Chart.js draws a line between neighbours only, so a point between two gaps
 * (or at an end beside one) would not show: `r` for such points, 0 for the
 * rest, as a dataset's `pointRadius` (plain 0, the cheap shared option, when
 * there is none).
 */
export function isolatedRadius(points, r) {
  let any = false;
  const radius = points.map((p, i) => {
    const alone = p.y !== null && (i === 0 || points[i - 1].y === null)
      && (i === points.length - 1 || points[i + 1].y === null);
    any ||= alone;
    return alone ? r : 0;
  });
  return any ? radius : 0;
}
