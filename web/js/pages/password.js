// Change password: POST /api/auth/change-password (with the CSRF header, as
// every write); the server sets a fresh cc_session cookie and revokes older
// tokens. A generated first-admin password must be changed before anything else.
import { api } from '../api.js';
import { h, fill, errorLine } from '../dom.js';

export function render(view, ctx) {
  const status = h('div', { 'aria-live': 'polite' });
  const current = h('input', { id: 'current-password', type: 'password', autocomplete: 'current-password', required: true });
  const next = h('input', { id: 'new-password', type: 'password', autocomplete: 'new-password', required: true, minlength: 12 });
  const form = h('form', { class: 'stack', id: 'password-form' },
    h('label', {}, 'Current password', current),
    h('label', {}, 'New password (at least 12 characters)', next),
    h('button', { type: 'submit' }, 'Change password'),
    status);
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    fill(status);
    try {
      await api('/api/auth/change-password', { method: 'POST',
        body: { current_password: current.value, new_password: next.value } });
      await ctx.signedIn();
    } catch (e) {
      fill(status, errorLine(e));
    }
  });
  fill(view, h('section', { class: 'panel' }, h('h1', {}, 'Change password'),
    ctx.me?.must_change_password ? h('p', { class: 'note' }, 'This account has a generated password: choose your own to continue.') : null,
    form));
  current.focus();
}
