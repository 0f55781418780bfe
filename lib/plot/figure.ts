// A plot's contents in free coordinates: text with its measured ink box, SVG shapes with their
// boxes, raw RGB rasters. Rendering moves everything so that the union of the boxes lies TEXT.pad
// inside the PNG and sizes the PNG to it: nothing drawn can fall off an edge, whatever the text.
import sharp from 'sharp';

import { escapeXml, TEXT } from './common';
import { Extent, fontAttributes, measureText, TextStyle, wrapText } from './text';

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

interface Raster {
  input: Buffer;
  left: number;
  top: number;
  width: number;
  height: number;
}

export class Figure {
  private readonly svg: string[] = [];
  private readonly rasters: Raster[] = [];
  private readonly box: Box = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };

  private include(x0: number, y0: number, x1: number, y1: number): void {
    this.box.x0 = Math.min(this.box.x0, x0);
    this.box.y0 = Math.min(this.box.y0, y0);
    this.box.x1 = Math.max(this.box.x1, x1);
    this.box.y1 = Math.max(this.box.y1, y1);
  }

  /**
   * `text` started at (x, y) on its baseline; `rotated` turns it a quarter left about that point
   * (reading upwards), so its ink spans x + [top, bottom] and y - [right, left].
   */
  text(text: string, extent: Extent, x: number, y: number, style: TextStyle & { fill: string; rotated?: boolean }): void {
    if (!text) return;
    const at = style.rotated ? `transform="translate(${x.toFixed(1)},${y.toFixed(1)}) rotate(-90)"` : `x="${x.toFixed(1)}" y="${y.toFixed(1)}"`;
    this.svg.push(`<text ${at} ${fontAttributes(style)} fill="${style.fill}">${escapeXml(text)}</text>`);
    if (style.rotated) this.include(x + extent.top, y - extent.right, x + extent.bottom, y - extent.left);
    else this.include(x + extent.left, y + extent.top, x + extent.right, y + extent.bottom);
  }

  /** An SVG element and the box it draws in. */
  shape(svg: string, box: Box): void {
    this.svg.push(svg);
    this.include(box.x0, box.y0, box.x1, box.y1);
  }

  /** A width x height x 3 RGB raster at integer (left, top). */
  raster(input: Buffer, left: number, top: number, width: number, height: number): void {
    this.rasters.push({ input, left, top, width, height });
    this.include(left, top, left + width, top + height);
  }

  /**
   * Lines of `title` above `bottom` (the last one's ink ends 10 px above it), each centred on x,
   * moved to stay over the drawing where it fits (`left`: starting at x), wrapped at `width`
   * (default: the drawing's width, at least TEXT.titleWrap).
   */
  async title(title: string, at: { x: number; bottom: number; align?: 'centre' | 'left'; width?: number }): Promise<void> {
    if (!title.trim()) return;
    const style = TEXT.title;
    const { x0, x1 } = this.box;
    const lines = await wrapText(title, style, at.width ?? Math.max(TEXT.titleWrap, x1 - x0));
    const extents = await measureText(lines, style);
    const last = at.bottom - 10 - Math.max(0, ...extents.map((e) => e.bottom));
    const step = style.size * TEXT.lineHeight;
    lines.forEach((line, i) => {
      const e = extents[i];
      const w = e.right - e.left;
      const centre = w >= x1 - x0 ? (x0 + x1) / 2 : Math.min(Math.max(at.x, x0 + w / 2), x1 - w / 2);
      const x = at.align === 'left' ? at.x - Math.min(0, e.left) : centre - (e.left + e.right) / 2;
      this.text(line, e, x, last - (lines.length - 1 - i) * step, style);
    });
  }

  /**
   * The PNG: everything TEXT.pad inside its edges, on white. `frame`, when given, is the least
   * area shown (a picture of a set width), in the same coordinates.
   */
  async render(frame?: Box): Promise<Buffer> {
    const p = TEXT.pad;
    if (!(this.box.x1 >= this.box.x0)) this.include(0, 0, 0, 0); // nothing drawn: a blank picture
    const outer = { x0: this.box.x0 - p, y0: this.box.y0 - p, x1: this.box.x1 + p, y1: this.box.y1 + p };
    if (frame) {
      outer.x0 = Math.min(outer.x0, frame.x0);
      outer.y0 = Math.min(outer.y0, frame.y0);
      outer.x1 = Math.max(outer.x1, frame.x1);
      outer.y1 = Math.max(outer.y1, frame.y1);
    }
    // Whole-pixel shifts keep the rasters on the pixel grid.
    const dx = -Math.floor(outer.x0);
    const dy = -Math.floor(outer.y0);
    const width = Math.ceil(outer.x1) + dx;
    const height = Math.ceil(outer.y1) + dy;
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><g transform="translate(${dx},${dy})">${this.svg.join('')}</g></svg>`;
    return sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
      .composite([
        ...this.rasters.map((r) => ({ input: r.input, raw: { width: r.width, height: r.height, channels: 3 as const }, left: r.left + dx, top: r.top + dy })),
        { input: Buffer.from(svg), left: 0, top: 0 },
      ])
      .png()
      .toBuffer();
  }
}

/** `<rect>` outlining a w x h area at (x, y) (half-pixel out, so it frames a raster there), and its box. */
export function frameRect(x: number, y: number, w: number, h: number, stroke = '#333'): [string, Box] {
  return [
    `<rect x="${x - 0.5}" y="${y - 0.5}" width="${w + 1}" height="${h + 1}" fill="none" stroke="${stroke}"/>`,
    { x0: x - 1, y0: y - 1, x1: x + w + 1, y1: y + h + 1 },
  ];
}

/** A `<line>` and its box. */
export function line(x1: number, y1: number, x2: number, y2: number, stroke = '#333'): [string, Box] {
  return [
    `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${stroke}"/>`,
    { x0: Math.min(x1, x2) - 1, y0: Math.min(y1, y2) - 1, x1: Math.max(x1, x2) + 1, y1: Math.max(y1, y2) + 1 },
  ];
}
