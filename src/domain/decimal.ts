/**
 * Numbers as settings and command lines take them (the environment's variables, the tools'
 * options): decimal digits only, read as written. What Number() would also take is refused: hex
 * (0x10), binary and octal prefixes, exponents (1e3), a sign (+10), spaces around the digits,
 * Infinity, and the empty string (which it reads as 0). Leading zeros are decimal: 010 is ten.
 */

/** A whole number in decimal digits (5000, 010), or undefined. */
export function decimalInteger(text: string): number | undefined {
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

/** A number in decimal digits with an optional fraction after a point (2, 0.5, .5), or undefined. */
export function decimalNumber(text: string): number | undefined {
  return /^(\d+(\.\d+)?|\.\d+)$/.test(text) ? Number(text) : undefined;
}
