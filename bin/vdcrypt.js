#!/usr/bin/env node
// The vdcrypt command. The TypeScript sources compile to dist/ on `npm install` (the prepare script).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';

// libuv's pool has 4 threads unless told otherwise, which would cap multi-core encryption at 4 cores. It is
// sized when first used, so this must happen before any asynchronous file or crypto work.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism()));

const entry = new URL('../dist/lib/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('vdcrypt: the compiled sources are missing; run `npm install` (or `npm run build`) first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
