/* chart.js: the geometry of a chart: bars of views, a line of people, the axis's ticks and
   which slots get a label. Pure numbers: no DOM; node imports it in test/chart.test.mjs.
   chart-svg.js draws it. */

/** The smallest of 1, 2, 5 × 10^k at or above `v` (at least 1): the top of a chart's axis. */
export function niceCeil(v) {
  if (!(v > 1)) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(v)));
  const f = v / exp;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * exp;
}

const num1 = (x) => String(Math.round(x * 10) / 10);

/** An SVG path through points: "M10 20L30 40.5". */
export function linePath(points) {
  return points.map((p, i) => (i ? 'L' : 'M') + num1(p[0]) + ' ' + num1(p[1])).join('');
}

/** The geometry of a bar chart (views) with an optional line (people), in a
    `width` × `height` box: bars, the line's path, the y ticks, the labelled x slots; with
    `opts.previous` (the views of the period compared with, slot by slot) its line too,
    `previousLine`. */
export function chartModel(views, people, opts) {
  const o = Object.assign({ width: 640, height: 220, left: 44, right: 8, top: 10,
    bottom: 24, maxLabels: 8 }, opts);
  const n = views.length;
  const pw = o.width - o.left - o.right, ph = o.height - o.top - o.bottom;
  const prev = o.previous || null;
  const max = niceCeil(Math.max(1, ...views, ...(people || []), ...(prev || [])));
  const slot = n ? pw / n : pw;
  const bw = Math.max(1, slot * 0.72);
  const base = o.top + ph;
  const y = (v) => base - (v / max) * ph;
  const bars = views.map((v, i) => ({
    x: o.left + i * slot + (slot - bw) / 2, y: y(v), w: bw, h: base - y(v), value: v }));
  const line = people && n ? linePath(people.map((v, i) =>
    [o.left + i * slot + slot / 2, y(v)])) : '';
  const previousLine = prev && prev.length ? linePath(prev.map((v, i) =>
    [o.left + i * slot + slot / 2, y(v)])) : '';
  const ticks = [0, max].concat(Number.isInteger(max / 2) ? [max / 2] : [])
    .sort((a, b) => a - b).map((v) => ({ value: v, y: y(v) }));
  const every = Math.max(1, Math.ceil(n / o.maxLabels));
  const labelled = [];
  for (let i = n - 1; i >= 0; i -= every) labelled.unshift(i); // the newest always labelled
  return { max, bars, line, previousLine, ticks, labelled, slot, base, o };
}
