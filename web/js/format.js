// Numbers with their units, and times in the browser's local zone with its
// offset (the API sends UTC, RFC 3339).

const pad = n => String(n).padStart(2, '0');

/** "2026-11-29 19:04:05 +01:00" for an ISO string, epoch milliseconds or a Date. */
export function localTime(t) {
  if (t === null || t === undefined) return '—';
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) return '—';
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** "19:04:05" local, for chart axes. */
export function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "11-29 19:04" local, for chart axes over days. */
export function dayClock(ms) {
  const d = new Date(ms);
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A whole span of seconds in its largest exact unit: "1 s", "2 min", "6 h", "1 d". */
export function span(s) {
  for (const [unit, n] of [['d', 86400], ['h', 3600], ['min', 60]]) if (s % n === 0) return `${s / n} ${unit}`;
  return `${s} s`;
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Bytes in binary units: "1.5 GiB". */
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  let i = 0;
  let v = Number(n);
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Bytes per second: "12.0 KiB/s". */
export function rate(n) {
  return n === null || n === undefined ? '—' : `${bytes(n)}/s`;
}

/** "42.1 %". */
export function percent(n, digits = 1) {
  return n === null || n === undefined ? '—' : `${Number(n).toFixed(digits)} %`;
}

/** Seconds as "3 d 4 h", "5 h 2 min", "4 min 10 s" or "12 s". */
export function duration(s) {
  if (s === null || s === undefined) return '—';
  s = Math.floor(s);
  const d = Math.floor(s / 86400), hr = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return `${d} d ${hr} h`;
  if (hr) return `${hr} h ${m} min`;
  if (m) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

/** A snapshot's age line: "snapshot 0.4 s old, taken 2026-… +00:00"; the age is this
 * browser's clock minus `taken_at_ms` (answers carry no age: nginx sends them as files). */
export function snapshotAge(snapshot) {
  if (!snapshot) return '';
  const age = Math.max(0, Date.now() - snapshot.taken_at_ms);
  return `snapshot ${(age / 1000).toFixed(1)} s old, taken ${localTime(snapshot.taken_at)}`;
}
