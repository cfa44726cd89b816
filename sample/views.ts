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

/** One signed-in device, as the Devices page shows it. */
export interface DeviceRow {
  sid: string;
  device: string | null;
  ip: string | null;
  lastSeenAt: Date;
  current: boolean;
}

export function renderDevicesPage(user: string, devices: DeviceRow[], notice: string | undefined): string {
  const rows = devices
    .map(
      (row) => `<tr class="device-row"${row.current ? ' data-current="true"' : ''}>
        <td class="device">${escapeHtml(row.device ?? 'Unknown device')}${row.current ? ' <strong class="current">(this device)</strong>' : ''}</td>
        <td>${escapeHtml(row.ip ?? '')}</td>
        <td><time datetime="${row.lastSeenAt.toISOString()}">${escapeHtml(row.lastSeenAt.toISOString().replace('T', ' ').slice(0, 16))} UTC</time></td>
        <td>${row.current ? '' : `<form method="post" action="/devices/${escapeHtml(row.sid)}/revoke"><button type="submit">Sign out</button></form>`}</td>
      </tr>`
    )
    .join('\n');
  return layout(
    'Devices',
    `<h1>Where ${escapeHtml(user)} is signed in</h1>
  ${notice === undefined ? '' : `<p id="notice" role="status">${escapeHtml(notice)}</p>`}
  <table>
    <thead><tr><th>Device</th><th>IP</th><th>Last active</th><th></th></tr></thead>
    <tbody>
      ${rows}
    </tbody>
  </table>
  <p><small>Last active is updated when the session is written, at least every half hour of use.</small></p>
  <form method="post" action="/devices/revoke-others"><button type="submit">Sign out of all other devices</button></form>
  <p><a href="/">Back</a></p>`
  );
}

export function renderSignedOut(): string {
  return layout('Devices', '<p id="signed-out">You are not signed in. <a href="/">Sign in</a></p>');
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(title)}</title>
  <style>
    body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
    table { border-collapse: collapse; width: 100%; }
    th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid #ddd; }
    #notice { background: #e8f4e8; border: 1px solid #9c9; border-radius: 6px; padding: 0.5rem 1rem; }
    form { margin: 0.5rem 0; }
  </style>
</head>
<body>
  ${body}
</body>
</html>
`;
}

export function renderPage({ user, counter, role, notice }: PageModel): string {
  const you = user
    ? `<p id="user">Logged in as <strong>${escapeHtml(user)}</strong></p>
      <p><a href="/devices">Devices</a> <small>(where you are signed in)</small></p>
      <form method="post" action="/logout"><button type="submit">Log out</button></form>`
    : `<form method="post" action="/login">
        <label for="name">Name</label>
        <input id="name" name="name" required maxlength="40" autocomplete="username">
        <label><input type="checkbox" name="remember"> Remember me</label>
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
