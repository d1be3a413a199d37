import { readFileSync } from 'node:fs';

/** The Spillway version, from package.json (which ships next to both src/ and dist/). */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
