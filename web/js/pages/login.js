// Sign-in: POST /api/auth/login sets the HttpOnly cc_session cookie; the
// token in the answer's body is dropped, never stored.
import { api } from '../api.js';
import { h, fill, errorLine } from '../dom.js';

export function render(view, ctx) {
  const status = h('div', { 'aria-live': 'polite' });
  const user = h('input', { name: 'username', id: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { name: 'password', id: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'stack', id: 'login-form' },
    h('label', {}, 'User name', user),
    h('label', {}, 'Password', pass),
    h('button', { type: 'submit' }, 'Sign in'),
    status);
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    fill(status);
    try {
      await api('/api/auth/login', { method: 'POST', body: { username: user.value, password: pass.value } });
      await ctx.signedIn();
    } catch (e) {
      fill(status, errorLine(e));
    }
  });
  fill(view, h('section', { class: 'panel' }, h('h1', {}, 'Sign in'), form));
  user.focus();
}
