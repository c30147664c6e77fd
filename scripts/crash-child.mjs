// Shared by the crash suites: run a worker process, collect its stdout lines, and SIGKILL it `killAfterMs`
// after it prints `R` (ready). A partial last line is kept; the suites' parsers ignore what they cannot read.
import { spawn } from 'node:child_process';

export function runKilledChild(command, args, killAfterMs) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = [];
    let buf = '';
    let stderr = '';
    let timer;
    child.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (line === 'R' && timer === undefined) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (buf.length > 0) lines.push(buf);
      resolve({ lines, code, signal, stderr });
    });
  });
}
