/**
 * Azurite (the `azurite` devDependency) as a real server for the remote tests: the blob service only, on
 * 127.0.0.1 and a free port, data in a temporary location, stopped by its PID in afterAll and on exit.
 * Storage accounts come from AZURITE_ACCOUNTS, so each vdcrypt account maps to its own Azure account.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import type { AzureAccountConfig } from '../../lib/remote/index.js';

const HOST = '127.0.0.1';
/** Fixed test keys (base64 of 64 bytes), never real credentials. */
const KEY = Buffer.alloc(64, 7).toString('base64');

export interface AzuriteServer {
  port: number;
  location: string;
  accounts: string[];
  /** Connection settings for AzurePageStore, one per account. */
  configs(): Record<string, AzureAccountConfig>;
  connectionString(account: string): string;
  /** SIGKILL the server (a crash), leaving its location as it was. */
  kill(): Promise<void>;
  /** SIGTERM: Azurite saves its metadata and exits (a clean stop). */
  terminate(): Promise<void>;
  /** Start it again on the same port and location. */
  restart(): Promise<void>;
  /** Stop it and remove its location. */
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr !== null ? addr.port : 0));
    });
  });
}

function azuriteMain(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
}

async function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
    s.connect(port, HOST);
  });
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) if (child.pid !== undefined) try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
});

export async function startAzurite(accounts: string[] = ['acct', 'nobody']): Promise<AzuriteServer> {
  const location = mkdtempSync(join(tmpdir(), 'vdcrypt-azurite-'));
  const port = await freePort();
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const proc = spawn(process.execPath, [azuriteMain(), '--blobHost', HOST, '--blobPort', String(port), '--location', location,
      '--silent', '--skipApiVersionCheck', '--loose', '--disableProductStyleUrl', '--disableTelemetry'], {
      env: { ...process.env, AZURITE_ACCOUNTS: accounts.map((a) => `${a}:${KEY}`).join(';') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    child = proc;
    const deadline = Date.now() + 30_000;
    while (!(await answers(port))) {
      if (proc.exitCode !== null) throw new Error(`azurite exited with ${proc.exitCode}: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`azurite did not answer on ${HOST}:${port} within 30 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (proc?.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    process.kill(proc.pid, sig);
    await exited;
  };
  const kill = (): Promise<void> => signal('SIGKILL');

  await launch();
  const connectionString = (account: string): string =>
    `DefaultEndpointsProtocol=http;AccountName=${account};AccountKey=${KEY};BlobEndpoint=http://${HOST}:${port}/${account};`;
  return {
    port, location, accounts,
    configs: () => Object.fromEntries(accounts.map((a) => [a, { connectionString: connectionString(a) }])),
    connectionString,
    kill,
    terminate: () => signal('SIGTERM'),
    restart: launch,
    async stop() {
      await kill();
      rmSync(location, { recursive: true, force: true });
    },
  };
}
