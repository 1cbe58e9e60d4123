/**
 * Time as an adapter sees it: a clock and one-shot timers. The core reads no clock; adapters take
 * one injected (the Lambda handlers' visibility lease, the embedded engine's durable waits), so
 * tests play minutes or days out at their real ratios without waiting them.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
