/** The status page (GET /) and its live event stream (GET /events). */
import express from 'express';
import type { StatusSource } from './status.js';

export function statusRoutes(source: StatusSource): express.Router {
  const router = express.Router();
  router.get('/', async (_req, res) => {
    res.json(await source.snapshot());
  });
  return router;
}
