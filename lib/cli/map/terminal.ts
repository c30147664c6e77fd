/**
 * `vdcrypt status --map`: the encryption map as rows of cells with offsets, a legend with byte counts and the
 * blob's `serverEncrypted` answer. Colours on a terminal (unless NO_COLOR); without colour each state has its
 * own character: `·` unallocated, `░` plaintext, `▒` both in one cell, `█` encrypted (digits per data key
 * generation when the blob holds more than one).
 */
import { formatBytes } from '../parse.js';
import { type EncryptionMap, MIXED, PLAINTEXT, UNALLOCATED } from './cells.js';

export const CELLS_PER_ROW = 64;
const CHAR_UNALLOCATED = '·';
const CHAR_PLAINTEXT = '░';
const CHAR_ENCRYPTED = '█';
const CHAR_MIXED = '▒';
const GENERATION_CHARS = '123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

const RESET = '\u001b[0m';
const DIM = '\u001b[2m';
const YELLOW = '\u001b[33m';
const CYAN_ON_YELLOW = '\u001b[32;43m';
const GENERATION_COLOURS = ['\u001b[32m', '\u001b[36m', '\u001b[34m', '\u001b[35m'];

export interface TerminalMapOptions {
  colour: boolean;
}

function generationChar(map: EncryptionMap, generation: number): string {
  if (map.generations.length <= 1) return CHAR_ENCRYPTED;
  return GENERATION_CHARS[(generation - 1) % GENERATION_CHARS.length] ?? CHAR_ENCRYPTED;
}

function paint(text: string, code: string, colour: boolean): string {
  return colour ? `${code}${text}${RESET}` : text;
}

function cellText(map: EncryptionMap, state: number, colour: boolean): string {
  if (state === UNALLOCATED) return paint(CHAR_UNALLOCATED, DIM, colour);
  if (state === PLAINTEXT) return paint(CHAR_PLAINTEXT, YELLOW, colour);
  if (state === MIXED) return paint(CHAR_MIXED, CYAN_ON_YELLOW, colour);
  const index = map.generations.indexOf(state);
  const code = GENERATION_COLOURS[Math.max(0, index) % GENERATION_COLOURS.length] ?? '';
  return paint(generationChar(map, state), code, colour);
}

export function renderTerminalMap(map: EncryptionMap, options: TerminalMapOptions): string[] {
  const { status } = map;
  const { colour } = options;
  const lines = [
    `${status.blob}: ${formatBytes(status.size)} in ${map.cells.length} cells of ${formatBytes(map.cellBytes)}`,
  ];
  const labels: string[] = [];
  for (let row = 0; row * CELLS_PER_ROW < map.cells.length; row++) labels.push(formatBytes(row * CELLS_PER_ROW * map.cellBytes));
  const width = Math.max(...labels.map((l) => l.length));
  labels.forEach((label, row) => {
    const cells = map.cells.slice(row * CELLS_PER_ROW, (row + 1) * CELLS_PER_ROW).map((s) => cellText(map, s, colour)).join('');
    lines.push(`${label.padStart(width)} │${cells}│`);
  });
  const legend = [
    `${paint(CHAR_UNALLOCATED, DIM, colour)} unallocated ${formatBytes(status.unallocatedBytes)}`,
    `${paint(CHAR_PLAINTEXT, YELLOW, colour)} plaintext ${formatBytes(status.plaintextBytes)}`,
  ];
  if (map.mixedCells > 0) legend.push(`${paint(CHAR_MIXED, CYAN_ON_YELLOW, colour)} plaintext and encrypted in one cell`);
  if (map.generations.length === 0) legend.push(`${paint(CHAR_ENCRYPTED, GENERATION_COLOURS[0] ?? '', colour)} encrypted 0 B`);
  for (const g of map.generations) {
    legend.push(`${cellText(map, g, colour)} encrypted, data key ${g}: ${formatBytes(map.bytesByGeneration.get(g) ?? 0)}`);
  }
  for (const entry of legend) lines.push(`${' '.repeat(width)}  ${entry}`);
  lines.push(`${' '.repeat(width)}  serverEncrypted: ${status.serverEncrypted} ` +
    `(${formatBytes(status.encryptedBytes)} of ${formatBytes(status.allocatedBytes)} allocated bytes encrypted)`);
  return lines;
}
