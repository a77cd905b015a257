/**
 * The member's environment variables as a person reads them: each one's meaning and default,
 * described once. `serve --help` prints this table; config.ts parses the same names (a test
 * keeps the two lists equal).
 */

import { DEFAULT_SERVICE_NAME, LOG_LEVELS, STRATEGIES } from './config.js';

/** Where a default depends on other variables, `defaultText` says how it is derived. */
export interface VariableDoc {
  name: string;
  description: string;
  defaultText: string;
}

export const VARIABLES: readonly VariableDoc[] = [
  {
    name: 'SERVICE_NAME',
    description:
      'The service this member runs. A pool admits members of one service: a member of another finds the pool taken, says so and exits 1 (give each service its own POOL or ETCD_PREFIX).',
    defaultText: DEFAULT_SERVICE_NAME,
  },
  { name: 'POOL', description: 'Name of the pool this member joins.', defaultText: 'default' },
  {
    name: 'POOLS',
    description:
      'Comma-separated pools this member joins, each with its own leader; /work means the first. Overrides POOL.',
    defaultText: 'POOL',
  },
  {
    name: 'ELECTION_STRATEGY',
    description: `Who leads: ${STRATEGIES.join(', ')}. All members of a pool must use the same.`,
    defaultText: 'oldest',
  },
  {
    name: 'WEIGHT',
    description:
      'This member\'s weight; the weighted strategy prefers the biggest ("the big machine").',
    defaultText: '1',
  },
  { name: 'LABELS', description: "This member's labels, k=v,k2=v2.", defaultText: 'none' },
  {
    name: 'AVOID_LABELS',
    description: 'avoid strategy: prefer members without these labels (k=v, or k for any value).',
    defaultText: 'none',
  },
  {
    name: 'AVOID_POOLS',
    description: 'avoid strategy: prefer members not already leading these pools.',
    defaultText: 'none',
  },
  {
    name: 'STRATEGY_MODULE',
    description: 'module strategy: a JavaScript file exporting selectLeader(members, context).',
    defaultText: 'unset',
  },
  {
    name: 'PREEMPT_AFTER_MS',
    description:
      'weighted, avoid, module: a better member takes over once preferred this long (hold-down against flapping).',
    defaultText: '5000',
  },
  {
    name: 'CANDIDATE',
    description:
      'false: this member never leads (an edge pod, a small machine); it registers, routes work to the leader and shows in /pool. Every strategy passes it over.',
    defaultText: 'true',
  },
  {
    name: 'MEMBER_ID',
    description: "This instance's stable name, shown as performedBy and used for restart takeover.",
    defaultText: 'POD_NAME, else <hostname>-<pid>',
  },
  {
    name: 'POD_NAME',
    description: 'Set by Kubernetes (downward API); the default MEMBER_ID.',
    defaultText: 'unset',
  },
  {
    name: 'POD_IP',
    description: 'Set by Kubernetes (downward API); the host of the default ADVERTISE_URL.',
    defaultText: 'unset',
  },
  { name: 'HOST', description: 'Address the HTTP server binds to.', defaultText: '0.0.0.0' },
  { name: 'PORT', description: 'HTTP port.', defaultText: '8080' },
  {
    name: 'ADVERTISE_URL',
    description: 'URL the other members use to forward work to this one.',
    defaultText: 'http://<POD_IP or 127.0.0.1>:<PORT>',
  },
  {
    name: 'ETCD_ENDPOINTS',
    description: 'Comma-separated etcd client URLs.',
    defaultText: 'http://127.0.0.1:2379',
  },
  {
    name: 'ETCD_PREFIX',
    description: 'Key prefix under which all pools live.',
    defaultText: '/service-pool-leader',
  },
  {
    name: 'ETCD_CALL_TIMEOUT_MS',
    description: 'Deadline of every etcd request; keep it well under the lease TTL.',
    defaultText: '1500',
  },
  {
    name: 'ETCD_MEMBERSHIP_CHECK_MS',
    description:
      "How often members read etcd's member list: when ETCD_ENDPOINTS name etcd's members, they then dial the current members (one added later is used, a removed one dropped), and a difference from ETCD_ENDPOINTS is logged with the URLs to list.",
    defaultText: '30000',
  },
  {
    name: 'ETCD_CA_FILE',
    description: 'PEM CA bundle that signs the etcd server certificates; enables TLS.',
    defaultText: 'unset (plain HTTP)',
  },
  {
    name: 'ETCD_CERT_FILE',
    description: 'PEM client certificate for etcd (with ETCD_KEY_FILE and ETCD_CA_FILE).',
    defaultText: 'unset',
  },
  {
    name: 'ETCD_KEY_FILE',
    description: 'PEM private key of the client certificate.',
    defaultText: 'unset',
  },
  {
    name: 'ETCD_USERNAME',
    description: 'etcd user, when etcd has authentication enabled (with ETCD_PASSWORD).',
    defaultText: 'unset',
  },
  {
    name: 'ETCD_PASSWORD',
    description: 'Password of ETCD_USERNAME; never logged.',
    defaultText: 'unset',
  },
  {
    name: 'FORWARD_TOKEN',
    description:
      'Shared secret between members: forwards carry it and a forward without it is refused (401). At least 16 characters.',
    defaultText: 'unset (forwards are not authenticated)',
  },
  {
    name: 'ADMIN_TOKEN',
    description:
      'Bearer token for the admin routes (resign). Without it they are disabled. At least 16 characters.',
    defaultText: 'unset (admin routes disabled)',
  },
  {
    name: 'LEASE_TTL_SECONDS',
    description: 'Lease TTL: how long a crashed member stays registered (etcd floor: 2).',
    defaultText: '5',
  },
  {
    name: 'LEASE_SAFETY_MARGIN_MS',
    description: 'The leader stops acting this long before its local lease deadline.',
    defaultText: '500',
  },
  {
    name: 'RECONCILE_INTERVAL_MS',
    description: 'Period of the reconciling read that catches a silently stalled watch.',
    defaultText: '3000',
  },
  {
    name: 'LEADERLESS_WAIT_MS',
    description: 'How long /work waits for a leader before answering 503.',
    defaultText: '5000',
  },
  {
    name: 'FORWARD_TIMEOUT_MS',
    description: 'Timeout of one forward from a follower to the leader.',
    defaultText: '5000',
  },
  {
    name: 'FORWARD_MAX_HOPS',
    description: 'Most forwards one request may take before it is refused.',
    defaultText: '3',
  },
  {
    name: 'MAX_PENDING_WORK',
    description:
      'Work requests this member holds or has in flight at once (waiting for a leader, forwarded, executing); beyond it, 503 OVERLOADED at once. Keep it well under the open-file limit: each takes a client socket and may take one to the leader.',
    defaultText: '1000',
  },
  {
    name: 'SHUTDOWN_TIMEOUT_MS',
    description: 'Upper bound of graceful shutdown on SIGTERM/SIGINT.',
    defaultText: '10000',
  },
  {
    name: 'SHUTDOWN_LINGER_MS',
    description:
      'After releasing leadership, keep serving this long (answering forwards "not leader") so peers stop using our connections before they close.',
    defaultText: '300',
  },
  {
    name: 'TICKET_BLOCK_SIZE',
    description: 'Tickets reserved in etcd per fenced write.',
    defaultText: '1000',
  },
  {
    name: 'LOG_LEVEL',
    description: `Log level: ${LOG_LEVELS.join(', ')}.`,
    defaultText: 'info',
  },
  {
    name: 'LOG_FORMAT',
    description: 'json (one object per line) or pretty (readable, for a terminal).',
    defaultText: 'json',
  },
];

/** The help text of `serve --help`: every variable with its default. */
export function describeVariables(): string {
  const width = Math.max(...VARIABLES.map((v) => v.name.length));
  return VARIABLES.map(
    (v) => `  ${v.name.padEnd(width)}  ${v.description} (default: ${v.defaultText})`,
  ).join('\n');
}
