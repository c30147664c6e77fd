/** The page-store conformance suite (test/store/conformance.ts) against AzurePageStore on a real Azurite. */
import { afterAll, beforeAll } from 'vitest';

import { describeConformance } from '../store/conformance.js';
import { type AzuriteServer, startAzurite } from './azurite.js';
import { azureFixture } from './helpers.js';

let server: AzuriteServer;
beforeAll(async () => { server = await startAzurite(); });
afterAll(async () => { await server.stop(); });

describeConformance('AzurePageStore (Azurite)', azureFixture(() => server));
