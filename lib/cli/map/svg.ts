/**
 * `vdcrypt status --svg FILE`: the encryption map as a standalone SVG (title, cells, offsets, legend with byte
 * counts), for reports.
 */
import { formatBytes } from '../parse.js';
import { type EncryptionMap, MIXED, PLAINTEXT, UNALLOCATED } from './cells.js';

const CELLS_PER_ROW = 32;
const CELL = 18;
const GAP = 2;
const LEFT = 80;
const TOP = 56;
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"';
const COLOUR_UNALLOCATED = '#e5e7eb';
const COLOUR_PLAINTEXT = '#f59e0b';
const GENERATION_COLOURS = ['#16a34a', '#0891b2', '#2563eb', '#7c3aed'];

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function colourOf(map: EncryptionMap, state: number): string {
  if (state === UNALLOCATED) return COLOUR_UNALLOCATED;
  if (state === PLAINTEXT) return COLOUR_PLAINTEXT;
  if (state === MIXED) return 'url(#mixed)';
  return GENERATION_COLOURS[Math.max(0, map.generations.indexOf(state)) % GENERATION_COLOURS.length] ?? '#16a34a';
}

export function renderSvgMap(map: EncryptionMap): string {
  const { status } = map;
  const rows = Math.ceil(map.cells.length / CELLS_PER_ROW);
  const gridWidth = CELLS_PER_ROW * (CELL + GAP);
  const width = LEFT + gridWidth + 24;
  const legendTop = TOP + rows * (CELL + GAP) + 24;
  const legend: Array<{ colour: string; label: string }> = [
    { colour: COLOUR_UNALLOCATED, label: `unallocated ${formatBytes(status.unallocatedBytes)}` },
    { colour: COLOUR_PLAINTEXT, label: `plaintext ${formatBytes(status.plaintextBytes)}` },
    ...(map.mixedCells > 0 ? [{ colour: 'url(#mixed)', label: 'plaintext and encrypted in one cell' }] : []),
    ...map.generations.map((g) => ({ colour: colourOf(map, g), label: `encrypted, data key ${g}: ${formatBytes(map.bytesByGeneration.get(g) ?? 0)}` })),
  ];
  const height = legendTop + legend.length * 22 + 40;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>Encryption map of ${escapeXml(status.blob)}</title>`,
    `<defs><pattern id="mixed" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
      `<rect width="6" height="6" fill="${COLOUR_PLAINTEXT}"/><rect width="3" height="6" fill="${GENERATION_COLOURS[0] ?? ''}"/></pattern></defs>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="26" ${FONT} font-size="16" font-weight="600">Encryption map of ${escapeXml(status.blob)}</text>`,
    `<text x="16" y="44" ${FONT} font-size="12" fill="#4b5563">${escapeXml(formatBytes(status.size))} in ${map.cells.length} cells of ${escapeXml(formatBytes(map.cellBytes))}; serverEncrypted: ${status.serverEncrypted}</text>`,
  ];
  for (let row = 0; row < rows; row++) {
    const y = TOP + row * (CELL + GAP);
    parts.push(`<text x="${LEFT - 8}" y="${y + CELL - 5}" ${FONT} font-size="11" text-anchor="end" fill="#4b5563">${escapeXml(formatBytes(row * CELLS_PER_ROW * map.cellBytes))}</text>`);
  }
  map.cells.forEach((state, i) => {
    const x = LEFT + (i % CELLS_PER_ROW) * (CELL + GAP);
    const y = TOP + Math.floor(i / CELLS_PER_ROW) * (CELL + GAP);
    const what = state === UNALLOCATED ? 'unallocated' : state === PLAINTEXT ? 'plaintext' : state === MIXED ? 'plaintext and encrypted' : `encrypted, data key ${state}`;
    parts.push(`<rect x="${x}" y="${y}" width="${CELL}" height="${CELL}" rx="2" fill="${colourOf(map, state)}"><title>${escapeXml(formatBytes(i * map.cellBytes))}: ${what}</title></rect>`);
  });
  legend.forEach((entry, i) => {
    const y = legendTop + i * 22;
    parts.push(`<rect x="16" y="${y}" width="14" height="14" rx="2" fill="${entry.colour}"/>`);
    parts.push(`<text x="38" y="${y + 12}" ${FONT} font-size="13">${escapeXml(entry.label)}</text>`);
  });
  parts.push(`<text x="16" y="${height - 14}" ${FONT} font-size="11" fill="#6b7280">${escapeXml(formatBytes(status.encryptedBytes))} of ${escapeXml(formatBytes(status.allocatedBytes))} allocated bytes encrypted</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
