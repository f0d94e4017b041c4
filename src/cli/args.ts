// Option parsers shared by the commands.
import { InvalidArgumentError } from 'commander';

export function parseNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} expects a number, got '${v}'`);
    return n;
  };
}

/** A whole number of at least `min` (batch sizes, thread and worker counts, iterations). */
export function parseCount(name: string, min = 1) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} expects a whole number${min > 0 ? ` of at least ${min}` : ' (0 or more)'}, got '${v}'`);
    }
    return n;
  };
}

export function parseIntList(name: string) {
  return (v: string): number[] => {
    const out = v.split(',').map((s) => Number(s.trim()));
    if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new InvalidArgumentError(`${name} expects a comma-separated list of positive integers, got '${v}'`);
    }
    return out;
  };
}
