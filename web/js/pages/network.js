// Network: interfaces with rates (GET /api/system/network), listening ports
// (GET /api/system/ports) and connections with filters (GET
// /api/system/connections, which needs a signed-in viewer: the cookie).
import { api } from '../api.js';
import { h, fill, table, row, field, errorLine } from '../dom.js';
import { bytes, rate, snapshotAge } from '../format.js';

const protos = ['all', 'tcp', 'tcp6', 'udp', 'udp6'];
const connStates = ['', 'ESTABLISHED', 'LISTEN', 'TIME_WAIT', 'CLOSE_WAIT', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'NONE'];

export async function render(view) {
  const ifaces = h('div', { id: 'interfaces' }, 'loading…');
  const ifMeta = h('p', { class: 'meta' });
  const ports = h('div', { id: 'ports' }, 'loading…');
  const portMeta = h('p', { class: 'meta' });
  const conns = h('div', { id: 'connections' }, 'loading…');
  const connMeta = h('p', { class: 'meta' });

  const proto = h('select', { id: 'conn-proto' }, protos.map(p => h('option', { value: p }, p)));
  const state = h('select', { id: 'conn-state' }, connStates.map(s => h('option', { value: s }, s || 'any')));
  const port = h('input', { id: 'conn-port', type: 'number', min: 0, max: 65535, placeholder: 'local or remote' });
  const filters = h('form', { class: 'controls' }, field('Protocol', proto), field('State', state), field('Port', port),
    h('button', { type: 'submit' }, 'Apply'));
  filters.addEventListener('submit', ev => { ev.preventDefault(); loadConnections(); });

  fill(view, h('h1', {}, 'Network'),
    h('section', { class: 'panel' }, h('h2', {}, 'Interfaces'), ifMeta, ifaces),
    h('div', { class: 'grid' },
      h('section', { class: 'panel' }, h('h2', {}, 'Listening ports'), portMeta, ports),
      h('section', { class: 'panel' }, h('h2', {}, 'Connections'), filters, connMeta, conns)));

  async function loadInterfaces() {
    try {
      const { data } = await api('/api/system/network');
      fill(ifaces, table(
        ['interface', 'state', 'addresses', 'in', 'out', 'received', 'sent', 'errors in/out', 'MTU']
          .map((label, i) => ({ label, num: i >= 3 })),
        data.interfaces.map(i => row([i.name, i.oper_state ?? (i.is_up ? 'up' : 'down'),
          i.addresses.map(a => `${a.address}/${a.prefix}`).join(', ') || '—',
          { text: rate(i.rx_bytes_per_sec), num: true }, { text: rate(i.tx_bytes_per_sec), num: true },
          { text: bytes(i.rx_bytes), num: true }, { text: bytes(i.tx_bytes), num: true },
          { text: `${i.rx_errors ?? '—'} / ${i.tx_errors ?? '—'}`, num: true },
          { text: i.mtu === null ? '—' : `${i.mtu} B`, num: true }])),
        'No interfaces.'));
      const tcp = Object.entries(data.connections_summary.tcp).map(([k, v]) => `${k} ${v}`).join(', ');
      fill(ifMeta, `TCP sockets: ${tcp || 'none'}; UDP sockets: ${data.connections_summary.udp}; ${snapshotAge(data.snapshot)}`);
    } catch (e) { fill(ifaces, errorLine(e)); }
  }

  async function loadPorts() {
    try {
      const { data } = await api('/api/system/ports', { query: { limit: 200 } });
      fill(ports, table([{ label: 'port', num: true }, { label: 'protocol' }, { label: 'address' }, { label: 'process' }, { label: 'user' }],
        data.ports.map(p => row([{ text: p.port, num: true }, p.proto, p.address,
          (p.processes ?? []).filter(Boolean).join(', ') || p.process_name || '—', p.user ?? '—'])),
        'Nothing listens.'));
      fill(portMeta, `${data.count} listening endpoints; ${snapshotAge(data.snapshot)}`);
    } catch (e) { fill(ports, errorLine(e)); }
  }

  async function loadConnections() {
    try {
      const { data } = await api('/api/system/connections', { query: { proto: proto.value, state: state.value, port: port.value, limit: 200 } });
      fill(conns, table(['protocol', 'local', 'remote', 'state', 'process', 'user'].map(label => ({ label })),
        data.connections.map(c => row([c.proto, `${c.local_address}:${c.local_port}`, `${c.remote_address}:${c.remote_port}`,
          c.state, c.process_name ? `${c.process_name} (${c.pid})` : '—', c.user])),
        'No connection matches these filters.'));
      fill(connMeta, `${data.count} matching of ${data.total} sockets (first 200 shown); ${snapshotAge(data.snapshot)}`);
    } catch (e) { fill(conns, errorLine(e)); }
  }

  await Promise.all([loadInterfaces(), loadPorts(), loadConnections()]);
  const timer = setInterval(loadInterfaces, 5000);
  return () => clearInterval(timer);
}
