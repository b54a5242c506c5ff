// lakelink's web UI: polls GET /v1/links every 2 s and shows each link of
// this process. Plain JavaScript, no framework, no build step; every value
// from the API goes into the page as text (textContent), never as HTML.
'use strict';

const POLL_MS = 2000;
const TOKEN_KEY = 'lakelink.apiToken';

// The API token, when the server needs one: asked for once, kept for this
// browser tab (sessionStorage), sent as "Authorization: Bearer TOKEN".
let token = '';
try {
  token = sessionStorage.getItem(TOKEN_KEY) || '';
} catch (e) {
  // Storage is off (a privacy mode): the token lasts until a reload.
}

function saveToken(t) {
  token = t;
  try {
    if (t) {
      sessionStorage.setItem(TOKEN_KEY, t);
    } else {
      sessionStorage.removeItem(TOKEN_KEY);
    }
  } catch (e) {
    // See above.
  }
}

const $ = (id) => document.getElementById(id);

// el makes an element with attributes and children (strings become text).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) {
      e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) {
      continue;
    }
    e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}

// duration formats seconds for people: "0.412 s", "42 s", "2 min 9 s",
// "3 h 5 min", "2 d 4 h".
function duration(s) {
  if (s < 10) {
    return `${Math.round(s * 1000) / 1000} s`;
  }
  s = Math.round(s);
  if (s < 60) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${s % 60} s`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

// when shows an RFC 3339 time as "2026-12-02 19:50:01 UTC (12 s ago)", or
// says that it has not happened for null.
function when(iso) {
  if (!iso) {
    return el('span', {class: 'muted'}, 'not in this process yet');
  }
  const t = new Date(iso);
  const text = iso.replace('T', ' ').replace('Z', ' UTC');
  const ago = Math.round((Date.now() - t.getTime()) / 1000);
  return el('span', {}, el('time', {datetime: iso}, text), ago >= 0 ? ` (${duration(ago)} ago)` : '');
}

function count(n) {
  return Number(n).toLocaleString('en-US');
}

// what names the thing that is down.
function what(down) {
  switch (down.what) {
    case 'lake':
      return 'Lake';
    case 'source':
      return 'Source';
  }
  return 'Source or lake';
}

// renderLink returns a link's section.
function renderLink(l) {
  const id = `link-${l.link}`;
  const stoppedTables = l.tables.filter((t) => t.error !== '');
  const failed = l.state === 'stopped' && l.error !== '';
  const classes = ['link'];
  if (l.down.down || failed) {
    classes.push('link-bad');
  } else if (stoppedTables.length > 0) {
    classes.push('link-warn');
  }

  const heading = el('h2', {id},
    el('span', {class: 'link-name'}, l.link), ' ',
    el('span', {class: `badge badge-${l.state}`}, l.state),
    l.down.down ? [' ', el('span', {class: 'badge badge-bad'}, `${what(l.down).toLowerCase()} down`)] : null,
    stoppedTables.length > 0
      ? [' ', el('span', {class: 'badge badge-warn'}, `${stoppedTables.length} ${stoppedTables.length === 1 ? 'table' : 'tables'} stopped`)]
      : null);

  const banners = [];
  if (l.down.down) {
    const since = l.down.since
      ? [' since ', el('time', {datetime: l.down.since}, l.down.since.replace('T', ' ').replace('Z', ' UTC')), ` (for ${duration(l.down.forSeconds)})`]
      : '';
    banners.push(el('div', {class: 'banner banner-bad'},
      el('p', {}, el('strong', {}, `${what(l.down)} unavailable`, since, '.'),
        ' The export retries with backoff and resumes by itself.'),
      l.down.error ? el('p', {class: 'error-text'}, l.down.error) : null));
  }
  if (failed) {
    banners.push(el('div', {class: 'banner banner-bad'},
      el('p', {}, el('strong', {}, 'The link stopped on an error.')),
      el('p', {class: 'error-text'}, l.error)));
  } else if (l.state === 'stopped') {
    banners.push(el('p', {class: 'banner'}, 'The link has stopped (done or interrupted).'));
  }

  const facts = [
    ['Source', el('span', {class: 'url'}, l.source)],
    ['Lake', el('span', {class: 'url'}, l.lake)],
    ['Position', count(l.position)],
    ['Commits', count(l.commits)],
    ['Changes', count(l.changes)],
    ['Rows copied', count(l.copiedRows)],
    ['Lag of the last commit', l.lastCommit ? duration(l.lagSeconds) : el('span', {class: 'muted'}, 'no commit yet')],
    ['Last commit', when(l.lastCommit)],
    ['Snapshots', count(l.snapshots)],
    ['Last snapshot', when(l.lastSnapshot)],
  ];
  const dl = el('dl', {class: 'facts'}, facts.map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', {}, v))));

  let tables;
  if (l.tables.length === 0) {
    tables = el('p', {class: 'muted'}, l.state === 'starting' ? 'Opening the source and the lake…' : 'No tables yet.');
  } else {
    tables = el('table', {class: 'tables'},
      el('caption', {}, `Tables of ${l.link}`),
      el('thead', {}, el('tr', {},
        el('th', {scope: 'col'}, 'Table'),
        el('th', {scope: 'col'}, 'Initial sync'),
        el('th', {scope: 'col', class: 'num'}, 'Rows'),
        el('th', {scope: 'col'}, 'Error'))),
      el('tbody', {}, l.tables.map((t) => el('tr', {class: t.error ? 'row-bad' : null},
        el('th', {scope: 'row'}, t.name),
        el('td', {}, el('span', {class: `sync sync-${t.initialSync}`}, t.initialSync)),
        el('td', {class: 'num'}, count(t.rows)),
        el('td', {}, t.error ? el('span', {class: 'error-text'}, el('strong', {}, 'Stopped: '), t.error) : el('span', {class: 'muted'}, 'none'))))));
  }
  return el('section', {class: classes.join(' '), 'aria-labelledby': id}, heading, banners, dl, tables);
}

// summary says in one sentence how the links are.
function summary(links) {
  if (links.length === 0) {
    return 'This lakelink runs no links.';
  }
  const down = links.filter((l) => l.down.down).length;
  const failed = links.filter((l) => l.state === 'stopped' && l.error !== '').length;
  const tables = links.reduce((n, l) => n + l.tables.filter((t) => t.error !== '').length, 0);
  const parts = [];
  if (down > 0) {
    parts.push(`${down} waiting out an outage`);
  }
  if (failed > 0) {
    parts.push(`${failed} stopped on an error`);
  }
  if (tables > 0) {
    parts.push(`${tables} ${tables === 1 ? 'table' : 'tables'} stopped`);
  }
  const n = `${links.length} ${links.length === 1 ? 'link' : 'links'}`;
  return parts.length === 0 ? `${n}, no problems.` : `${n}: ${parts.join(', ')}.`;
}

// patch makes the node old look like neu, changing only what differs, so
// that a refresh keeps the reader's text selection and scroll position.
function patch(old, neu) {
  if (old.nodeType !== neu.nodeType || old.nodeName !== neu.nodeName) {
    old.replaceWith(neu);
    return;
  }
  if (old.nodeType === Node.TEXT_NODE) {
    if (old.nodeValue !== neu.nodeValue) {
      old.nodeValue = neu.nodeValue;
    }
    return;
  }
  for (const a of [...old.attributes]) {
    if (!neu.hasAttribute(a.name)) {
      old.removeAttribute(a.name);
    }
  }
  for (const a of [...neu.attributes]) {
    if (old.getAttribute(a.name) !== a.value) {
      old.setAttribute(a.name, a.value);
    }
  }
  const oc = [...old.childNodes];
  const nc = [...neu.childNodes];
  nc.forEach((n, i) => (i < oc.length ? patch(oc[i], n) : old.append(n)));
  oc.slice(nc.length).forEach((o) => o.remove());
}

function setText(node, text) {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}

function render(doc) {
  const links = doc.links || [];
  patch($('links'), el('div', {id: 'links'}, links.map(renderLink)));
  setText($('summary'), summary(links));
  const bad = links.filter((l) => l.down.down || (l.state === 'stopped' && l.error !== '')).length;
  document.title = bad > 0 ? `(${bad} down) lakelink` : 'lakelink';
}

function showProblem(text) {
  const p = $('problem');
  setText(p, text);
  p.hidden = false;
}

function showLogin(message) {
  $('links').replaceChildren();
  setText($('summary'), 'A token is needed to show the links.');
  $('problem').hidden = true;
  $('forget').hidden = true;
  const err = $('login-error');
  setText(err, message || '');
  err.hidden = !message;
  $('login').hidden = false;
  $('token').focus();
}

let timer = 0;
let lastOK = null;

async function poll() {
  clearTimeout(timer);
  const headers = {Accept: 'application/json'};
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  try {
    const resp = await fetch('/v1/links', {headers, cache: 'no-store'});
    if (resp.status === 401) {
      const refused = token !== '';
      saveToken('');
      showLogin(refused ? 'That token was refused; check LAKELINK_API_TOKEN of the lakelink process.' : '');
      return; // until a token is entered
    }
    if (!resp.ok) {
      let msg = `${resp.status} ${resp.statusText}`;
      try {
        msg = (await resp.json()).error || msg;
      } catch (e) {
        // Not a JSON error body: keep the status.
      }
      throw new Error(msg);
    }
    render(await resp.json());
    lastOK = new Date();
    $('problem').hidden = true;
    $('login').hidden = true;
    $('forget').hidden = token === '';
    setText($('updated'), `Updated ${lastOK.toLocaleTimeString('en-GB')}.`);
  } catch (e) {
    const since = lastOK ? ` The figures below are from ${lastOK.toLocaleTimeString('en-GB')}.` : '';
    showProblem(`This lakelink does not answer (${e.message}); it may have stopped. Trying again every 2 s.${since}`);
  }
  timer = setTimeout(poll, POLL_MS);
}

document.addEventListener('DOMContentLoaded', () => {
  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token').value.trim();
    if (!t) {
      return;
    }
    saveToken(t);
    $('token').value = '';
    $('login').hidden = true;
    setText($('summary'), 'Loading the links\' status…');
    poll();
  });
  $('forget').addEventListener('click', () => {
    saveToken('');
    clearTimeout(timer);
    showLogin('');
  });
  poll();
});
