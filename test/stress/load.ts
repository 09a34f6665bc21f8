/**
 * The load generator of the stress run, in its own process so the stress script can start it at a lower
 * CPU priority: on a 2-core machine a load generator at full priority takes the core the gateway's event
 * loop needs, which a real remote client would not. Reads its options as JSON from argv, prints the
 * autocannon result as JSON.
 */
import autocannon from 'autocannon';

const opts = JSON.parse(process.argv[2]) as autocannon.Options;
const result = await autocannon(opts);
process.stdout.write(JSON.stringify(result));
