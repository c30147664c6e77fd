export interface BlobCrashResult {
  cycles: number;
  seed: number;
  violations: string[];
  seconds: number;
  acked: number;
  inFlightApplied: number;
  inFlightDropped: number;
  inFlightPartial: number;
  encryptedPagesSeen: number;
  plaintextPagesSeen: number;
}
export function runBlobCrashSuite(options: { cycles: number; seed?: number; maxKillMs?: number; log?: (line: string) => void }): Promise<BlobCrashResult>;
