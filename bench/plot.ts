/**
 * Plots of bench results as small, dependency-free SVG files for docs/benchmarks.md.
 *
 * Three kinds: `line` (series of [x, y] points, optionally log x), `bars` (one group per
 * category, one bar per series) and `cdf` (each series' y values sorted, plotted against the
 * share of trials at or below them — how failover times are distributed).
 */
import type { Plot, PlotSeries } from './section.js';

const WIDTH = 640;
const HEIGHT = 360;
const MARGIN = { top: 36, right: 20, bottom: 64, left: 64 };
/** Colour-blind-safe palette (Okabe–Ito). */
const COLOURS = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442'];

const escape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Round, readable axis ticks from the first at or below `min` to the first at or above `max`. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const first = Math.floor(min / step);
  const last = Math.ceil(max / step);
  return Array.from({ length: last - first + 1 }, (_, i) =>
    Number(((first + i) * step).toPrecision(12)),
  );
}

function label(value: number): string {
  if (Math.abs(value) >= 10_000) return `${Math.round(value / 1000)}k`;
  return Number.isInteger(value) ? String(value) : value.toPrecision(3).replace(/\.?0+$/, '');
}

interface Frame {
  x: (value: number) => number;
  y: (value: number) => number;
  parts: string[];
}

/** Axes, grid, title and labels; returns the scales for the data. */
function frame(plot: Plot, xs: number[], ys: number[], xTicks?: number[]): Frame {
  const innerW = WIDTH - MARGIN.left - MARGIN.right;
  const innerH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const yMax = Math.max(...ys, 0);
  const yTicks = niceTicks(0, yMax > 0 ? yMax : 1);
  const yTop = yTicks[yTicks.length - 1]!;
  const logX = plot.logX === true;
  const tx = (v: number) => (logX ? Math.log10(Math.max(v, 1e-9)) : v);
  const xMin = Math.min(...xs.map(tx));
  const xMax = Math.max(...xs.map(tx));
  const xSpan = xMax > xMin ? xMax - xMin : 1;
  const x = (v: number) => MARGIN.left + ((tx(v) - xMin) / xSpan) * innerW;
  const y = (v: number) => MARGIN.top + innerH - (v / yTop) * innerH;
  const parts: string[] = [
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">${escape(plot.title)}</text>`,
  ];
  for (const tick of yTicks) {
    parts.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(tick)}" y2="${y(tick)}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${y(tick) + 4}" text-anchor="end" font-size="11">${label(tick)}</text>`,
    );
  }
  for (const tick of xTicks ?? []) {
    parts.push(
      `<text x="${x(tick)}" y="${HEIGHT - MARGIN.bottom + 16}" text-anchor="middle" font-size="11">${label(tick)}</text>`,
    );
  }
  parts.push(
    `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(0)}" y2="${y(0)}" stroke="#333"/>`,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${y(0)}" stroke="#333"/>`,
    `<text x="${MARGIN.left + innerW / 2}" y="${HEIGHT - MARGIN.bottom + 34}" text-anchor="middle" font-size="12">${escape(plot.xLabel)}</text>`,
    `<text transform="translate(16 ${MARGIN.top + innerH / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escape(plot.yLabel)}</text>`,
  );
  return { x, y, parts };
}

function legend(series: PlotSeries[]): string[] {
  const perRow = 3;
  const rows = Math.ceil(series.length / perRow);
  return series.map((s, i) => {
    const x = MARGIN.left + (i % perRow) * 190;
    const y = HEIGHT - 8 - (rows - 1 - Math.floor(i / perRow)) * 14;
    const colour = COLOURS[i % COLOURS.length]!;
    return (
      `<rect x="${x}" y="${y - 9}" width="10" height="10" fill="${colour}"/>` +
      `<text x="${x + 14}" y="${y}" font-size="11">${escape(s.name)}</text>`
    );
  });
}

function lines(plot: Plot, series: PlotSeries[]): string[] {
  const logTicks = plot.logX === true;
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y));
  const xTicks = logTicks
    ? [...new Set(xs)].sort((a, b) => a - b)
    : niceTicks(Math.min(...xs), Math.max(...xs));
  const { x, y, parts } = frame(plot, logTicks ? xs : [...xs, ...xTicks], ys, xTicks);
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const path = s.points.map(
      ([px, py], j) => `${j === 0 ? 'M' : 'L'}${x(px).toFixed(1)},${y(py).toFixed(1)}`,
    );
    parts.push(`<path d="${path.join('')}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    for (const [px, py] of s.points) {
      parts.push(
        `<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="3" fill="${colour}"><title>${escape(`${s.name}: ${label(px)}, ${label(py)}`)}</title></circle>`,
      );
    }
  });
  return [...parts, ...legend(series)];
}

/** Each series' y values sorted, against the share of trials (0–1] at or below them. */
function cdfSeries(series: PlotSeries[]): PlotSeries[] {
  return series.map((s) => {
    const ys = s.points.map(([, y]) => y).sort((a, b) => a - b);
    return { name: s.name, points: ys.map((y, i) => [(i + 1) / ys.length, y] as [number, number]) };
  });
}

function bars(plot: Plot): string[] {
  const categories = plot.categories ?? [];
  const ys = plot.series.flatMap((s) => s.points.map(([, y]) => y));
  const { y, parts } = frame(plot, [0, 1], ys);
  const innerW = WIDTH - MARGIN.left - MARGIN.right;
  const group = innerW / Math.max(categories.length, 1);
  const barW = (group * 0.7) / Math.max(plot.series.length, 1);
  categories.forEach((category, c) => {
    parts.push(
      `<text x="${MARGIN.left + group * (c + 0.5)}" y="${HEIGHT - MARGIN.bottom + 16}" text-anchor="middle" font-size="11">${escape(category)}</text>`,
    );
  });
  plot.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    for (const [c, value] of s.points) {
      const left = MARGIN.left + group * c + group * 0.15 + barW * i;
      parts.push(
        `<rect x="${left.toFixed(1)}" y="${y(value).toFixed(1)}" width="${barW.toFixed(1)}" height="${(y(0) - y(value)).toFixed(1)}" fill="${colour}"><title>${escape(`${s.name}, ${categories[c] ?? c}: ${label(value)}`)}</title></rect>`,
        `<text x="${(left + barW / 2).toFixed(1)}" y="${(y(value) - 4).toFixed(1)}" text-anchor="middle" font-size="10">${label(Number(value.toPrecision(3)))}</text>`,
      );
    }
  });
  return [...parts, ...legend(plot.series)];
}

/** The plot as a standalone SVG document. */
export function renderSvg(plot: Plot): string {
  const body =
    plot.kind === 'bars'
      ? bars(plot)
      : plot.kind === 'cdf'
        ? lines({ ...plot, logX: false }, cdfSeries(plot.series))
        : lines(plot, plot.series);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" role="img" aria-label="${escape(plot.title)}">`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
