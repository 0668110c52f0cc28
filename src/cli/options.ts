import { InvalidArgumentError } from 'commander';

/** A non-negative integer option value, or a clear error naming the option. */
export function parseInteger(value: string, option: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new InvalidArgumentError(`${option} must be a whole number, got '${value}'`);
  return Number(value);
}
