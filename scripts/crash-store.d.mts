export interface CrashSuiteResult {
  cycles: number;
  seed: number;
  dir: string;
  durationMs: number;
  violations: string[];
  acked: number;
  inFlightApplied: number;
  inFlightDropped: number;
  failures: number;
  refusedAfterFailure: number;
  /** Fills acknowledged whole; their batches acknowledged by onBatch (`K` lines). */
  fillsAcked: number;
  fillBatchesAcked: number;
  /** Fills in flight at a kill, found cut at an extent boundary; of them, cut past the last acknowledged batch. */
  fillsCut: number;
  fillsCutPastAck: number;
}

export function runCrashSuite(options: {
  cycles: number;
  dir?: string;
  seed?: number;
  fiu?: boolean;
  maxKillMs?: number;
  log?: (line: string) => void;
}): Promise<CrashSuiteResult>;
