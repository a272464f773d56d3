// The overview's chart-data rules (web/js/series.js), checked in the page's
// own engine: ui_check.py runs this as an async WebDriver script on a signed-in
// page. Calls its callback (the last argument) with the failed cases, [] when
// all pass.
const done = arguments[arguments.length - 1];
import('/ui/js/series.js').then(s => {
  const failures = [];
  const same = (name, got, want) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) failures.push({ name, got, want });
  };

  // Live samples fold into their bucket: average, min, max; a new bucket after a skipped one leaves a null point.
  const p = [];
  s.fold(p, 1000, 5, 1000, 0);
  s.fold(p, 1500, 7, 1000, 0);
  s.fold(p, 2100, 1, 1000, 0);
  s.fold(p, 5200, 3, 1000, 0);
  same('fold', p, [{ x: 1000, y: 6, min: 5, max: 7, n: 2 }, { x: 2000, y: 1, min: 1, max: 1, n: 1 },
    { x: 3000, y: null }, { x: 5000, y: 3, min: 3, max: 3, n: 1 }]);
  s.fold(p, 6000, 4, 1000, 3000);
  same('fold drops points before the range', p.map(q => q.x), [3000, 5000, 6000]);
  s.fold(p, 4000, 9, 1000, 3000);
  same('fold ignores a sample older than the newest bucket', p.length, 3);

  // The history's bucket in progress keeps its figures; an empty one takes live samples.
  const h = [{ x: 0, y: 10, min: 8, max: 12 }];
  s.fold(h, 500, 90, 1000, 0);
  same('history bucket kept', h, [{ x: 0, y: 10, min: 8, max: 12 }]);
  const e = [{ x: 0, y: null, min: null, max: null }];
  s.fold(e, 500, 90, 1000, 0);
  same('empty history bucket filled', e, [{ x: 0, y: 90, min: 90, max: 90, n: 1 }]);

  // A history answer: series by name, network interfaces summed (a gap stays null), the step from the rows.
  const answer = { step_s: 3, series: [
    { name: 'cpu', metric: 'cpu', data: [[0, 1, 0, 2], [3750, null, null, null]] },
    { name: 'net_rx:eth0', metric: 'net_rx', data: [[0, 1, 1, 1], [3750, null, null, null]] },
    { name: 'net_rx:eth1', metric: 'net_rx', data: [[0, 2, 2, 2], [3750, null, null, null]] },
  ] };
  same('historyPoints', s.historyPoints(answer), {
    cpu: [{ x: 0, y: 1, min: 0, max: 2 }, { x: 3750, y: null, min: null, max: null }],
    net_rx: [{ x: 0, y: 3 }, { x: 3750, y: null }],
  });
  same('stepMillis from the rows', s.stepMillis(answer), 3750);
  same('stepMillis without rows', s.stepMillis({ step_s: 120, series: [] }), 120000);

  // A live message's figures under the history's series names.
  same('sampleFigures', s.sampleFigures({
    cpu: { usage_percent: 3, cores: [{ cpu: 1, usage_percent: 2 }], load_avg: [1, 2, 3] },
    memory: { percent: 4, swap: { percent: 0 } }, disks: [{ mount: '/', percent: 9 }],
    network: { rx_bytes_per_sec: 5, tx_bytes_per_sec: 6 },
  }), { cpu: 3, memory: 4, swap: 0, load1: 1, load5: 2, load15: 3, 'cpu_core:1': 2, 'disk:/': 9, net_rx: 5, net_tx: 6 });

  // Dots only for points between gaps.
  const y = v => ({ y: v });
  same('isolatedRadius', s.isolatedRadius([y(1), y(null), y(2), y(null), y(3), y(4)], 2), [2, 0, 2, 0, 0, 0]);
  same('isolatedRadius none', s.isolatedRadius([y(1), y(2)], 2), 0);
  done(failures);
}, e => done([{ name: 'import', error: String(e) }]));
