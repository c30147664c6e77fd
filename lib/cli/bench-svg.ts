/**
 * The benchmark's comparison as an SVG bar chart: one bar per row of the XTS table that bench/run.js prints
 * (its Markdown), the ratio to `openssl speed -bytes 512`, with the 1x line (parity) and the 2x goal.
 */
import { escapeXml } from './map/svg.js';

export interface BenchRow {
  label: string;
  gbps: number;
  ratio: number;
}

const RATIO_COLUMN = '× openssl -bytes 512';

/** Rows of the first Markdown table whose header has the ratio column. */
export function parseBenchTable(markdown: string): BenchRow[] {
  const lines = markdown.split('\n');
  const headerAt = lines.findIndex((l) => l.startsWith('|') && l.includes(RATIO_COLUMN));
  if (headerAt < 0) return [];
  const header = splitRow(lines[headerAt] ?? '');
  const col = (name: string): number => header.indexOf(name);
  const rows: BenchRow[] = [];
  for (const line of lines.slice(headerAt + 2)) {
    if (!line.startsWith('|')) break;
    const cells = splitRow(line);
    const ratio = Number(cells[col(RATIO_COLUMN)]);
    const gbps = Number(cells[col('GB/s')]);
    if (!Number.isFinite(ratio)) continue;
    const label = [cells[col('group')], cells[col('case')], cells[col('impl')]].filter((c) => c !== undefined && c !== '').join(' · ');
    rows.push({ label, gbps, ratio });
  }
  return rows;
}

function splitRow(line: string): string[] {
  return line.split('|').slice(1, -1).map((c) => c.trim());
}

const BAR_HEIGHT = 18;
const BAR_GAP = 6;
const LABEL_WIDTH = 340;
const CHART_WIDTH = 420;
const TOP = 60;
const GOAL = 2;
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"';

export function renderBenchSvg(rows: BenchRow[], title: string): string {
  const max = Math.max(GOAL * 1.25, ...rows.map((r) => r.ratio));
  const scale = CHART_WIDTH / max;
  const width = LABEL_WIDTH + CHART_WIDTH + 90;
  const height = TOP + rows.length * (BAR_HEIGHT + BAR_GAP) + 40;
  const x0 = LABEL_WIDTH;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="26" ${FONT} font-size="16" font-weight="600">${escapeXml(title)}</text>`,
    `<text x="16" y="44" ${FONT} font-size="12" fill="#4b5563">throughput as a multiple of openssl speed -bytes 512 (AES-256-XTS), same run</text>`,
  ];
  rows.forEach((r, i) => {
    const y = TOP + i * (BAR_HEIGHT + BAR_GAP);
    const w = Math.max(1, r.ratio * scale);
    const fill = r.ratio >= GOAL ? '#16a34a' : r.ratio >= 1 ? '#2563eb' : '#f59e0b';
    parts.push(`<text x="${x0 - 8}" y="${y + 13}" ${FONT} font-size="12" text-anchor="end">${escapeXml(r.label)}</text>`);
    parts.push(`<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${BAR_HEIGHT}" rx="2" fill="${fill}"/>`);
    parts.push(`<text x="${(x0 + w + 6).toFixed(1)}" y="${y + 13}" ${FONT} font-size="12">${r.ratio.toFixed(2)}× (${r.gbps.toFixed(2)} GB/s)</text>`);
  });
  const bottom = TOP + rows.length * (BAR_HEIGHT + BAR_GAP);
  for (const [ratio, label] of [[1, '1× openssl'], [GOAL, `${GOAL}× goal`]] as const) {
    const x = (x0 + ratio * scale).toFixed(1);
    parts.push(`<line x1="${x}" y1="${TOP - 6}" x2="${x}" y2="${bottom}" stroke="#111827" stroke-dasharray="4 3" stroke-width="1"/>`);
    parts.push(`<text x="${x}" y="${bottom + 16}" ${FONT} font-size="11" text-anchor="middle" fill="#374151">${label}</text>`);
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
