// Checking the values of `tvs lab` options: each error names the flag and quotes the value, and is
// a LabOptionError so the command answers it with its usage and exit status 2.

export class LabOptionError extends Error {
  override name = "LabOptionError";
}

export function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isInteger(n) || n < 1)
    throw new LabOptionError(`${flag} "${v}" must be a positive integer`);
  return n;
}

export function nonNegInt(v: string, flag: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isInteger(n))
    throw new LabOptionError(`${flag} value "${v}" must be a non-negative integer`);
  return n;
}

/** The string value of an option the command declared with a default. */
export function str(values: Record<string, string | boolean | undefined>, name: string): string {
  const v = values[name];
  if (typeof v !== "string") throw new LabOptionError(`Option --${name} needs a value`);
  return v;
}
