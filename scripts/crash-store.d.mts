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
}

export function runCrashSuite(options: {
  cycles: number;
  dir?: string;
  seed?: number;
  fiu?: boolean;
  maxKillMs?: number;
  log?: (line: string) => void;
}): Promise<CrashSuiteResult>;
