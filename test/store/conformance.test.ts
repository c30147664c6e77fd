/** The conformance suite against both stores. */
import { describeConformance } from './conformance.js';
import { describeFillConformance } from './conformance-fill.js';
import { localFixture, memoryFixture } from './helpers.js';

describeConformance('MemoryPageStore', memoryFixture);
describeConformance('LocalPageStore', () => localFixture());
describeFillConformance('MemoryPageStore', memoryFixture, { batchesExcludeWriters: false });
describeFillConformance('LocalPageStore', () => localFixture(), { batchesExcludeWriters: true });
