/**
 * GET /metrics: the pool's metrics and Node's process metrics, merged into one Prometheus
 * exposition.
 */
import express from 'express';
import { Registry } from 'prom-client';
import type { PoolMetrics } from '../metrics/metrics.js';

export function metricsRoute(metrics: PoolMetrics, nodeMetrics: Registry): express.Router {
  const router = express.Router();
  const merged = () => Registry.merge([metrics.registry, nodeMetrics]);
  router.get('/metrics', async (_req, res) => {
    const registry = merged();
    res.set('Content-Type', registry.contentType).send(await registry.metrics());
  });
  return router;
}
