/** What the page shows; every string in it is escaped before it goes into the HTML. */
export interface PageModel {
  user: string | undefined;
  counter: number;
  role: string | undefined;
  notice: string | undefined;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

export function renderPage({ user, counter, role, notice }: PageModel): string {
  const you = user
    ? `<p id="user">Logged in as <strong>${escapeHtml(user)}</strong></p>
      <form method="post" action="/logout"><button type="submit">Log out</button></form>`
    : `<form method="post" action="/login">
        <label for="name">Name</label>
        <input id="name" name="name" required maxlength="40" autocomplete="username">
        <button type="submit">Log in</button>
      </form>`;

  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>EzSession sample</title>
  <style>
    body { font: 16px/1.5 system-ui, sans-serif; max-width: 34rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
    section { border: 1px solid #ddd; border-radius: 6px; padding: 0.5rem 1rem; margin: 1rem 0; }
    h2 { font-size: 1rem; margin: 0.5rem 0; }
    #notice { background: #e8f4e8; border: 1px solid #9c9; border-radius: 6px; padding: 0.5rem 1rem; }
    form { display: flex; gap: 0.5rem; align-items: center; margin: 0.5rem 0; }
    code { background: #f4f4f4; padding: 0 0.25rem; }
  </style>
</head>
<body>
  <h1>EzSession sample</h1>
  ${notice === undefined ? '' : `<p id="notice" role="status">${escapeHtml(notice)}</p>`}
  <section>
    <h2>You</h2>
    ${you}
  </section>
  <section>
    <h2>Counter</h2>
    <p>Counter: <strong id="counter">${counter}</strong></p>
    <form method="post" action="/counter"><button type="submit">Count</button></form>
  </section>
  <section>
    <h2>Token claim</h2>
    <p>Role: <strong id="role">${role === undefined ? 'none' : escapeHtml(role)}</strong>
      <small>(read from the token, no storage needed)</small></p>
  </section>
  <p><small>JSON API: <code>POST /api/login</code> with <code>{"name": "..."}</code>, then
    <code>GET /api/me</code> with <code>Authorization: Bearer &lt;x-session-token&gt;</code>.</small></p>
</body>
</html>
`;
}
