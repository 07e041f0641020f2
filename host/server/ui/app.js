// Portcullis admin console: one page, every view a `#/…` fragment, every action a call of
// the same /v1 API the CLI uses. The session lives in an HttpOnly cookie the page cannot
// read; the page keeps only the session's CSRF token, in memory. Everything shown is put in
// with textContent (never as HTML), so nothing a user or a plugin wrote can run here.

const session = { csrf: null, me: null, tail: null, flash: null };
const main = document.getElementById('main');

// ---------------------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, code, message, reasons) {
    super(message);
    this.status = status;
    this.code = code;
    this.reasons = reasons || [];
  }
}

function headersFor(method, extra) {
  const headers = Object.assign({}, extra);
  if (method !== 'GET' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  return headers;
}

async function answerOf(res) {
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const error = new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText, e.reasons);
    // The CSV import's 422 is a per-row report instead of an error body.
    if (res.status === 422 && data && Array.isArray(data.errors)) {
      error.report = data;
      error.message = `${data.errors.length} row(s) refused`;
    }
    throw error;
  }
  return data;
}

async function api(method, path, body, contentType) {
  const extra = {};
  let payload;
  if (body !== undefined) {
    extra['Content-Type'] = contentType || 'application/json';
    payload = contentType ? body : JSON.stringify(body);
  }
  const res = await fetch(path, {
    method, body: payload, headers: headersFor(method, extra), credentials: 'same-origin', cache: 'no-store',
  });
  try {
    return await answerOf(res);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && !path.startsWith('/ui/')) sessionEnded();
    throw e;
  }
}

// Uploads go through XMLHttpRequest: fetch cannot report upload progress.
function upload(path, file, contentType, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    for (const [k, v] of Object.entries(headersFor('POST', { 'Content-Type': contentType }))) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (ev) => { if (ev.lengthComputable) onProgress(ev.loaded, ev.total, false); });
    xhr.upload.addEventListener('load', () => onProgress(file.size, file.size, true));
    xhr.addEventListener('load', () => {
      answerOf(new Response(xhr.status === 204 ? null : xhr.responseText, { status: xhr.status, statusText: xhr.statusText }))
        .then(resolve, reject);
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', 'the upload did not reach the server')));
    xhr.send(file);
  });
}

const enc = encodeURIComponent;
const qs = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
};

// ---------------------------------------------------------------------------- DOM helpers

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let ids = 0;
const nextId = () => `f${++ids}`;

function field(label, control, hint) {
  if (!control.id) control.id = nextId();
  const wrap = h('div', { class: 'field' }, h('label', { for: control.id }, label), control);
  if (hint) {
    const hintId = `${control.id}-hint`;
    control.setAttribute('aria-describedby', hintId);
    wrap.append(h('span', { class: 'hint', id: hintId }, hint));
  }
  return wrap;
}

function checkbox(label, name, checked) {
  const id = nextId();
  return h('div', { class: 'check' }, h('input', { type: 'checkbox', id, name, checked }), h('label', { for: id }, label));
}

function choice(name, options, selected) {
  return h('select', { name }, options.map(([value, text]) => h('option', { value, selected: value === selected }, text)));
}

function table(caption, headings, rows, empty) {
  if (!rows.length) return h('p', { class: 'hint' }, empty || 'Nothing here yet.');
  // A frame that scrolls sideways on a narrow screen: focusable, so the keyboard scrolls it.
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headings.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c) : h('td', {}, c))))))));
}

function tag(text, kind) { return h('span', { class: `tag ${kind}` }, text); }
const when = (t) => (t ? new Date(t).toLocaleString() : '—');
const dash = (v) => (v === null || v === undefined || v === '' ? '—' : v);

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function say(text) {
  const status = document.getElementById('status');
  document.getElementById('alert').hidden = true;
  status.textContent = text;
  status.hidden = false;
}

function complain(e) {
  const alert = document.getElementById('alert');
  document.getElementById('status').hidden = true;
  let text;
  if (e instanceof ApiError) {
    if (e.status === 403 && e.code === 'forbidden') text = `Not allowed: ${e.message}`;
    else text = e.message;
    if (e.reasons && e.reasons.length) text += ` (${e.reasons.join('; ')})`;
  } else {
    text = `Something went wrong: ${e && e.message ? e.message : e}`;
  }
  alert.textContent = text;
  alert.hidden = false;
}

function clearMessages() {
  document.getElementById('status').hidden = true;
  document.getElementById('alert').hidden = true;
}

// A form whose submit runs `action(data, form)`; errors land in the alert region and the
// submit button is off while it runs.
function form(label, action, ...children) {
  const f = h('form', { class: 'box', 'aria-label': label, novalidate: false }, children);
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const buttons = f.querySelectorAll('button[type="submit"]');
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await action(new FormData(f), f);
    } catch (e) {
      complain(e);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return f;
}

function submit(text, cls) { return h('div', { class: 'actions' }, h('button', { type: 'submit', class: cls }, text)); }

function act(text, label, action, cls) {
  const b = h('button', { type: 'button', class: cls || 'secondary', 'aria-label': label });
  b.textContent = text;
  b.addEventListener('click', async () => {
    b.disabled = true;
    try { await action(); } catch (e) { complain(e); } finally { b.disabled = false; }
  });
  return b;
}

function confirmDialog(text, okLabel) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  dialog.showModal();
  document.getElementById('confirm-cancel').focus();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
}

// A secret shown once: read-only field, a copy button, and the warning.
function secretPanel(title, secret, note) {
  const id = nextId();
  const input = h('input', { type: 'text', id, readonly: true, value: secret, class: 'mono', autocomplete: 'off', spellcheck: 'false' });
  const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy');
  copy.addEventListener('click', async () => {
    input.select();
    try { await navigator.clipboard.writeText(secret); say('Copied to the clipboard.'); } catch { say('Selected: press Ctrl+C to copy.'); }
  });
  return h('section', { class: 'panel', 'aria-labelledby': `${id}-t` },
    h('h3', { id: `${id}-t` }, title),
    h('p', {}, note || 'Copy it now: it is shown only this once and cannot be read back.'),
    h('div', { class: 'secret' }, h('label', { for: id, class: 'hint' }, 'Secret'), input, copy));
}

function heading(text) { return h('h1', { tabindex: '-1' }, text); }

function splitList(text) { return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean); }

function parseAttributes(text) {
  const out = {};
  for (const part of text.split(/[\n,]+/).map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    if (i < 1) throw new ApiError(0, 'invalid_request', `attributes: "${part}" is not key=value`);
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

function parseSettings(text) {
  if (!text.trim()) return {};
  let value;
  try { value = JSON.parse(text); } catch (e) { throw new ApiError(0, 'invalid_request', `settings: not JSON (${e.message})`); }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ApiError(0, 'invalid_request', 'settings: must be a JSON object');
  return value;
}

// Load a view's data; a refusal or failure is shown in place of that part only.
async function part(container, load) {
  try {
    await load();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) throw e;
    container.append(h('p', { class: 'alert', role: 'note' },
      e instanceof ApiError && e.status === 403 ? `Not allowed: ${e.message}` : `Could not load: ${e.message}`));
  }
}

// ---------------------------------------------------------------------------- sign in

function sessionEnded() {
  session.me = null;
  session.csrf = null;
  session.flash = 'Your session has ended: sign in again.';
  showChrome(false);
  if (location.hash !== '#/login') { session.after = location.hash; location.hash = '#/login'; } else render();
}

function showChrome(signedIn) {
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('who').hidden = !signedIn;
  if (signedIn) {
    const me = session.me;
    document.getElementById('who-name').textContent = `${me.username} (${me.account.name})`;
  }
}

async function loadSession() {
  try {
    const s = await api('GET', '/ui/session');
    session.csrf = s.csrf_token;
    session.me = s.whoami;
    showChrome(true);
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return false;
    throw e;
  }
}

function viewLogin() {
  const out = [heading('Sign in')];
  // Over plain HTTP on another name than this machine's, the browser drops the session's
  // Secure cookie: say so before a sign-in that would seem to do nothing.
  if (location.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(location.hostname)) {
    out.push(h('p', { class: 'alert', role: 'note' },
      'This page came over plain HTTP: your browser will not keep the console\'s secure session cookie, so signing in cannot last. Open it over HTTPS (or, on a trusted network only, set [console] secure_cookie = false).'));
  }
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const change = h('div', { hidden: true },
    h('p', { id: 'change-note' }, 'Your password is temporary: choose a new one (at least 8 characters).'),
    field('New password', h('input', { type: 'password', name: 'new_password', autocomplete: 'new-password', minlength: '8' })),
    field('New password again', h('input', { type: 'password', name: 'new_password_again', autocomplete: 'new-password', minlength: '8' })));
  const f = form('Sign in', async (data) => {
    const body = { username: data.get('username'), password: data.get('password') };
    if (!change.hidden) {
      if (data.get('new_password') !== data.get('new_password_again')) throw new ApiError(0, 'invalid_request', 'The two new passwords differ.');
      body.new_password = data.get('new_password');
    }
    try {
      const s = await api('POST', '/ui/login', body);
      session.csrf = s.csrf_token;
      session.me = s.whoami;
    } catch (e) {
      if (e instanceof ApiError && e.code === 'password_change_required') {
        change.hidden = false;
        say('Your password is temporary: choose a new one to continue.');
        change.querySelector('input').focus();
        return;
      }
      throw e;
    }
    showChrome(true);
    session.flash = body.new_password ? 'Password changed. Welcome.' : null;
    const to = session.after && session.after !== '#/login' ? session.after : '#/';
    session.after = null;
    location.hash = to;
  }, field('Username', username), field('Password', password), change, submit('Sign in'));
  f.classList.add('signin');
  out.push(f);
  return out;
}

// ---------------------------------------------------------------------------- overview

async function viewOverview() {
  const out = [heading('Overview')];
  const me = session.me;
  out.push(facts([
    ['Signed in as', `${me.username} in ${me.account.name} (${me.account.type} account)`],
    ['Roles', me.roles.length ? me.roles.join(', ') : '—'],
  ]));
  const server = h('section', { 'aria-labelledby': 'ov-server' }, h('h2', { id: 'ov-server' }, 'Server'));
  out.push(server);
  await part(server, async () => {
    const health = await api('GET', '/health');
    let ready;
    try { ready = await api('GET', '/ready'); } catch (e) { ready = { status: 'not ready', store: e.message }; }
    server.append(facts([
      ['Version', health.version],
      ['Readiness', ready.status],
      ['Store', `${dash(ready.store)}${ready.schema_version ? ` (schema ${ready.schema_version})` : ''}`],
      ['Change listener', dash(ready.change_listener)],
    ]));
  });
  const authz = h('section', { 'aria-labelledby': 'ov-authz' }, h('h2', { id: 'ov-authz' }, 'Authorizer'));
  out.push(authz);
  await part(authz, async () => {
    const a = await api('GET', '/v1/authorizer');
    authz.append(facts([
      ['Active plugin', `${a.active.name} (${a.active.id})`],
      ['Shadow plugin', a.shadow ? `${a.shadow.name} (${a.shadow.id})` : 'none'],
      ['Decisions', `${a.counts.allow} allowed, ${a.counts.deny} denied`],
    ]));
  });
  await part(authz, async () => {
    const p = await api('GET', '/v1/policies');
    authz.append(facts([['Application policies', p.items.length ? p.items.map((x) => x.name).join(', ') : 'none']]));
  });
  const counts = h('section', { 'aria-labelledby': 'ov-counts' }, h('h2', { id: 'ov-counts' }, 'Counts'));
  out.push(counts);
  const cards = h('div', { class: 'cards' });
  counts.append(cards);
  const count = async (label, path) => {
    const page = await api('GET', `${path}?limit=1000`);
    cards.append(h('div', { class: 'card' }, h('div', { class: 'number' }, `${page.items.length}${page.next ? '+' : ''}`), h('div', {}, label)));
  };
  await part(counts, () => count('accounts', '/v1/accounts'));
  await part(counts, () => count('users', '/v1/users'));
  return out;
}

// ---------------------------------------------------------------------------- accounts

async function viewAccounts() {
  const out = [heading('Accounts')];
  const list = h('section', { 'aria-labelledby': 'acc-list' }, h('h2', { id: 'acc-list' }, 'All accounts'));
  out.push(list);
  await part(list, async () => {
    const page = await api('GET', '/v1/accounts?limit=1000');
    list.append(h('p', { class: 'hint' }, 'Disabling an account makes every key of its users fail at once; enabling it brings them back. Only a disabled account can be deleted, and deleting it deletes its users and their keys.'));
    list.append(table('Accounts', ['Name', 'Type', 'State', 'Email', 'Created', 'Actions'], page.items.map((a) => [
      h('a', { href: `#/accounts/${enc(a.name)}` }, a.name), a.type,
      tag(a.state, a.state === 'enabled' ? 'ok' : 'bad'), dash(a.email), when(a.created_at),
      h('div', { class: 'actions' }, accountActions(a)),
    ])));
  });
  out.push(h('h2', {}, 'Create an account'));
  out.push(form('Create an account', async (data) => {
    const body = { name: data.get('name'), type: data.get('type') };
    if (data.get('email')) body.email = data.get('email');
    const a = await api('POST', '/v1/accounts', body);
    session.flash = `Account ${a.name} created.`;
    render();
  }, h('div', { class: 'grid' },
    field('Name', h('input', { type: 'text', name: 'name', required: true, pattern: '[a-z0-9][a-z0-9._\\-]{0,62}', autocapitalize: 'none' }), 'Lower case letters, digits, . _ -'),
    field('Email (optional)', h('input', { type: 'email', name: 'email' })),
    field('Type', choice('type', [['user', 'user — its members act on themselves'], ['service', 'service — trusted by the default rules'], ['admin', 'admin — full control']], 'user'))),
  submit('Create account')));
  return out;
}

function accountActions(a) {
  const buttons = [];
  if (a.state === 'enabled') {
    buttons.push(act('Disable', `Disable account ${a.name}`, async () => {
      if (!await confirmDialog(`Disable ${a.name}? Every key of its users stops working until it is enabled again.`, 'Disable')) return;
      await api('PUT', `/v1/accounts/${enc(a.name)}/state`, { state: 'disabled' });
      session.flash = `Account ${a.name} disabled.`;
      render();
    }));
  } else if (a.state === 'disabled') {
    buttons.push(act('Enable', `Enable account ${a.name}`, async () => {
      await api('PUT', `/v1/accounts/${enc(a.name)}/state`, { state: 'enabled' });
      session.flash = `Account ${a.name} enabled.`;
      render();
    }));
  }
  if (a.state !== 'deleting') {
    buttons.push(act('Delete', `Delete account ${a.name}`, async () => {
      if (a.state === 'enabled') {
        complain(new ApiError(409, 'invalid_state_transition', `Disable ${a.name} first: only a disabled account can be deleted (so its users have already lost access when their data goes).`));
        return;
      }
      if (!await confirmDialog(`Delete ${a.name}, its users and all their keys? This cannot be undone.`, 'Delete account')) return;
      await api('DELETE', `/v1/accounts/${enc(a.name)}`);
      session.flash = `Account ${a.name} is being deleted.`;
      render();
    }, 'danger'));
  }
  return buttons;
}

async function viewAccount(name) {
  const out = [heading(`Account ${name}`)];
  const about = h('section', {});
  out.push(about);
  await part(about, async () => {
    const a = await api('GET', `/v1/accounts/${enc(name)}`);
    about.append(facts([['Type', a.type], ['State', a.state], ['Email', dash(a.email)], ['Created', when(a.created_at)]]),
      h('div', { class: 'actions' }, accountActions(a)));
  });
  out.push(h('h2', {}, 'Users'));
  const users = h('section', {});
  out.push(users);
  await part(users, async () => {
    const page = await api('GET', `/v1/accounts/${enc(name)}/users?limit=1000`);
    users.append(userTable(page.items, `Users in ${name}`));
  });
  out.push(h('h2', {}, `Create a user in ${name}`));
  out.push(createUserForm(name));
  return out;
}

// ---------------------------------------------------------------------------- users

function userStatus(u) {
  const tags = [];
  if (u.locked) tags.push(tag('locked', 'bad'));
  if (u.must_change_password) tags.push(tag('temporary password', 'neutral'));
  if (u.access_token_status) tags.push(tag(`token ${u.access_token_status}`, u.access_token_status === 'active' ? 'ok' : 'neutral'));
  return tags.length ? tags : '—';
}

function userTable(items, caption) {
  return table(caption, ['Username', 'Account', 'Email', 'Roles', 'Last sign-in', 'Status'], items.map((u) => [
    h('a', { href: `#/users/${enc(u.username)}` }, u.username), u.account, dash(u.email),
    u.roles.length ? u.roles.join(', ') : '—', when(u.last_login_at), userStatus(u),
  ]), 'No users match.');
}

function createUserForm(account) {
  const accountField = account
    ? h('input', { type: 'hidden', name: 'account', value: account })
    : field('Account', h('input', { type: 'text', name: 'account', required: true, autocapitalize: 'none', value: session.me.default_account }));
  return form('Create a user', async (data, f) => {
    const body = { username: data.get('username') };
    if (data.get('password')) {
      body.password = data.get('password');
      body.temporary_password = data.get('temporary') === 'on';
    }
    if (data.get('email')) body.email = data.get('email');
    const roles = splitList(data.get('roles') || '');
    if (roles.length) body.roles = roles;
    const attrs = parseAttributes(data.get('attributes') || '');
    if (Object.keys(attrs).length) body.attributes = attrs;
    const u = await api('POST', `/v1/accounts/${enc(data.get('account'))}/users`, body);
    f.reset();
    session.flash = `User ${u.username} created in ${u.account}${u.must_change_password ? '; they choose their own password at first sign-in' : ''}.`;
    render();
  }, h('div', { class: 'grid' },
    accountField,
    field('Username', h('input', { type: 'text', name: 'username', required: true, autocapitalize: 'none' })),
    field('Password (optional)', h('input', { type: 'password', name: 'password', autocomplete: 'new-password', minlength: '8' }), 'None: the user signs in with keys, tokens or single sign-on only'),
    field('Email (optional)', h('input', { type: 'email', name: 'email' })),
    field('Roles (optional)', h('input', { type: 'text', name: 'roles' }), 'Separated by commas, e.g. acme:read:*'),
    field('Attributes (optional)', h('input', { type: 'text', name: 'attributes' }), 'key=value, separated by commas')),
  checkbox('Temporary password: the user must change it at first sign-in', 'temporary', true),
  submit('Create user'));
}

async function viewUsers() {
  const out = [heading('Users')];
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const filters = {
    account: params.get('account') || '', text: params.get('q') || '', status: params.get('status') || '', after: params.get('after') || '',
  };
  const go = (changes) => {
    const next = Object.assign({}, filters, changes);
    location.hash = `#/users${qs({ account: next.account, q: next.text, status: next.status, after: next.after })}`;
  };
  out.push(form('Filter users', async (data) => {
    go({ account: data.get('account').trim(), text: data.get('q').trim(), status: data.get('status'), after: '' });
  }, h('div', { class: 'grid' },
    field('Account', h('input', { type: 'text', name: 'account', value: filters.account, autocapitalize: 'none' }), 'Empty: every account you may see'),
    field('Name or email contains', h('input', { type: 'search', name: 'q', value: filters.text })),
    field('Status', choice('status', [['', 'any'], ['locked', 'locked'], ['temporary', 'temporary password'], ['requested', 'access token requested'], ['active', 'access token active']], filters.status))),
  submit('Apply filters', 'secondary')));
  const list = h('section', { 'aria-label': 'Users found' });
  out.push(list);
  await part(list, async () => {
    const base = filters.account ? `/v1/accounts/${enc(filters.account)}/users` : '/v1/users';
    const page = await api('GET', `${base}${qs({ limit: 100, after: filters.after })}`);
    const text = filters.text.toLowerCase();
    const items = page.items.filter((u) => (!text || u.username.includes(text) || (u.email || '').toLowerCase().includes(text))
      && (!filters.status
        || (filters.status === 'locked' && u.locked)
        || (filters.status === 'temporary' && u.must_change_password)
        || u.access_token_status === filters.status));
    list.append(userTable(items, 'Users'));
    const pager = h('div', { class: 'pager' });
    if (filters.after) pager.append(act('First page', 'First page of users', async () => go({ after: '' })));
    if (page.next) pager.append(act('Next page', 'Next page of users', async () => go({ after: page.next })));
    pager.append(h('span', { class: 'hint' }, `${items.length} shown of ${page.items.length} on this page`));
    list.append(pager);
  });
  out.push(h('h2', {}, 'Create a user'));
  out.push(createUserForm(null));
  return out;
}

async function viewUser(username) {
  const out = [heading(`User ${username}`)];
  const self = username === session.me.username;
  let u;
  const about = h('section', {});
  out.push(about);
  await part(about, async () => {
    u = await api('GET', `/v1/users/${enc(username)}`);
    about.append(facts([
      ['Account', h('a', { href: `#/accounts/${enc(u.account)}` }, u.account)],
      ['Email', dash(u.email)],
      ['Roles', u.roles.length ? u.roles.join(', ') : '—'],
      ['Attributes', Object.keys(u.attributes).length ? Object.entries(u.attributes).map(([k, v]) => `${k}=${v}`).join(', ') : '—'],
      ['Created', when(u.created_at)],
      ['Last sign-in', when(u.last_login_at)],
      ['Password', u.must_change_password ? 'temporary (must be changed at next sign-in)' : 'set or none'],
      ['Locked', u.locked ? `yes, until ${when(u.locked_until)}` : 'no'],
      ['Live keys', String(u.key_count)],
      ['Access token', dash(u.access_token_status)],
      ['Single sign-on', u.sso ? `${u.sso.issuer} / ${u.sso.subject}` : '—'],
    ]));
    const actions = h('div', { class: 'actions' });
    if (u.locked) {
      actions.append(act('Unlock', `Unlock ${username}`, async () => {
        await api('PATCH', `/v1/users/${enc(username)}`, { unlock: true });
        session.flash = `${username} unlocked.`;
        render();
      }));
    }
    if (!self) {
      actions.append(act('Delete user', `Delete user ${username}`, async () => {
        if (!await confirmDialog(`Delete ${username} and every key of it? Their next request is refused. This cannot be undone.`, 'Delete user')) return;
        await api('DELETE', `/v1/users/${enc(username)}`);
        session.flash = `User ${username} deleted.`;
        location.hash = '#/users';
      }, 'danger'));
    }
    about.append(actions);
  });
  if (!u) return out;

  out.push(h('h2', {}, 'Edit'));
  out.push(form(`Edit ${username}`, async (data) => {
    const body = {
      email: data.get('email') ? data.get('email') : null,
      roles: splitList(data.get('roles') || ''),
      attributes: parseAttributes(data.get('attributes') || ''),
    };
    await api('PATCH', `/v1/users/${enc(username)}`, body);
    session.flash = `${username} updated.`;
    render();
  }, h('div', { class: 'grid' },
    field('Email', h('input', { type: 'email', name: 'email', value: u.email || '' })),
    field('Roles', h('input', { type: 'text', name: 'roles', value: u.roles.join(', ') }), 'Separated by commas'),
    field('Attributes', h('input', { type: 'text', name: 'attributes', value: Object.entries(u.attributes).map(([k, v]) => `${k}=${v}`).join(', ') }), 'key=value, separated by commas')),
  submit('Save changes', 'secondary')));

  out.push(h('h2', {}, self ? 'Change your password' : 'Reset the password'));
  out.push(form(self ? 'Change your password' : `Reset the password of ${username}`, async (data, f) => {
    const body = { password: data.get('password') };
    if (self) body.current_password = data.get('current_password');
    else body.temporary = data.get('temporary') === 'on';
    const set = await api('PUT', `/v1/users/${enc(username)}/password`, body);
    f.reset();
    session.flash = `Password set; ${set.keys_revoked} key(s) revoked${set.must_change_password ? '; it must be changed at next sign-in' : ''}.`;
    render();
  }, h('div', { class: 'grid' },
    self ? field('Current password', h('input', { type: 'password', name: 'current_password', autocomplete: 'current-password', required: true })) : null,
    field('New password', h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: true, minlength: '8' }))),
  self ? null : checkbox('Temporary: the user must change it at next sign-in', 'temporary', true),
  h('p', { class: 'hint' }, self ? 'Your other keys are revoked; this session stays.' : 'Every key of the user is revoked.'),
  submit(self ? 'Change password' : 'Reset password')));

  out.push(h('h2', {}, 'API keys'));
  const keys = h('section', { 'aria-label': 'API keys' });
  out.push(keys);
  const loadKeys = () => part(keys, async () => {
    const page = await api('GET', `/v1/users/${enc(username)}/keys?limit=1000`);
    keys.replaceChildren(table(`Keys of ${username}`, ['Name', 'Kind', 'Created', 'Last used', 'Expires', 'State', 'Actions'], page.items.map((k) => [
      k.name, k.kind, when(k.created_at), when(k.last_used_at), when(k.expires_at),
      k.revoked_at ? tag('revoked', 'bad') : tag('live', 'ok'),
      k.revoked_at ? '—' : act('Revoke', `Revoke key ${k.name} (${k.id})`, async () => {
        if (!await confirmDialog(`Revoke the key ${k.name}? Whatever uses it gets 401 from now on.`, 'Revoke key')) return;
        await api('DELETE', `/v1/users/${enc(username)}/keys/${enc(k.id)}`);
        session.flash = `Key ${k.name} revoked.`;
        render();
      }, 'danger'),
    ]), 'No keys.'));
  });
  await loadKeys();
  const shown = h('div', {});
  out.push(form(`Create a key for ${username}`, async (data, f) => {
    const body = { name: data.get('name') };
    if (data.get('expires_in')) body.expires_in = data.get('expires_in');
    const created = await api('POST', `/v1/users/${enc(username)}/keys`, body);
    f.reset();
    shown.replaceChildren(secretPanel(`New key ${created.name}`, created.key));
    say(`Key ${created.name} created: copy it now.`);
    shown.querySelector('input').focus();
    await loadKeys();
  }, h('h3', {}, 'Create a key'), h('div', { class: 'grid' },
    field('Name', h('input', { type: 'text', name: 'name', required: true })),
    field('Expires in (optional)', h('input', { type: 'text', name: 'expires_in' }), 'e.g. 30d, 12h; empty: never')),
  submit('Create key')));
  out.push(shown);

  out.push(h('h2', {}, 'Access token'));
  out.push(tokenActions(u, shown));
  return out;
}

function tokenActions(u, shown) {
  const name = u.username;
  const box = h('div', { class: 'actions' });
  const status = u.access_token_status;
  box.append(h('span', {}, `Status: ${status || 'never requested'}`));
  if (name === session.me.username && status !== 'active' && status !== 'requested') {
    box.append(act('Request a token', `Request a token for ${name}`, async () => {
      await api('POST', `/v1/users/${enc(name)}/access-token/request`);
      session.flash = 'Access token requested: an administrator grants it.';
      render();
    }));
  }
  box.append(act(status === 'active' ? 'Grant a new token' : 'Grant', `${status === 'active' ? 'Grant a new token' : 'Grant a token'} to ${name}`, async () => {
    if (status === 'active' && !await confirmDialog(`Grant ${name} a new token? The current one stops working.`, 'Grant')) return;
    const t = await api('POST', `/v1/users/${enc(name)}/access-token/grant`);
    shown.replaceChildren(secretPanel(`Access token of ${name}`, t.access_token, 'Hand it to the user now: it is shown only this once.'));
    say(`Access token granted to ${name}.`);
    shown.querySelector('input').focus();
  }));
  if (status === 'active' || status === 'requested') {
    box.append(act('Revoke', `Revoke the access token of ${name}`, async () => {
      if (!await confirmDialog(`Revoke the access token of ${name}? It stops working at once.`, 'Revoke token')) return;
      await api('POST', `/v1/users/${enc(name)}/access-token/revoke`);
      session.flash = `Access token of ${name} revoked.`;
      render();
    }, 'danger'));
  }
  return box;
}

// ---------------------------------------------------------------------------- access tokens

async function viewTokens() {
  const out = [heading('Access tokens')];
  out.push(h('p', { class: 'hint' }, 'Users ask for an access token (REANA style); an administrator grants it, and the token is shown once. Revoking stops it at once.'));
  const shown = h('div', {});
  const list = h('section', { 'aria-label': 'Token requests' });
  out.push(list, shown);
  await part(list, async () => {
    const users = [];
    let after = '';
    for (let pages = 0; pages < 20; pages += 1) {
      const page = await api('GET', `/v1/users${qs({ limit: 1000, after })}`);
      users.push(...page.items.filter((u) => u.access_token_status));
      if (!page.next) break;
      after = page.next;
    }
    const row = (u) => [h('a', { href: `#/users/${enc(u.username)}` }, u.username), u.account, dash(u.email), tokenActions(u, shown)];
    list.append(h('h2', {}, 'Waiting for a grant'),
      table('Requests waiting', ['Username', 'Account', 'Email', 'Actions'], users.filter((u) => u.access_token_status === 'requested').map(row), 'No request is waiting.'),
      h('h2', {}, 'Active'),
      table('Active tokens', ['Username', 'Account', 'Email', 'Actions'], users.filter((u) => u.access_token_status === 'active').map(row), 'No active token.'));
  });
  return out;
}

// ---------------------------------------------------------------------------- plugins and policies

function settingsEditor(name, value) {
  return field('Settings (JSON object)', h('textarea', { name, spellcheck: 'false' }, value || '{}'), 'Handed to the plugin\'s configure; it refuses settings it does not understand.');
}

async function viewPlugins() {
  const out = [heading('Plugins and policies')];
  let plugins = [];
  const status = h('section', { 'aria-labelledby': 'pl-active' }, h('h2', { id: 'pl-active' }, 'Active authorizer'));
  out.push(status);
  await part(status, async () => {
    const a = await api('GET', '/v1/authorizer');
    status.append(facts([
      ['Active', `${a.active.name} (${a.active.id}), since ${when(a.active.since)}`],
      ['Settings', h('code', {}, JSON.stringify(a.active.settings))],
      ['Decisions', `${a.counts.allow} allowed, ${a.counts.deny} denied, ${a.counts.timeout} timed out, ${a.counts.trap} trapped`],
      ['Shadow', a.shadow ? `${a.shadow.name} (${a.shadow.id}), since ${when(a.shadow.since)}` : 'none'],
    ]));
    if (a.shadow) {
      status.append(h('h3', {}, 'Shadow comparison'),
        h('p', {}, `${a.shadow_agreements} agreements, ${a.shadow_disagreements} disagreements with the active plugin.`),
        table('Disagreements (latest samples)', ['Time', 'User', 'Action', 'Target', 'Active says', 'Shadow says', 'Shadow reasons'],
          a.disagreement_samples.map((d) => [when(d.time), d.username, d.action, d.target, d.active, d.shadow, d.shadow_reasons.join('; ') || '—']), 'No disagreement so far.'),
        h('div', { class: 'actions' },
          // A swap: the shadow decides, and the plugin it replaces keeps running in its
          // shadow (same settings), so the next swap is the way back.
          act('Swap', `Swap: make ${a.shadow.name} active, keep ${a.active.name} in shadow`, async () => {
            const [next, previous] = [a.shadow, a.active];
            if (!await confirmDialog(`Make ${next.name} the plugin that decides? It replaces ${previous.name} at once; ${previous.name} keeps running in shadow mode, so swapping again goes back.`, 'Swap')) return;
            await api('POST', `/v1/plugins/${enc(next.id)}/activate`, { mode: 'enforce', settings: next.settings });
            try {
              await api('POST', `/v1/plugins/${enc(previous.id)}/activate`, { mode: 'shadow', settings: previous.settings });
              session.flash = `${next.name} is now the active plugin; ${previous.name} runs in its shadow (Swap goes back).`;
            } catch (e) {
              session.flash = `${next.name} is now the active plugin; keeping ${previous.name} in shadow failed: ${e.message}`;
            }
            render();
          }, 'danger')));
    }
  });

  const stored = h('section', { 'aria-labelledby': 'pl-list' }, h('h2', { id: 'pl-list' }, 'Plugins'));
  out.push(stored);
  const activation = h('div', {});
  await part(stored, async () => {
    plugins = (await api('GET', '/v1/plugins?limit=1000')).items;
    stored.append(table('Plugins', ['Name', 'Id', 'Size', 'World', 'Uploaded', 'Actions'], plugins.map((p) => [
      p.name, h('code', {}, p.id), `${Math.round(p.size / 1024)} KiB`, p.world_version, p.created_at ? `${when(p.created_at)} by ${p.created_by}` : 'built in',
      act('Activate', `Activate ${p.name}`, async () => {
        activation.replaceChildren(activateForm(p));
        activation.querySelector('select').focus();
      }),
    ])), activation);
  });

  out.push(h('h2', {}, 'Upload a plugin'));
  const progress = h('progress', { max: '100', value: '0', 'aria-label': 'Upload progress', hidden: true });
  const progressText = h('p', { class: 'hint', 'aria-live': 'polite' });
  out.push(form('Upload a plugin', async (data, f) => {
    const file = data.get('file');
    if (!file || !file.size) throw new ApiError(0, 'invalid_request', 'file: choose a .wasm component');
    progress.hidden = false;
    const started = Date.now();
    let waiting = null;
    const p = await upload(`/v1/plugins${qs({ name: data.get('name') })}`, file, 'application/wasm', (sent, total, done) => {
      progress.value = Math.round((sent / total) * 100);
      progressText.textContent = done ? 'Sent; the server is checking and compiling it…' : `Sending: ${Math.round(sent / 1024)} of ${Math.round(total / 1024)} KiB`;
      if (done && !waiting) waiting = setInterval(() => { progressText.textContent = `The server is checking and compiling it… ${Math.round((Date.now() - started) / 1000)} s`; }, 1000);
    }).finally(() => { if (waiting) clearInterval(waiting); });
    f.reset();
    progress.hidden = true;
    progressText.textContent = '';
    session.flash = `Plugin ${p.name} stored as ${p.id}. Activate it in shadow mode first to compare.`;
    render();
  }, h('div', { class: 'grid' },
    field('Component (.wasm)', h('input', { type: 'file', name: 'file', accept: '.wasm,application/wasm', required: true })),
    field('Name (optional)', h('input', { type: 'text', name: 'name' }), 'Default: the component\'s own name')),
  progress, progressText, submit('Upload')));

  out.push(h('h2', {}, 'Application policies'));
  const policies = h('section', { 'aria-label': 'Application policies' });
  out.push(policies);
  await part(policies, async () => {
    const page = await api('GET', '/v1/policies');
    policies.append(h('p', { class: 'hint' }, 'A named policy answers AuthZEN at /policies/NAME/access/v1/… and POST /v1/authorize with "policy"; it never guards this console or the API.'),
      table('Policies', ['Name', 'Plugin', 'Shadow', 'Changed by', 'Actions'], page.items.map((p) => [
        p.name, `${p.authorizer.active.name} (${p.authorizer.active.id})`,
        p.authorizer.shadow ? `${p.authorizer.shadow.name}: ${p.authorizer.shadow_disagreements} disagreements` : '—', p.changed_by,
        act('Delete', `Delete policy ${p.name}`, async () => {
          if (!await confirmDialog(`Delete the policy ${p.name}? Applications asking it get 404.`, 'Delete policy')) return;
          await api('DELETE', `/v1/policies/${enc(p.name)}`);
          session.flash = `Policy ${p.name} deleted.`;
          render();
        }, 'danger'),
      ]), 'No application policy.'));
  });
  out.push(form('Create or change a policy', async (data) => {
    const name = data.get('name');
    await api('PUT', `/v1/policies/${enc(name)}`, { plugin: data.get('plugin'), settings: parseSettings(data.get('settings')), mode: data.get('mode') });
    session.flash = `Policy ${name} saved.`;
    render();
  }, h('h3', {}, 'Create or change a policy'), h('div', { class: 'grid' },
    field('Name', h('input', { type: 'text', name: 'name', required: true, autocapitalize: 'none' })),
    field('Plugin', choice('plugin', plugins.map((p) => [p.id, `${p.name} (${p.id})`]), plugins.length ? plugins[0].id : '')),
    field('Mode', choice('mode', [['enforce', 'enforce'], ['shadow', 'shadow (beside the current plugin)']], 'enforce'))),
  settingsEditor('settings', '{}'), submit('Save policy')));
  return out;
}

function activateForm(p) {
  return form(`Activate ${p.name}`, async (data) => {
    const mode = data.get('mode');
    if (mode === 'enforce' && !await confirmDialog(`Make ${p.name} the plugin that decides every request now?`, 'Activate')) return;
    await api('POST', `/v1/plugins/${enc(p.id)}/activate`, { mode, settings: parseSettings(data.get('settings')) });
    session.flash = mode === 'shadow' ? `${p.name} runs in shadow mode: its answers are compared, the active plugin still decides.` : `${p.name} is now the active plugin.`;
    render();
  }, h('h3', {}, `Activate ${p.name}`), h('div', { class: 'grid' },
    field('Mode', choice('mode', [['shadow', 'shadow — compare its answers, decide nothing'], ['enforce', 'enforce — it decides from now on']], 'shadow'))),
  settingsEditor('settings', '{}'), submit('Activate'));
}

// ---------------------------------------------------------------------------- logs

function logView(title, path, fields, columns, row) {
  return async () => {
    const out = [heading(title)];
    const params = new URLSearchParams(location.hash.split('?')[1] || '');
    const filters = {};
    for (const [name] of fields) filters[name] = params.get(name) || '';
    const after = params.get('after') || '';
    const base = location.hash.split('?')[0];
    const go = (values, cursor) => { location.hash = `${base}${qs(Object.assign({}, values, { after: cursor }))}`; };
    out.push(form(`Filter the ${title.toLowerCase()}`, async (data) => {
      const values = {};
      for (const [name] of fields) values[name] = (data.get(name) || '').trim();
      go(values, '');
    }, h('div', { class: 'grid' }, fields.map(([name, label, control]) => field(label, control(filters[name])))), submit('Apply filters', 'secondary')));
    const tail = checkbox('Live: show new entries as they come', 'live', false);
    const body = h('div', {});
    out.push(after ? null : tail, body);
    const load = async () => {
      const query = Object.assign({}, filters, { limit: 50, after });
      if (query.since) query.since = new Date(query.since).toISOString();
      const page = await api('GET', `${path}${qs(query)}`);
      const pager = h('div', { class: 'pager' });
      if (after) pager.append(act('Newest', `Newest ${title.toLowerCase()} entries`, async () => go(filters, '')));
      if (page.next) pager.append(act('Older', `Older ${title.toLowerCase()} entries`, async () => go(filters, page.next)));
      body.replaceChildren(table(title, columns, page.items.map(row), 'No entry matches.'), pager);
    };
    await part(body, load);
    tail.querySelector('input').addEventListener('change', (ev) => {
      stopTail();
      if (ev.target.checked) session.tail = setInterval(() => load().catch(complain), 2000);
    });
    return out;
  };
}

const text = (value) => h('input', { type: 'text', autocapitalize: 'none', value });

const viewDecisions = logView('Decisions', '/v1/decisions', [
  ['policy', 'Policy (empty: the console and API\'s own)', (v) => Object.assign(text(v), { name: 'policy' })],
  ['username', 'User', (v) => Object.assign(text(v), { name: 'username' })],
  ['action', 'Action', (v) => Object.assign(text(v), { name: 'action' })],
  ['outcome', 'Outcome', (v) => choice('outcome', [['', 'any'], ['allow', 'allow'], ['deny', 'deny'], ['timeout', 'timeout'], ['trap', 'trap'], ['memory_limit', 'memory limit'], ['malformed', 'malformed'], ['unavailable', 'unavailable']], v)],
], ['Time', 'User', 'Action', 'Target', 'Outcome', 'Reasons', 'Plugin', 'µs'], (d) => [
  when(d.time), `${d.username} (${d.account})`, d.action, d.target,
  tag(d.outcome, d.allowed ? 'ok' : 'bad'), d.reasons.join('; ') || '—', d.plugin, String(d.duration_us),
]);

const viewAudit = logView('Audit log', '/v1/audit', [
  ['actor', 'Actor', (v) => Object.assign(text(v), { name: 'actor' })],
  ['action', 'Action', (v) => Object.assign(text(v), { name: 'action' })],
  ['since', 'Since', (v) => h('input', { type: 'datetime-local', name: 'since', value: v })],
], ['Time', 'Actor', 'Action', 'Target', 'Outcome', 'Detail'], (e) => [
  when(e.time), e.actor, e.action, e.target, tag(e.outcome, e.outcome === 'success' ? 'ok' : 'bad'), dash(e.detail),
]);

function stopTail() {
  if (session.tail) clearInterval(session.tail);
  session.tail = null;
}

// ---------------------------------------------------------------------------- CSV

function viewCsv() {
  const out = [heading('Export and import users (CSV)')];
  const link = h('a', { class: 'button secondary', href: '/v1/users/export', download: 'users.csv' }, 'Download users.csv');
  const hashes = checkbox('Include password hashes (admin only; the file then holds secrets)', 'hashes', false);
  hashes.querySelector('input').addEventListener('change', (ev) => {
    link.setAttribute('href', ev.target.checked ? '/v1/users/export?include_password_hashes=true' : '/v1/users/export');
  });
  out.push(h('section', { class: 'box', 'aria-labelledby': 'csv-export' }, h('h2', { id: 'csv-export' }, 'Export'),
    h('p', { class: 'hint' }, 'Columns: username, email, account, roles, created_at, access_token_status. Fields a spreadsheet would run are written with a leading \'.'),
    hashes, h('div', { class: 'actions' }, link)));
  const report = h('div', { 'aria-live': 'polite' });
  out.push(h('h2', {}, 'Import'));
  out.push(form('Import users', async (data) => {
    const file = data.get('file');
    if (!file || !file.size) throw new ApiError(0, 'invalid_request', 'file: choose a CSV file');
    report.replaceChildren();
    let r;
    let failed = false;
    try {
      r = await upload(`/v1/users/import${qs({ on_conflict: data.get('on_conflict') })}`, file, 'text/csv', () => {});
    } catch (e) {
      // 422 with a per-row report: nothing was written.
      if (!(e instanceof ApiError) || e.status !== 422 || !e.report) throw e;
      r = e.report;
      failed = true;
    }
    report.append(h('h3', {}, failed ? 'Nothing imported: fix these rows' : 'Imported'),
      facts([['Created', String(r.created)], ['Updated', String(r.updated)], ['Skipped', String(r.skipped)], ['Accounts created', (r.accounts_created || []).join(', ') || '—']]),
      table('Rows refused', ['Row', 'Error'], (r.errors || []).map((x) => [String(x.row), x.error]), 'Every row was good.'),
      (r.notes || []).length ? table('Notes', ['Row', 'Note'], r.notes.map((x) => [String(x.row), x.note])) : null);
    if (failed) complain(new ApiError(422, 'invalid_request', `${r.errors.length} row(s) refused; nothing was written.`));
    else say(`Import done: ${r.created} created, ${r.updated} updated, ${r.skipped} skipped.`);
  }, h('div', { class: 'grid' },
    field('CSV file', h('input', { type: 'file', name: 'file', accept: '.csv,text/csv', required: true })),
    field('When a username exists', choice('on_conflict', [['fail', 'refuse the whole file'], ['skip', 'skip that row'], ['update', 'update the user']], 'fail'))),
  h('p', { class: 'hint' }, 'All or nothing: unless every row is good, nothing is written and the report names each bad row.'),
  submit('Import')), report);
  return out;
}

// ---------------------------------------------------------------------------- routing

const routes = [
  [/^#\/login$/, viewLogin, 'Sign in'],
  [/^#\/?$/, viewOverview, 'Overview'],
  [/^#\/accounts$/, viewAccounts, 'Accounts'],
  [/^#\/accounts\/([^/?]+)$/, viewAccount, 'Account'],
  [/^#\/users(\?.*)?$/, viewUsers, 'Users'],
  [/^#\/users\/([^/?]+)$/, viewUser, 'User'],
  [/^#\/tokens$/, viewTokens, 'Access tokens'],
  [/^#\/plugins$/, viewPlugins, 'Plugins and policies'],
  [/^#\/decisions(\?.*)?$/, viewDecisions, 'Decisions'],
  [/^#\/audit(\?.*)?$/, viewAudit, 'Audit log'],
  [/^#\/csv$/, viewCsv, 'CSV'],
];

let rendering = 0;
async function render() {
  stopTail();
  const mine = ++rendering;
  const hash = location.hash || '#/';
  if (!session.me && !session.checked) {
    // First view of this page load: is there a live session cookie already?
    session.checked = true;
    try { await loadSession(); } catch (e) { complain(e); }
  }
  if (!session.me && hash !== '#/login') {
    session.after = hash;
    location.hash = '#/login';
    return;
  }
  if (session.me && hash === '#/login') { location.hash = '#/'; return; }
  const found = routes.find(([re]) => re.test(hash.split('?')[0]) || re.test(hash));
  const [re, view, title] = found || [null, () => [heading('Not found'), h('p', {}, 'No such page. '), h('a', { href: '#/' }, 'Back to the overview')], 'Not found'];
  const args = re ? (hash.match(re) || []).slice(1).filter((a) => a && !a.startsWith('?')).map(decodeURIComponent) : [];
  clearMessages();
  let content;
  try {
    content = await view(...args);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    content = [heading(title)];
    complain(e);
  }
  if (mine !== rendering) return;
  main.replaceChildren(...[content].flat(Infinity).filter(Boolean));
  document.title = `${title} — Portcullis console`;
  for (const a of document.querySelectorAll('#nav a')) {
    const target = a.getAttribute('href');
    const current = target === '#/' ? hash === '#/' || hash === '' : hash.startsWith(target);
    if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (session.flash) { say(session.flash); session.flash = null; }
  const h1 = main.querySelector('h1');
  if (h1) h1.focus();
}

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await api('POST', '/ui/logout');
  } catch (e) {
    // Still signed in (the server could not end the session): say so, stay.
    complain(e);
    return;
  }
  session.me = null;
  session.csrf = null;
  showChrome(false);
  session.flash = 'Signed out.';
  location.hash = '#/login';
});

window.addEventListener('hashchange', render);
render();
