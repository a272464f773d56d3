// The one way the page talks to the API: same-origin fetch with the
// cc_session cookie (HttpOnly; the page never sees or stores a token), and
// X-Requested-With on every state-changing request, which the server requires
// of cookie-authenticated writes (its CSRF defence).

/** An API answer outside 2xx: HTTP status plus the body's error code and message. */
export class APIError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

/**
 * Calls `path` (with `query`, an object of parameters; empty values left out).
 * Resolves to { data, headers }; rejects with APIError (status 0 when the
 * network failed).
 */
export async function api(path, { method = 'GET', body, query } = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') params.set(k, v);
  }
  const qs = params.toString();
  const url = qs ? `${path}?${qs}` : path;
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-Requested-With'] = 'XMLHttpRequest';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new APIError(0, 'network', `Network error: ${e.message}`);
  }
  let data = null;
  try { data = await res.json(); } catch { /* an empty or non-JSON body */ }
  if (!res.ok) {
    const err = data?.error ?? {};
    throw new APIError(res.status, err.code ?? `http_${res.status}`, err.message ?? res.statusText, err.request_id);
  }
  return { data, headers: res.headers };
}
