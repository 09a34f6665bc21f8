/**
 * The bench's load generator, in its own process (the bench starts it at nice 10, so on two cores it does
 * not take the CPU a remote client would not). Closed loop: `connections` requests in flight. Open loop:
 * `overallRate` requests/s spread over the connections. Reads its options as JSON from argv and prints
 * { requests, errors, timeouts, non2xx, seconds, p50, p95, p99 } as JSON; the percentiles are exact, from
 * every response time (autocannon's own summary has no p95).
 */
import autocannon from 'autocannon';

const opts = JSON.parse(process.argv[2]) as autocannon.Options;
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
