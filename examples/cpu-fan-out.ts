/**
 * CPU-bound children run truly in parallel: each on a worker thread locally (one per core), each on
 * its own Lambda on AWS.
 *
 *   npx aloft run examples/cpu-fan-out.ts primesInRanges 8
 */
import { TaskEnvironment } from "aloft";

const env = new TaskEnvironment({ name: "cpu", memoryMiB: 2048, concurrency: 50 });

/** Counts primes in [from, to) by trial division: pure CPU. */
export const countPrimes = env.task(function countPrimes(from: number, to: number) {
  let count = 0;
  for (let n = Math.max(2, from); n < to; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
});

export const primesInRanges = env.task(async function primesInRanges(parts: number, size = 400_000) {
  const counts = await Promise.all(
    Array.from({ length: parts }, (_, i) => countPrimes.aio(i * size, (i + 1) * size)),
  );
  return { parts, primes: counts.reduce((a, b) => a + b, 0) };
});
