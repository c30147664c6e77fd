/** The conformance suite against both stores. */
import { describeConformance } from './conformance.js';
import { localFixture, memoryFixture } from './helpers.js';

describeConformance('MemoryPageStore', memoryFixture);
describeConformance('LocalPageStore', () => localFixture());
