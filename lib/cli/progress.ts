/**
 * Long operations (import, export, encrypt, copy, put): a progress bar on a terminal, plain progress lines on
 * a pipe only with `--progress`, and Ctrl-C.
 *
 * The first SIGINT aborts the operation's AbortSignal; the operation stops between chunks, keeping every chunk
 * it finished, and the command exits 130 saying how to resume. A second SIGINT exits at once.
 */
import cliProgress from 'cli-progress';

import type { CliContext } from './context.js';
import { EXIT_INTERRUPTED, InterruptedError } from './errors.js';
import { formatBytes } from './parse.js';

/** What the bar shows. `processed / total` is the completed fraction. */
export interface ProgressView {
  /** Bytes of data moved (written, rewritten, exported). */
  moved: number;
  /** Bytes passed over without I/O (unallocated, zero runs, already done). */
  skipped: number;
  processed: number;
  total: number;
}

export interface LongRun {
  readonly signal: AbortSignal;
  update(view: ProgressView): void;
}

interface Display {
  update(view: ProgressView, rate: number, etaSeconds: number | null): void;
  stop(): void;
}

const PLAIN_INTERVAL_MS = 1000;
const BAR_FPS = 10;
const MS_PER_S = 1000;

function etaText(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function barDisplay(label: string): Display {
  const bar = new cliProgress.SingleBar({
    format: `${label} [{bar}] {percentage}% | {moved} moved | {skipped} skipped | {rate}/s | ETA {etaText}`,
    stream: process.stderr,
    barsize: 24,
    hideCursor: true,
    fps: BAR_FPS,
    clearOnComplete: false,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(view, rate, eta) {
      const payload = { moved: formatBytes(view.moved), skipped: formatBytes(view.skipped), rate: formatBytes(Math.round(rate)), etaText: etaText(eta) };
      const total = Math.max(view.total, 1);
      if (!started) {
        bar.start(total, Math.min(view.processed, total), payload);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(Math.min(view.processed, total), payload);
      }
    },
    stop() {
      if (!started) return;
      bar.stop();
      process.stderr.write('\n');
    },
  };
}

function lineDisplay(ctx: CliContext, label: string): Display {
  let last = 0;
  let pending: { view: ProgressView; rate: number; eta: number | null } | undefined;
  const print = (view: ProgressView, rate: number, eta: number | null): void => {
    const pct = view.total > 0 ? Math.floor((view.processed / view.total) * 100) : 100;
    ctx.stderr.write(`${label}: ${pct}% ${formatBytes(view.moved)} moved, ${formatBytes(view.skipped)} skipped, ${formatBytes(Math.round(rate))}/s, ETA ${etaText(eta)}\n`);
  };
  return {
    update(view, rate, eta) {
      const now = Date.now();
      pending = { view, rate, eta };
      if (now - last < PLAIN_INTERVAL_MS) return;
      last = now;
      print(view, rate, eta);
      pending = undefined;
    },
    stop() {
      if (pending !== undefined) print(pending.view, pending.rate, pending.eta);
    },
  };
}

/** Whether a bar or progress lines are shown. */
export function progressMode(ctx: CliContext): 'bar' | 'lines' | 'none' {
  if (ctx.quiet) return 'none';
  if (ctx.stderr.isTTY && !ctx.json) return 'bar';
  return ctx.forceProgress ? 'lines' : 'none';
}

/**
 * Run `body` with progress display and Ctrl-C handling. `resume` is the command line that continues the work
 * after an interruption.
 */
export async function runLong<T>(ctx: CliContext, label: string, resume: string, body: (run: LongRun) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const mode = progressMode(ctx);
  const display: Display | undefined = mode === 'bar' ? barDisplay(label) : mode === 'lines' ? lineDisplay(ctx, label) : undefined;
  const started = Date.now();
  let last: ProgressView = { moved: 0, skipped: 0, processed: 0, total: 0 };
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    controller.abort(new InterruptedError(`${label} interrupted`));
  };
  process.on('SIGINT', onSigint);
  const run: LongRun = {
    signal: controller.signal,
    update(view) {
      last = view;
      const seconds = (Date.now() - started) / MS_PER_S;
      const rate = seconds > 0 ? view.moved / seconds : 0;
      const pace = seconds > 0 ? view.processed / seconds : 0;
      const eta = pace > 0 ? (view.total - view.processed) / pace : null;
      display?.update(view, rate, eta);
    },
  };
  try {
    return await body(run);
  } catch (error) {
    if (controller.signal.aborted) {
      throw new InterruptedError(`${label} stopped by Ctrl-C after ${formatBytes(last.moved)} moved; ` +
        `finished chunks are kept; resume with: ${resume}`);
    }
    throw error;
  } finally {
    display?.stop();
    process.off('SIGINT', onSigint);
  }
}
