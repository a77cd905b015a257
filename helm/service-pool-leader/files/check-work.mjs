// The `helm test` check: GET /work through the Service and verify the answer's JSON. It runs
// in the chart's own image (node, no shell), and test/chart runs it against real members.
// WORK_URL is set by the test pod; retries cover members that are still becoming ready.
const url = process.env.WORK_URL;
const attempts = Number(process.env.ATTEMPTS ?? 15);

function problems(status, body) {
  const found = [];
  if (status !== 200) found.push(`status ${status}, expected 200`);
  if (body?.payload !== 'helm-test') found.push('payload is not the one sent');
  if (!Number.isInteger(body?.ticket) || body.ticket < 1) found.push('no ticket');
  if (typeof body?.performedBy !== 'string' || body.performedBy === '') {
    found.push('no performedBy');
  }
  if (body?.leader !== body?.performedBy) found.push('leader is not the member that did it');
  if (!Number.isInteger(body?.term) || body.term < 1) found.push('no term');
  if (!Array.isArray(body?.via) || body.via.at(-1) !== body?.performedBy) {
    found.push('via does not end at the leader');
  }
  return found;
}

let last = 'no answer';
for (let attempt = 1; attempt <= attempts; attempt++) {
  try {
    const response = await globalThis.fetch(url, {
      signal: globalThis.AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const found = problems(response.status, body);
    if (found.length === 0) {
      console.log(`ok: ${text}`);
      process.exit(0);
    }
    last = `${found.join('; ')}: ${text}`;
  } catch (error) {
    last = String(error);
  }
  console.log(`attempt ${attempt}/${attempts}: ${last}`);
  await new Promise((resolve) => setTimeout(resolve, 2000));
}
console.error(`GET ${url} failed: ${last}`);
process.exit(1);
