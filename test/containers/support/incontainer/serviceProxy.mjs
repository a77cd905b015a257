// A Service's virtual IP, as kube-proxy gives it: one TCP listener per Service port (SERVICE_PORTS,
// comma-separated), each new connection sent to the next ready endpoint in turn. The endpoints are
// read from the JSON file named by argv[2] ({"<port>": [["<pod ip>", <target port>], ...]}), which
// the rehearsal rewrites whenever a pod turns ready, not ready or terminating. Runs in a container
// of the Node.js image, with no dependencies; stops on SIGTERM.
import fs from 'node:fs';
import net from 'node:net';

const file = process.argv[2];
let endpoints = {};
const load = () => {
  try {
    endpoints = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    // a rewrite in progress: the next poll reads it whole
  }
};
load();
fs.watchFile(file, { interval: 50 }, load);

const servers = process.env.SERVICE_PORTS.split(',').map((port) => {
  let next = 0;
  const server = net.createServer((client) => {
    const targets = endpoints[port] ?? [];
    if (targets.length === 0) {
      client.resetAndDestroy();
      return;
    }
    const [host, targetPort] = targets[next++ % targets.length];
    // An endpoint that does not accept within 3 s (a pod cut off the network or gone with its
    // node, before its readiness probe caught it): the client's connection is reset, as no
    // pod ever had it. Nothing was sent.
    const upstream = net.connect({ host, port: targetPort, timeout: 3000 });
    upstream.once('connect', () => upstream.setTimeout(0));
    upstream.once('timeout', () => {
      upstream.destroy();
      client.resetAndDestroy();
    });
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  server.listen(Number(port));
  return server;
});
process.on('SIGTERM', () => {
  fs.unwatchFile(file);
  for (const server of servers) server.close();
  process.exit(0);
});
