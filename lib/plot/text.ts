// Text measured by rendering it: every string alone on a row of one transparent SVG, drawn by the
// same librsvg and fontconfig as the plots, its ink box read from the alpha channel. A width per
// character is wrong for wide glyphs, CJK, emoji and whatever font fontconfig substitutes for
// DejaVu Sans; this holds for the font actually used.
import sharp from 'sharp';

import { escapeXml, TEXT } from './common';

export interface TextStyle {
  size: number;
  bold?: boolean;
}

/** Ink box of a string drawn from (0, 0) on its baseline (text-anchor start), in pixels; top < 0 is above the baseline. */
export interface Extent {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

const NO_INK: Extent = { left: 0, right: 0, top: 0, bottom: 0 };

export function fontAttributes(style: TextStyle): string {
  return `font-family="${TEXT.family}" font-size="${style.size}"${style.bold ? ' font-weight="bold"' : ''}`;
}

/** The ink boxes of `texts` in `style` (one render per TEXT.measureMaxSide of rows). */
export async function measureText(texts: readonly string[], style: TextStyle): Promise<Extent[]> {
  const row = Math.ceil(style.size * TEXT.measureRow);
  const baseline = Math.ceil(row * 0.6);
  const margin = style.size; // room left of the start for glyphs that overhang it
  const bound = (text: string) => Math.ceil((Array.from(text).length + 1) * style.size * TEXT.measureAdvance);
  const extents = new Map<string, Extent>();
  const unique = [...new Set(texts)];
  const measurable: string[] = [];
  for (const t of unique) {
    if (margin + bound(t) <= TEXT.measureMaxSide) measurable.push(t);
    // Too long for one render: a box that holds any glyphs it can have.
    else extents.set(t, { left: -margin, right: bound(t), top: -baseline, bottom: row - baseline });
  }
  const perRender = Math.max(1, Math.floor(TEXT.measureMaxSide / row));
  const batches: string[][] = [];
  for (let i = 0; i < measurable.length; i += perRender) batches.push(measurable.slice(i, i + perRender));
  await Promise.all(
    batches.map(async (batch) => {
      const width = margin + Math.max(...batch.map(bound));
      const rows = batch.map((t, i) => `<text x="${margin}" y="${i * row + baseline}">${escapeXml(t)}</text>`).join('');
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${batch.length * row}"><g ${fontAttributes(style)} fill="#000">${rows}</g></svg>`;
      const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().extractChannel(3).raw().toBuffer({ resolveWithObject: true });
      batch.forEach((t, i) => {
        let x0 = Infinity;
        let x1 = -Infinity;
        let y0 = Infinity;
        let y1 = -Infinity;
        for (let y = i * row; y < (i + 1) * row; y++) {
          for (let x = 0, o = y * info.width; x < info.width; x++, o++) {
            if (data[o] === 0) continue;
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (y < y0) y0 = y;
            y1 = y;
          }
        }
        const top = i * row + baseline;
        extents.set(t, x1 < 0 ? NO_INK : { left: x0 - margin, right: x1 + 1 - margin, top: y0 - top, bottom: y1 + 1 - top });
      });
    }),
  );
  return texts.map((t) => extents.get(t) ?? NO_INK);
}

/**
 * `text` in lines about `maxWidth` pixels wide: words fill lines greedily; a word wider than a
 * line is cut into pieces. Widths are the words' own, so a line may come out a pixel or two wider
 * (kerning across spaces); layouts use the lines' measured boxes, never `maxWidth`.
 */
export async function wrapText(text: string, style: TextStyle, maxWidth: number): Promise<string[]> {
  const words = text.split(/\s+/).filter(Boolean);
  const [wordExtents, [spaced, joined]] = await Promise.all([measureText(words, style), measureText(['x x', 'xx'], style)]);
  const space = spaced.right - joined.right;
  const pieces: { text: string; width: number; spaced: boolean }[] = [];
  words.forEach((word, i) => {
    const width = wordExtents[i].right - Math.min(0, wordExtents[i].left);
    const chars = Array.from(word);
    const cuts = Math.min(chars.length, Math.ceil(width / maxWidth));
    const per = Math.ceil(chars.length / cuts);
    for (let c = 0; c < chars.length; c += per) {
      const piece = chars.slice(c, c + per);
      pieces.push({ text: piece.join(''), width: (width * piece.length) / chars.length, spaced: c === 0 });
    }
  });
  const lines: string[] = [];
  let line = '';
  let lineWidth = 0;
  for (const piece of pieces) {
    const gap = piece.spaced ? space : 0;
    if (line && lineWidth + gap + piece.width <= maxWidth) {
      line += (piece.spaced ? ' ' : '') + piece.text;
      lineWidth += gap + piece.width;
    } else {
      if (line) lines.push(line);
      line = piece.text;
      lineWidth = piece.width;
    }
  }
  if (line) lines.push(line);
  return lines;
}
