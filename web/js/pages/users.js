// Users (admin): GET /api/auth/users, create (POST /api/auth/register),
// enable or disable and delete (PUT / DELETE /api/auth/users/{id}), each
// write with the CSRF header (api.js) and a confirmation where it destroys.
import { api } from '../api.js';
import { h, fill, table, row, errorLine } from '../dom.js';
import { localTime } from '../format.js';

export async function render(view, ctx) {
  if (ctx.me?.role !== 'admin') {
    fill(view, h('h1', {}, 'Users'), h('p', { class: 'empty' }, 'Only an admin can manage users.'));
    return;
  }
  const list = h('div', { id: 'user-list' }, 'loading…');
  const status = h('div', { 'aria-live': 'polite' });
  const username = h('input', { id: 'new-username', required: true, autocomplete: 'off' });
  const password = h('input', { id: 'new-user-password', type: 'password', required: true, minlength: 12, autocomplete: 'new-password' });
  const role = h('select', { id: 'new-role' }, ['viewer', 'operator', 'admin'].map(r => h('option', { value: r }, r)));
  const email = h('input', { id: 'new-email', type: 'email' });
  const form = h('form', { class: 'stack', id: 'user-form' },
    h('label', {}, 'User name', username), h('label', {}, 'Password (at least 12 characters)', password),
    h('label', {}, 'Role', role), h('label', {}, 'E-mail (optional)', email),
    h('button', { type: 'submit' }, 'Create user'), status);
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    fill(status);
    try {
      await api('/api/auth/register', { method: 'POST',
        body: { username: username.value, password: password.value, role: role.value, email: email.value || null } });
      form.reset();
      fill(status, h('p', { class: 'note' }, 'Created.'));
      load();
    } catch (e) { fill(status, errorLine(e)); }
  });
  fill(view, h('h1', {}, 'Users'), h('div', { class: 'split' },
    h('section', { class: 'panel' }, list), h('section', { class: 'panel' }, h('h2', {}, 'New user'), form)));

  async function act(fn) {
    fill(status);
    try { await fn(); load(); } catch (e) { fill(status, errorLine(e)); }
  }

  async function load() {
    try {
      const { data } = await api('/api/auth/users', { query: { limit: 1000 } });
      fill(list, table(['user', 'role', 'active', 'last sign-in', 'created', ''].map(label => ({ label })),
        data.users.map(u => {
          const toggle = h('button', { type: 'button' }, u.is_active ? 'Disable' : 'Enable');
          toggle.addEventListener('click', () => act(() => api(`/api/auth/users/${u.id}`, { method: 'PUT', body: { is_active: !u.is_active } })));
          const del = h('button', { type: 'button', class: 'danger', disabled: u.id === ctx.me.id }, 'Delete');
          del.addEventListener('click', () => {
            if (confirm(`Delete user ${u.username}?`)) act(() => api(`/api/auth/users/${u.id}`, { method: 'DELETE' }));
          });
          return row([u.username, u.role, u.is_active ? 'yes' : 'no', localTime(u.last_login), localTime(u.created_at),
            h('span', { class: 'controls' }, toggle, del)]);
        }), 'No users.'));
    } catch (e) { fill(list, errorLine(e)); }
  }
  await load();
}
