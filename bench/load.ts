/**
 * The bench's load generator, in its own process (the bench starts it at nice 10, so on two cores it does
 * not take the CPU a remote client would not). Closed loop: `connections` requests in flight. Open loop:
 * `overallRate` requests/s spread over the connections. Reads its options as JSON from argv and prints
 * { requests, errors, timeouts, non2xx, seconds, p50, p95, p99 } as JSON; the percentiles are exact, from
 * every response time (autocannon's own summary has no p95).
 */
import autocannon from 'autocannon';

const opts = JSON.parse(process.argv[2]) as autocannon.Options;
// autocannon's own idReplacement puts a 24-character hyperid (e.g. "4io6NKvURjKpJeHyCKVu/w/0") in place of
// [<id>]: some 15-20 extra word pieces per text, which the ceiling (given `n`) never sees. A counter keeps
// every request unique with the same text the ceiling runs.
if (opts.idReplacement && typeof opts.body === 'string') {
  const template = opts.body;
  let n = 0;
  delete opts.idReplacement;
  delete opts.body;
  opts.requests = [{ setupRequest: (req) => ({ ...req, body: template.replaceAll('[<id>]', String(n++)) }) }];
}
const latencies: number[] = [];
let non2xx = 0;
const result = await new Promise<autocannon.Result>((resolve, reject) => {
  const instance = autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  instance.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) latencies.push(ms);
    else non2xx++;
  });
});
latencies.sort((a, b) => a - b);
const pct = (p: number) => (latencies.length ? Number(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(1)) : NaN);
process.stdout.write(
  JSON.stringify({ requests: latencies.length, errors: result.errors, timeouts: result.timeouts, non2xx, seconds: result.duration, p50: pct(50), p95: pct(95), p99: pct(99) }),
);
