/**
 * The status page as one self-contained HTML document: the layout of `statusView.ts` written
 * out for the first paint (readable without JavaScript), an inline style sheet, and one small
 * inline script that follows `GET /events` and rebuilds the live region from each `view`
 * event. No external resources; the Content-Security-Policy admits exactly this style sheet
 * and this script (by hash) and connections to this member, so even a value from etcd that
 * got past the escaping could run nothing.
 */
import { createHash } from 'node:crypto';
import type { StatusSnapshot } from './status.js';
import { servedBy, statusView, type StatusView } from './statusView.js';
import { escapeHtml, SVG_TAGS, toHtml, VIEW_ATTRIBUTES, VIEW_TAGS } from './viewNode.js';

const STYLE = `
:root { color-scheme: light dark; --fg: #1a1a1a; --bg: #fff; --muted: #555; --line: #c8c8c8;
  --link: #0645ad; --lead-bg: #e7f4e8; --lead: #1b5e20; --self: #0b3d91; --warn: #7a4100; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #ececec; --bg: #141414; --muted: #b4b4b4; --line: #4a4a4a; --link: #9cc3ff;
    --lead-bg: #1d3320; --lead: #2e7d32; --self: #2c5cb8; --warn: #ffb74d; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem; font: 1rem/1.5 system-ui, sans-serif;
  color: var(--fg); background: var(--bg); overflow-wrap: anywhere; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 1.5rem 0 .5rem; }
h3 { font-size: 1.05rem; margin: 1rem 0 .25rem; }
a { color: var(--link); }
header p { margin: .25rem 0; }
.pool, #cost { border-top: 2px solid var(--line); }
.leader { font-size: 1.15rem; }
.leader-id { font-size: 1.4rem; }
.no-leader { color: var(--warn); }
.badge { display: inline-block; padding: 0 .4rem; border-radius: .25rem; font-size: .85rem;
  color: #fff; background: var(--self); white-space: nowrap; }
.badge.leader-mark { background: var(--lead); }
#connection { font-weight: 600; }
#connection::before { content: "● "; }
#connection[data-state="live"] { color: var(--lead); }
#connection[data-state="reconnecting"] { color: var(--warn); }
#connection[data-state="static"] { color: var(--muted); }
#announcement:empty { display: none; }
#announcement { padding: .5rem .75rem; border-left: 4px solid var(--lead); background: var(--lead-bg); }
.scroll { overflow-x: auto; max-width: 100%; }
.scroll:focus { outline: 3px solid var(--link); outline-offset: 2px; }
table { border-collapse: collapse; margin: .25rem 0 1rem; }
#cost table { min-width: min(100%, 20rem); }
caption { text-align: left; font-weight: 600; padding: .25rem 0; position: sticky; left: 0;
  max-width: calc(100vw - 2rem); }
th, td { padding: .3rem .6rem; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; overflow-wrap: normal; }
thead th { border-bottom-width: 2px; }
tbody th { font-weight: 600; }
tr.is-leader { background: var(--lead-bg); }
td.empty { color: var(--muted); }
ul.labels { margin: 0; padding: 0; list-style: none; }
code { font-family: ui-monospace, monospace; font-size: .95em; }
.strip svg { display: block; width: 100%; max-width: 45rem; height: auto; margin: .5rem 0 .25rem; }
.strip text { font: 12px system-ui, sans-serif; fill: var(--fg); }
.strip .strip-label { fill: #fff; font-weight: 600; }
.strip-legend { margin: 0; font-size: .85rem; color: var(--muted); }
.strip .gap { fill: var(--warn); }
.strip .outage { fill: #c62828; opacity: .85; }
.lead-0 { fill: #2e7d32; } .lead-1 { fill: #1565c0; } .lead-2 { fill: #6a1b9a; }
.lead-3 { fill: #00838f; } .lead-4 { fill: #5d4037; } .lead-5 { fill: #ad1457; }
#stale { padding: .5rem .75rem; border-left: 4px solid var(--warn); font-weight: 600; }
#stale[hidden] { display: none; }
body[data-stale] #status { opacity: .5; filter: grayscale(1); }
`;

const SCRIPT = `
'use strict';
(() => {
  const TAGS = new Set(${JSON.stringify(VIEW_TAGS)});
  const SVG = new Set(${JSON.stringify(SVG_TAGS)});
  const ATTRIBUTES = new Set(${JSON.stringify(VIEW_ATTRIBUTES)});
  const region = document.getElementById('status');
  const connection = document.getElementById('connection');
  const announcement = document.getElementById('announcement');
  const stale = document.getElementById('stale');
  let process = region.dataset.process;
  const build = (node) => {
    if (typeof node === 'string') return document.createTextNode(node);
    const [tag, attributes, ...children] = node;
    if (!TAGS.has(tag)) throw new Error('unexpected element ' + tag);
    const element = SVG.has(tag)
      ? document.createElementNS('http://www.w3.org/2000/svg', tag)
      : document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (!ATTRIBUTES.has(name) || (name === 'href' && !/^https?:/i.test(value))) continue;
      element.setAttribute(name, value);
    }
    for (const child of children) element.append(build(child));
    return element;
  };
  // When the stream drops, what the page shows is as of its last update: say so, grey it out,
  // and offer the other members' pages (their links in the members tables).
  let updatedAt = new Date();
  const markStale = () => {
    if (document.body.dataset.stale !== undefined) return;
    document.body.dataset.stale = '';
    const self = document.querySelector('.self-id')?.textContent;
    const others = new Map();
    for (const a of region.querySelectorAll('a[data-member]')) {
      if (a.dataset.member !== self && !others.has(a.dataset.member)) others.set(a.dataset.member, a.href);
    }
    const time = document.createElement('time');
    time.dateTime = updatedAt.toISOString();
    time.textContent = updatedAt.toLocaleTimeString();
    const parts = ['Not live since ', time, ': this member may have stopped, and what follows is as it was then.'];
    if (others.size > 0) {
      parts.push(' Other members\u2019 pages:');
      for (const [id, href] of others) {
        const a = document.createElement('a');
        a.href = href;
        a.textContent = id;
        a.className = 'other-member';
        parts.push(' ', a);
      }
    }
    stale.replaceChildren(...parts);
    stale.hidden = false;
  };
  const markLive = () => {
    delete document.body.dataset.stale;
    stale.hidden = true;
  };
  const summaries = () =>
    new Map([...region.querySelectorAll('[data-pool]')].map((e) => [e.dataset.pool, e.dataset.summary]));
  let shown = new Map();
  const show = (view) => {
    // Another process (the member restarted): its header is new; its sections follow.
    if (view.process !== process) {
      document.getElementById('served-by').replaceWith(build(view.servedBy));
      process = view.process;
    }
    updatedAt = new Date();
    markLive();
    const before = summaries();
    const next = new Map(view.sections.map((section) => [section[1].id, JSON.stringify(section)]));
    const old = [...region.children];
    const ids = [...next.keys()];
    if (old.length === ids.length && ids.every((id, i) => old[i].id === id)) {
      view.sections.forEach((section, i) => {
        if (shown.get(ids[i]) !== next.get(ids[i])) old[i].replaceWith(build(section));
      });
    } else {
      region.replaceChildren(...view.sections.map(build));
    }
    shown = next;
    document.title = view.title;
    const changed = [...summaries()].filter(([pool, summary]) => before.has(pool) && before.get(pool) !== summary);
    if (changed.length > 0) announcement.textContent = changed.map(([, summary]) => summary).join(' ');
  };
  const state = (name, text) => {
    connection.dataset.state = name;
    connection.textContent = text;
  };
  const connect = () => {
    const events = new EventSource('/events');
    events.addEventListener('open', () => state('live', 'live'));
    events.addEventListener('view', (event) => show(JSON.parse(event.data)));
    events.addEventListener('error', () => {
      state('reconnecting', 'reconnecting');
      markStale();
      // The browser retries by itself after a network error; after an answer other than an
      // event stream (this member is shutting down) it gives up, so try again later.
      if (events.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    });
  };
  state('reconnecting', 'connecting');
  connect();
})();
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** Admits this page's own style sheet and script and its event stream, nothing else. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `style-src ${sha256(STYLE)}`,
  `script-src ${sha256(SCRIPT)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function statusDocument(snapshot: StatusSnapshot): string {
  const view: StatusView = statusView(snapshot);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(view.title)}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>Pool status</h1>
${toHtml(servedBy(snapshot.member))}
<p>Updates: <span id="connection" data-state="static">not live (reload to refresh)</span></p>
<p id="stale" role="alert" hidden></p>
</header>
<main>
<p id="announcement" role="status" aria-live="polite" aria-atomic="true"></p>
<div id="status" data-process="${escapeHtml(view.process)}">
${view.sections.map(toHtml).join('\n')}
</div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
