/**
 * The status page (`GET /`, HTML, see statusHtml.ts) and its live event stream
 * (`GET /events`, see events.ts), both read from a `StatusSource`.
 */
import express from 'express';
import { EventStreams } from './events.js';
import type { StatusSource } from './status.js';
import { STATUS_PAGE_CSP, statusDocument } from './statusHtml.js';

export interface StatusRouter extends express.Router {
  /**
   * Ends every open event stream and answers later `GET /events` with 503. Call it when
   * graceful shutdown begins: the drain waits for in-flight requests, and an event stream is
   * one until it ends.
   */
  endAll(): void;
}

export function statusRoutes(source: StatusSource): StatusRouter {
  const router = express.Router();
  const streams = new EventStreams(source);

  router.get('/', async (_req, res) => {
    const html = statusDocument(await source.snapshot());
    res
      .set({
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
        'Content-Security-Policy': STATUS_PAGE_CSP,
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
      })
      .send(html);
  });

  // Express answers HEAD with the GET route: that would open a stream with no body, forever.
  router.head('/events', (_req, res) => {
    res.status(200).type('text/event-stream').end();
  });
  router.get('/events', (_req, res) => {
    streams.serve(res);
  });

  return Object.assign(router, { endAll: () => streams.endAll() });
}
