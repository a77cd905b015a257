// An "orders" service that embeds a pool member. Run several copies on one etcd: any copy
// accepts orders, the pool's leader numbers them (numbers never repeat, even across
// failovers) and records the last one in etcd with a fenced write, which only commits while
// that copy still leads.
//
//   npm run build
//   ETCD_ENDPOINTS=http://127.0.0.1:2379 MEMBER_ID=a PORT=9001 node examples/orders-service.mjs
//   ETCD_ENDPOINTS=http://127.0.0.1:2379 MEMBER_ID=b PORT=9002 node examples/orders-service.mjs
//   curl -s -XPOST localhost:9002/work -H 'content-type: application/json' -d '{"payload":{"item":"tea"}}'
//   curl -s localhost:9002/orders/last
import express from 'express';
import { jsonReplacer, loadConfig, PoolMember } from 'service-pool-leader';

const LAST_ORDER_KEY = '/orders-example/last-order';

const config = loadConfig();
const app = express();

/**
 * The leader's work: give the order a number and record it — only while still leading. The
 * number and the term are bigints, exact however large; they go out as decimal strings
 * (jsonReplacer here, and the member's /work answer does the same).
 */
const takeOrder = async ({ payload }, ctx) => {
  const order = {
    number: await ctx.nextTicket(),
    item: payload?.item ?? null,
    takenBy: ctx.memberId,
    term: ctx.term,
  };
  const record = JSON.stringify(order, jsonReplacer);
  const recorded = await ctx.fencedWrite(ctx.etcd.put(LAST_ORDER_KEY).value(record));
  return { ...order, recorded };
};

// The service's own routes come first; the pool's (/work, /pool, /healthz, /readyz, /metrics)
// are mounted after them by PoolMember.start.
app.get('/orders/last', async (_req, res) => {
  const last = await member.etcd.get(LAST_ORDER_KEY).string();
  res.json(last === null ? null : JSON.parse(last));
});

// `service` names what this pool runs: a member of another service that finds the pool (same
// etcd, ETCD_PREFIX and POOL) is refused with a message saying so, instead of taking orders.
const member = await PoolMember.start({ config, service: 'orders', handler: takeOrder, app });

member.election.on('leaderChanged', (leader) =>
  console.log(JSON.stringify({ msg: 'orders are now numbered by', leader: leader?.id ?? null })),
);
process.once('SIGTERM', () => void member.shutdown().then((clean) => process.exit(clean ? 0 : 1)));
process.once('SIGINT', () => void member.shutdown().then((clean) => process.exit(clean ? 0 : 1)));
