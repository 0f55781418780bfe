// A line chart as PNG for the demos, on lib/plot's Figure (text measured, the picture sized to
// hold it): lines, steps and markers over a framed plot, y ticks with grid lines, x ticks as
// numbers or one label per integer x (tokens), the legend at the right.
import { formatTick, niceTicks, TEXT } from '../lib/plot/common';
import { Figure, frameRect, line } from '../lib/plot/figure';
import { measureText } from '../lib/plot/text';

export interface Series {
  x: number[];
  y: number[];
  colour: string;
  dashed?: boolean;
  /** In the legend; '' leaves the series out of it. */
  label: string;
  /** A dot at each point. */
  markers?: boolean;
  /** Each y held from x - 0.5 to x + 0.5 (a value after each token), not joined point to point. */
  step?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  xRange: [number, number];
  yRange: [number, number];
  series: Series[];
  /** The plot area, in pixels. */
  width?: number;
  height?: number;
  /** Default: multiples of a nice step within yRange. */
  yTicks?: number[];
  /** Labels at x = 1, 2, ... in place of numeric ticks. */
  xTickLabels?: string[];
}

/** Multiples of a nice step within [lo, hi]. */
function ticksWithin(lo: number, hi: number): number[] {
  const ticks = niceTicks(hi - lo);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export async function lineChart(o: LineChartOptions): Promise<Buffer> {
  const width = o.width ?? 640;
  const height = o.height ?? 200;
  const [x0, x1] = o.xRange;
  const [y0, y1] = o.yRange;
  const px = (x: number) => ((x - x0) / (x1 - x0)) * width;
  const py = (y: number) => height - ((Math.min(y1, Math.max(y0, y)) - y0) / (y1 - y0)) * height;
  const figure = new Figure();

  const yTicks = o.yTicks ?? ticksWithin(y0, y1);
  const yText = yTicks.map((v) => formatTick(v, yTicks));
  const xTicks = o.xTickLabels ? o.xTickLabels.map((_, i) => i + 1) : ticksWithin(x0, x1);
  const xText = o.xTickLabels ?? xTicks.map((v) => formatTick(v, xTicks));
  const tickStyle = { ...TEXT.tick, size: o.xTickLabels ? 13 : TEXT.tick.size };
  const [yExtents, xExtents, legendExtents, axisExtents] = await Promise.all([
    measureText(yText, TEXT.tick),
    measureText(xText, tickStyle),
    measureText(
      o.series.map((s) => s.label),
      TEXT.tick,
    ),
    measureText([o.xLabel, o.yLabel], TEXT.axis),
  ]);
  yTicks.forEach((v, i) => {
    const y = py(v);
    figure.shape(...line(0, y, width, y, v === 0 ? '#999' : '#e4e4e4'));
    figure.text(yText[i], yExtents[i], -6 - yExtents[i].right, y + 4, TEXT.tick);
  });
  const xLow = Math.max(...xExtents.map((e) => e.bottom));
  xTicks.forEach((v, i) => {
    const e = xExtents[i];
    figure.text(xText[i], e, px(v) - (e.left + e.right) / 2, height + 8 - Math.min(...xExtents.map((t) => t.top)), tickStyle);
  });
  for (const s of o.series) {
    const points = s.x.map((x, i) => [px(x), py(s.y[i])]);
    const half = px(x0 + 0.5) - px(x0);
    const d = s.step
      ? points.map(([x, y], i) => `${i === 0 ? `M${(x - half).toFixed(1)},` : 'V'}${y.toFixed(1)} H${(x + half).toFixed(1)}`).join(' ')
      : points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    figure.shape(`<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"${dash}/>`, { x0: 0, y0: 0, x1: width, y1: height });
    if (s.markers)
      for (const [x, y] of points)
        figure.shape(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="2.5" fill="${s.colour}"/>`, { x0: x - 3, y0: y - 3, x1: x + 3, y1: y + 3 });
  }
  figure.shape(...frameRect(0, 0, width, height));

  // The legend, right of the plot.
  o.series.forEach((s, i) => {
    if (!s.label) return;
    const y = 10 + i * 20;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    figure.shape(`<line x1="${width + 16}" y1="${y}" x2="${width + 40}" y2="${y}" stroke="${s.colour}" stroke-width="2"${dash}/>`, {
      x0: width + 16,
      y0: y - 2,
      x1: width + 40,
      y1: y + 2,
    });
    figure.text(s.label, legendExtents[i], width + 46, y + 4, TEXT.tick);
  });
  if (o.xLabel) {
    const e = axisExtents[0];
    figure.text(o.xLabel, e, width / 2 - (e.left + e.right) / 2, height + 8 + xLow - Math.min(...xExtents.map((t) => t.top)) + 18, TEXT.axis);
  }
  if (o.yLabel) {
    const e = axisExtents[1];
    const left = -12 - Math.max(...yExtents.map((t) => t.right));
    figure.text(o.yLabel, e, left - e.bottom - 4, height / 2 + (e.left + e.right) / 2, { ...TEXT.axis, rotated: true });
  }
  await figure.title(o.title, { x: width / 2, bottom: 0 });
  return figure.render();
}
