/**
 * The status page in a real browser: Debian's Chromium driven by playwright-core, on a pool of
 * real member processes (dist/src/cli.js: run `npm run build` first) on a real 3-member etcd
 * cluster. The page stays open on member c while the leader is stopped, then killed; it must
 * show each new leader by itself, pushed over its event stream. The delays are printed as
 * "measured:" lines and a screenshot is written to test-artifacts/.
 *
 * Before it, the page's event stream and its escaping are checked in this process, against a
 * status source the test drives: no etcd, no browser.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import express from 'express';
import { pino } from 'pino';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { errorMiddleware } from '../../src/http/errors.js';
import { COALESCE_MS, RETRY_MS } from '../../src/http/statusPage/events.js';
import type { StatusSnapshot, StatusSource } from '../../src/http/statusPage/status.js';
import { statusRoutes, type StatusRouter } from '../../src/http/statusPage/statusPage.js';
import { EtcdCluster } from '../support/etcdCluster.js';
import { TestPool } from '../support/pool.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const ARTIFACTS = path.resolve('test-artifacts');
const TTL_SECONDS = 2;

/** What WATCH_LEADER leaves on the page's window. */
interface PageMarks {
  notReloaded: boolean;
  leaderSeenAt: Record<string, number>;
}

/**
 * Runs in the page: records (page clock, the same as ours) when each leader id first appears
 * in pool default's leader line, and leaves a marker that a reload would wipe out.
 */
const WATCH_LEADER = `(() => {
  window.notReloaded = true;
  window.leaderSeenAt = {};
  const record = () => {
    const id = document.querySelector('[data-pool="default"] .leader-id')?.textContent ?? 'none';
    if (!(id in window.leaderSeenAt)) window.leaderSeenAt[id] = Date.now();
  };
  new MutationObserver(record).observe(document.getElementById('status'), {
    childList: true, subtree: true, characterData: true,
  });
  record();
})()`;

/**
 * Debian's Chromium with a fresh profile directory and one page; the page's errors and
 * console errors are pushed to `pageErrors`.
 */
async function openChromium(
  pageErrors: string[],
): Promise<{ profile: string; browser: BrowserContext; page: Page }> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'status-page-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1100, height: 900 },
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
  return { profile, browser, page };
}

/** What the functions passed to waitForFunction use of the page (the tests have no DOM types). */
interface PageGlobals {
  document: {
    querySelector(selector: string): {
      textContent: string | null;
      getAttribute(name: string): string | null;
    } | null;
  };
}

/** Pool default's timeline strip as the page's script built it: namespace, label, each rect. */
const STRIP = `(() => {
  const svg = document.querySelector('#pool-default-strip svg');
  return {
    namespace: svg.namespaceURI,
    label: svg.getAttribute('aria-label'),
    rects: [...svg.querySelectorAll('rect')].map((rect) => ({
      kind: rect.getAttribute('class'),
      width: rect.getBBox().width,
      tip: rect.querySelector('title')?.textContent,
    })),
  };
})()`;

/** The rows of pool default's timeline as the page shows them: [time, leader, term, failover]. */
const TIMELINE_ROWS = `[...document.querySelectorAll('#pool-default-changes tbody tr')]
  .map((row) => [...row.children].map((cell) => cell.textContent))`;

describe('the status page and its event stream, in process', function () {
  let server: Server;
  let router: StatusRouter;
  let url: string;
  let status: FakeStatus;

  beforeEach(async () => {
    status = new FakeStatus();
    router = statusRoutes(status);
    const app = express()
      .use(router)
      .use(errorMiddleware(pino({ level: 'silent' })));
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    router.endAll();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends the snapshot at once, then the first change of a burst at once and the rest of it as one event', async () => {
    const head = await fetch(`${url}/events`, {
      method: 'HEAD',
      signal: AbortSignal.timeout(1000),
    });
    expect(head.status, 'HEAD /events ends at once').to.equal(200);
    const stream = await EventStreamReader.open(`${url}/events`);
    expect(stream.headers.get('content-type')).to.match(/^text\/event-stream/);
    expect(stream.headers.get('cache-control')).to.include('no-cache');
    expect(stream.headers.get('x-accel-buffering')).to.equal('no');
    const first = await stream.next();
    expect(first.retry).to.equal(String(RETRY_MS));
    expect(first.event).to.equal('status');
    expect(JSON.parse(first.data) as StatusSnapshot).to.deep.equal(status.snapshotNow());
    expect((await stream.next()).event).to.equal('view');
    await new Promise((resolve) => setTimeout(resolve, 100));

    const changedAt = Date.now();
    for (const leader of ['b', 'c', 'b', 'c']) status.change(leader);
    const atOnce = await stream.nextStatus();
    expect(Date.now() - changedAt).to.be.below(COALESCE_MS - 10);
    expect(atOnce.pools[0]!.leader?.id).to.equal('b');
    const last = await stream.nextStatus();
    expect(Date.now() - changedAt).to.be.within(COALESCE_MS - 10, COALESCE_MS + 150);
    expect(last.pools[0]!.leader?.id).to.equal('c');
    expect((await stream.next()).event).to.equal('view');
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(stream.buffered(), 'more events than the burst needs').to.equal('');

    stream.close();
    await eventuallyTrue(() => status.listeners.size === 0);
  });

  it('endAll() ends every open stream at once and refuses new ones, so graceful shutdown can drain', async () => {
    const streams = await Promise.all([1, 2].map(() => EventStreamReader.open(`${url}/events`)));
    await Promise.all(streams.map((stream) => stream.nextStatus()));
    const endedAt = Date.now();
    router.endAll();
    await Promise.all(streams.map((stream) => stream.ended));
    expect(Date.now() - endedAt).to.be.below(100);
    expect(status.listeners.size).to.equal(0);

    const refused = await fetch(`${url}/events`);
    expect(refused.status).to.equal(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).to.equal(
      'SHUTTING_DOWN',
    );
    expect((await fetch(`${url}/`)).status).to.equal(200);
  });

  it('escapes every value from etcd and links only http(s) URLs', async () => {
    status.hostile = true;
    const html = await (await fetch(`${url}/`)).text();
    expect(html).not.to.include('<script>alert');
    expect(html).not.to.include('<img');
    expect(html).to.include('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).to.include('<td>javascript:alert(2)</td>');
    expect(html).not.to.match(/href="javascript:/i);
    expect(html.match(/<script>/g)).to.have.length(1);
  });
});

describe('the status page in Chromium, against a status source the test drives', function () {
  this.timeout(60_000);
  let server: Server | undefined;
  let router: StatusRouter | undefined;
  let status: FakeStatus;
  let port = 0;
  let profile: string | undefined;
  let browser: BrowserContext | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  /** Serves `status` on `port` (0: a free one), as a member process would. */
  const serve = async (source: FakeStatus) => {
    router = statusRoutes(source);
    const app = express()
      .use(router)
      .use(errorMiddleware(pino({ level: 'silent' })));
    server = app.listen(port, '127.0.0.1');
    await new Promise((resolve) => server!.once('listening', resolve));
    port = (server.address() as AddressInfo).port;
  };

  /** The member process ends: its streams end and its port refuses connections. */
  const stop = async () => {
    router!.endAll();
    server!.closeAllConnections();
    await new Promise((resolve) => server!.close(resolve));
  };

  before(async () => {
    ({ profile, browser, page } = await openChromium(pageErrors));
  });

  beforeEach(async () => {
    status = new FakeStatus();
    port = 0;
    await serve(status);
  });

  afterEach(async () => {
    if (server?.listening) await stop();
  });

  after(async () => {
    await browser?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it('draws who led when as an SVG strip, outages to scale, and says why each leader changed', async () => {
    status.timeline = [
      ...status.timeline,
      {
        at: '2025-01-31T12:02:00.000Z',
        leader: null,
        term: null,
        previous: 'a',
        cause: 'expired',
        leaderlessMs: null,
        outageMs: null,
      },
      {
        at: '2025-01-31T12:02:00.012Z',
        leader: 'b',
        term: 9,
        previous: 'a',
        cause: 'expired',
        leaderlessMs: 12,
        outageMs: 5012,
      },
    ];
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('#connection[data-state="live"]');
    // Built by the page's script from the event stream (a change makes it rebuild the pool).
    status.change('b');
    await page.waitForFunction(
      (id) =>
        (globalThis as unknown as PageGlobals).document.querySelector(
          '[data-pool="default"] .leader-id',
        )?.textContent === id,
      'b',
    );
    const strip = await page.evaluate<{
      namespace: string;
      label: string;
      rects: { kind: string; width: number; tip: string }[];
    }>(STRIP);
    expect(strip.namespace).to.equal('http://www.w3.org/2000/svg');
    expect(strip.label).to.include(
      'Who led pool default from 12:00:00 UTC to 12:05:00 UTC: a, then b',
    );
    const kinds = strip.rects.map((rect) => rect.kind);
    expect(kinds).to.deep.equal(['lead-0', 'lead-1', 'gap', 'outage']);
    // 5 minutes across 720 units: a's two minutes are 288 wide, the 5 s outage 12, the 12 ms
    // gap drawn at the 2-unit minimum.
    const width = (kind: string) => strip.rects.find((rect) => rect.kind === kind)!.width;
    expect(width('lead-0')).to.be.closeTo(288, 0.1);
    expect(width('outage')).to.be.closeTo(12, 0.1);
    expect(width('gap')).to.equal(2);
    expect(strip.rects.find((rect) => rect.kind === 'outage')!.tip).to.equal(
      'outage 5.01 s before b led (lease expired: crashed, frozen or cut off from etcd)',
    );
    const rows = await page.evaluate<string[][]>(TIMELINE_ROWS);
    expect(rows.map((row) => row.slice(1))).to.deep.equal([
      ['b', '9', 'lease expired: crashed, frozen or cut off from etcd', '12 ms', '5.01 s'],
      ['no leader', '–', 'lease expired: crashed, frozen or cut off from etcd', '–', '–'],
      ['a', '7', 'leading when this member started', '–', '–'],
    ]);
    expect(pageErrors, 'errors in the page').to.deep.equal([]);
  });

  it('when its member stops, greys out what it shows, says since when, and offers the other members\u2019 pages; a restarted member refreshes its header', async () => {
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('#connection[data-state="live"]');
    expect(await page.isHidden('#stale')).to.equal(true);
    let navigations = 0;
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });

    await stop();
    await page.waitForSelector('body[data-stale]');
    expect(await page.textContent('#stale')).to.match(
      /^Not live since .+: this member may have stopped, and what follows is as it was then\. Other members\u2019 pages: a b$/,
    );
    // The page's DOM types are not in this project's lib: name what the callback reads.
    type Link = { textContent: string | null; getAttribute(name: string): string | null };
    const others = await page.$$eval('#stale a.other-member', (links: Link[]) =>
      links.map((a) => [a.textContent, a.getAttribute('href')]),
    );
    expect(others).to.deep.equal([
      ['a', 'http://127.0.0.1:7001/'],
      ['b', 'http://127.0.0.1:7002/'],
    ]);
    const opacity = await page.evaluate(
      "getComputedStyle(document.getElementById('status')).opacity",
    );
    expect(Number(opacity)).to.be.below(1);
    expect(navigations, 'a stop reloads nothing').to.equal(0);

    // The member comes back as a new process: the page reconnects and shows its header.
    status = new FakeStatus();
    status.startedAt = '2025-01-31T12:09:00.000Z';
    status.leader = 'b';
    await serve(status);
    await page.waitForFunction(
      (startedAt) =>
        (globalThis as unknown as PageGlobals).document
          .querySelector('header time')
          ?.getAttribute('datetime') === startedAt,
      status.startedAt,
      { timeout: 15_000 },
    );
    expect(navigations, 'the page was reloaded').to.equal(0);
    expect(await page.textContent('[data-pool="default"] .leader-id')).to.equal('b');
    await page.waitForSelector('#connection[data-state="live"]');
    expect(await page.isHidden('#stale')).to.equal(true);
    expect(await page.$('body[data-stale]')).to.equal(null);
    expect(pageErrors, 'errors in the page').to.deep.equal([]);
  });
});

describe('the status page in Chromium', function () {
  this.timeout(120_000);
  let etcd: EtcdCluster | undefined;
  let pool: TestPool | undefined;
  let profile: string | undefined;
  let browser: BrowserContext | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: run scripts/install-system-deps.sh browser (it installs Debian's chromium)`,
      );
    }
    etcd = await EtcdCluster.start({ size: 3 });
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: String(TTL_SECONDS) });
    await pool.start(['a', 'b', 'c']);
    expect(await pool.agreedLeader()).to.equal('a');
    ({ profile, browser, page } = await openChromium(pageErrors));
  });

  after(async () => {
    await browser?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await pool?.close();
    await etcd?.close();
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    await page
      ?.screenshot({ path: path.join(ARTIFACTS, 'status-page-failed.png'), fullPage: true })
      .catch(() => undefined);
    for (const member of pool?.members.values() ?? []) {
      console.log(
        `--- member ${member.id} ---\n${member.recentOutput().split('\n').slice(-30).join('\n')}`,
      );
    }
  });

  it('is served as one self-contained HTML document that names the leader, the members and the timeline without any script running', async () => {
    const res = await fetch(`${pool!.member('c').url}/`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/html/);
    expect(res.headers.get('content-security-policy')).to.include("default-src 'none'");
    const html = await res.text();

    expect(html).to.include('<strong class="leader-id">a</strong>');
    expect(html).to.match(/Served by member <strong class="self-id">c<\/strong>/);
    const members = between(html, '<table id="pool-default-members">', '</table>');
    for (const id of ['a', 'b', 'c']) expect(members).to.include(`<th scope="row">${id}`);
    expect(members).to.include('<caption');
    const timeline = between(html, '<table id="pool-default-changes">', '</table>');
    expect(timeline).to.match(/<td>a<\/td>/);
    expect(html).to.include('id="cost-etcd"');
    // A table says what it is in its caption: no heading right above it saying it again.
    expect(html).not.to.match(/<\/h[1-6]>\s*<div class="scroll"/);
    // Nothing is loaded from elsewhere: no src attributes, the only link is the empty icon.
    expect(html).not.to.match(/\ssrc=/);
    expect(html.match(/<link [^>]*>/g)).to.deep.equal(['<link rel="icon" href="data:,">']);
  });

  it('the leader is SIGTERMed, then its successor SIGKILLed: the open page shows each new leader in time, without a reload', async () => {
    const c = pool!.member('c');
    // Some work through c by both routes, for the cost section.
    for (const route of ['work', 'simple-work', 'simple-work']) {
      expect((await fetch(`${c.url}/${route}?payload=x`)).status).to.equal(200);
    }
    await page.goto(`${c.url}/`);
    // Calls, then the etcd requests made while serving them: one range per /simple-work call,
    // none for /work (c follows: its tickets come from the leader).
    expect(await page.textContent('#cost-work')).to.match(/simple-work\s*2\s*2\s*work\s*1\s*0$/);
    expect(await page.textContent('[data-pool="default"] .leader-id')).to.equal('a');
    await page.waitForSelector('#connection[data-state="live"]');
    let navigations = 0;
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });
    await page.evaluate(WATCH_LEADER);

    const stoppedAt = Date.now();
    const stopped = pool!.member('a').stop();
    const gracefulMs = (await leaderShown(page, 'b', 5_000)) - stoppedAt;
    console.log(`      measured: status page shows the new leader ${gracefulMs} ms after SIGTERM`);
    expect(gracefulMs).to.be.below(2_000);
    expect((await stopped).code).to.equal(0);
    expect(await page.textContent('#announcement')).to.include('the leader is b');

    const killedAt = Date.now();
    await pool!.member('b').kill();
    const crashMs = (await leaderShown(page, 'c', TTL_SECONDS * 1000 + 5_000)) - killedAt;
    console.log(
      `      measured: status page shows the new leader ${crashMs} ms after SIGKILL (TTL ${TTL_SECONDS} s)`,
    );
    expect(crashMs).to.be.below(TTL_SECONDS * 1000 + 2_000);

    expect(navigations, 'the page navigated').to.equal(0);
    expect(await page.evaluate('window.notReloaded'), 'the page was reloaded').to.equal(true);
    expect(await page.textContent('#connection')).to.equal('live');
    expect(await page.textContent('#announcement')).to.include('the leader is c');
    expect(await page.textContent('[data-pool="default"] .leader')).to.include('this member');

    // Newest first: c after a leaderless gap, the gap, then b — handed the claim by a in one
    // write, so no gap between them — then a.
    const rows = await page.evaluate<string[][]>(TIMELINE_ROWS);
    const leaders = rows.map((row) => row[1]);
    expect(leaders).to.deep.equal(['c', 'no leader', 'b', 'a']);
    // [time, leader, term, why, without a claim, outage]: c came milliseconds after the
    // claim vanished, but callers waited a whole TTL, since b was last alive one TTL before
    // etcd expired its lease; b took over at once, and callers waited milliseconds.
    expect(rows.map((row) => row[3])).to.deep.equal([
      'lease expired: crashed, frozen or cut off from etcd',
      'lease expired: crashed, frozen or cut off from etcd',
      'graceful stop',
      'leading when this member started',
    ]);
    expect(rows[0]![4]).to.match(/^\d+ ms$/);
    expect(rows[2]![4]).to.equal('no gap');
    expect(rows[2]![5]).to.match(/^\d+ ms$/);
    const crashOutage = /^(\d+\.\d\d) s$/.exec(rows[0]![5]!);
    expect(crashOutage, `outage ${rows[0]![5]}`).to.not.equal(null);
    expect(Number(crashOutage![1])).to.be.within(TTL_SECONDS, TTL_SECONDS + 2);
    console.log(
      `      measured: outage shown for the crash failover ${rows[0]![5]} (TTL ${TTL_SECONDS} s)`,
    );
    for (const row of rows) expect(row[0]).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$/);

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'status-page.png'), fullPage: true });
    // Readable on a 320 px phone: the tables scroll inside their own boxes, the page does not.
    await page.setViewportSize({ width: 320, height: 640 });
    expect(await page.evaluate('document.documentElement.scrollWidth')).to.be.at.most(320);
    await page.screenshot({ path: path.join(ARTIFACTS, 'status-page-320px.png'), fullPage: true });
    expect(pageErrors, 'errors in the page').to.deep.equal([]);

    // And a reader without JavaScript gets the same news on reload.
    const html = await (await fetch(`${c.url}/`)).text();
    expect(html).to.include('<strong class="leader-id">c</strong>');
  });
});

/**
 * When (ms since the epoch, page clock) the page first showed `id` as the leader. A function,
 * not a string: the page's Content-Security-Policy forbids eval, which a string would need.
 */
async function leaderShown(page: Page, id: string, timeoutMs: number): Promise<number> {
  const seen = await page.waitForFunction(
    (leader) => (globalThis as unknown as PageMarks).leaderSeenAt[leader],
    id,
    { timeout: timeoutMs },
  );
  return (await seen.jsonValue()) as number;
}

/** The part of `text` from `start` to the next `end`, or '' when `start` is absent. */
function between(text: string, start: string, end: string): string {
  const from = text.indexOf(start);
  if (from === -1) return '';
  return text.slice(from, text.indexOf(end, from) + end.length);
}

/** A status source the test drives: one pool of members a, b, c; `change` notifies. */
class FakeStatus implements StatusSource {
  leader = 'a';
  hostile = false;
  /** The member's process start: a new value is a restarted member. */
  startedAt = '2025-01-31T12:00:00.000Z';
  timeline: StatusSnapshot['pools'][number]['timeline'] = [
    {
      at: '2025-01-31T12:00:00.000Z',
      leader: 'a',
      term: 7,
      previous: null,
      cause: null,
      leaderlessMs: null,
      outageMs: null,
    },
  ];
  readonly listeners = new Set<() => void>();

  change(leader: string): void {
    this.leader = leader;
    for (const listener of this.listeners) listener();
  }

  snapshotNow(): StatusSnapshot {
    const member = (id: string, createRevision: number) => ({
      id,
      url:
        this.hostile && id === 'b'
          ? 'javascript:alert(2)'
          : `http://127.0.0.1:700${createRevision}`,
      memberKey: `key-${id}`,
      createRevision,
      startedAt: '2025-01-31T12:00:00.000Z',
      pid: 1,
      version: '0.1.0',
      weight: 1,
      labels: (this.hostile
        ? { '<script>alert(1)</script>': '"><img src=x onerror=alert(3)>' }
        : { zone: 'one' }) as Record<string, string>,
      leads: [],
      service: 'service-pool-leader',
      strategy: 'oldest',
      strategyDiffers: false,
      candidate: true,
      isLeader: id === this.leader,
    });
    return {
      member: {
        id: 'c',
        url: 'http://127.0.0.1:7003',
        version: '0.1.0',
        startedAt: this.startedAt,
      },
      takenAt: '2025-01-31T12:05:00.000Z',
      pools: [
        {
          pool: 'default',
          service: 'service-pool-leader',
          strategy: 'oldest',
          self: {
            id: 'c',
            memberKey: 'key-c',
            isLeader: this.leader === 'c',
            ready: true,
            leaseTimeLeftMs: 1500,
            service: 'service-pool-leader',
            strategy: 'oldest',
            strategyDiffers: false,
            candidate: true,
          },
          leader: {
            id: this.leader,
            url: 'http://127.0.0.1:7001',
            memberKey: `key-${this.leader}`,
            term: 7,
            unreachable: null,
          },
          term: 7,
          noLeaderReason: null,
          revision: 9,
          timeline: this.timeline,
          members: [member('a', 1), member('b', 2), member('c', 3)],
        },
      ],
      etcdRequests: { Range: 3 },
      workCalls: { work: 1 },
      workEtcdRequests: { work: 0 },
    };
  }

  snapshot(): Promise<StatusSnapshot> {
    return Promise.resolve(this.snapshotNow());
  }

  subscribe(onChange: () => void): () => void {
    this.listeners.add(onChange);
    return () => this.listeners.delete(onChange);
  }
}

interface ServerSentEvent {
  event: string;
  data: string;
  retry?: string | undefined;
}

/** Reads a text/event-stream answer event by event. */
class EventStreamReader {
  private text = '';
  private wake: (() => void) | undefined;
  private done = false;
  readonly ended: Promise<void>;

  private constructor(
    readonly headers: Headers,
    body: ReadableStream<Uint8Array>,
    private readonly controller: AbortController,
  ) {
    this.ended = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of body) {
          this.text += decoder.decode(chunk, { stream: true });
          this.wake?.();
        }
      } catch {
        // Closed by us.
      }
      this.done = true;
      this.wake?.();
    })();
  }

  static async open(url: string): Promise<EventStreamReader> {
    const controller = new AbortController();
    const res = await fetch(url, { signal: controller.signal });
    expect(res.status).to.equal(200);
    return new EventStreamReader(res.headers, res.body!, controller);
  }

  /** The next event, comments skipped; a `retry:` field alone is merged into the next one. */
  async next(timeoutMs = 1000): Promise<ServerSentEvent> {
    const deadline = Date.now() + timeoutMs;
    let retry: string | undefined;
    for (;;) {
      const end = this.text.indexOf('\n\n');
      if (end !== -1) {
        const block = this.text.slice(0, end);
        this.text = this.text.slice(end + 2);
        const fields = new Map(
          block
            .split('\n')
            .filter((line) => !line.startsWith(':'))
            .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
        );
        retry = fields.get('retry') ?? retry;
        if (!fields.has('data')) continue;
        return { event: fields.get('event') ?? 'message', data: fields.get('data')!, retry };
      }
      if (this.done) throw new Error('the event stream ended');
      if (Date.now() > deadline) throw new Error(`no event within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 10);
      });
    }
  }

  /** The snapshot of the next `status` event (skipping its `view`). */
  async nextStatus(): Promise<StatusSnapshot> {
    for (;;) {
      const event = await this.next();
      if (event.event === 'status') return JSON.parse(event.data) as StatusSnapshot;
    }
  }

  buffered(): string {
    return this.text;
  }

  close(): void {
    this.controller.abort();
  }
}

async function eventuallyTrue(probe: () => boolean, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
