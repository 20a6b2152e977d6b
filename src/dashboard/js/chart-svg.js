/* chart-svg.js: draws a chart (chart.js's geometry) as SVG into a box, at the box's own
   width, so that its text keeps its size on a phone, and again when that width changes. Each
   bar's <title> says its numbers; the page puts the same numbers in a table next to it. */

import { chartModel } from './chart.js';
import { formatCompact, formatFull } from './format.js';
import { s } from './dom.js';

// A box not yet in the page is drawn at 640; without ResizeObserver a chart keeps its first
// width.
const chartBoxes = typeof ResizeObserver === 'function'
  ? new ResizeObserver((entries) => entries.forEach((e) => renderChart(e.target))) : null;

/** Draws `spec` ({views, people or null, previous (views compared with) or null, short and
    long labels, label, opts}) into `box`. */
export function drawChart(box, spec) {
  box.tallyChart = spec;
  box.tallyWidth = 0;
  renderChart(box);
  if (chartBoxes) chartBoxes.observe(box);
}

function renderChart(box) {
  const width = Math.round(box.clientWidth) || 640;
  if (!box.tallyChart || box.tallyWidth === width) return;
  box.tallyWidth = width;
  box.replaceChildren(chartSvg(box.tallyChart, width));
}

/** A bar chart of views with a line of people. */
function chartSvg(c, width) {
  const m = chartModel(c.views, c.people, Object.assign({ width, previous: c.previous,
    maxLabels: Math.max(2, Math.floor(width / 72)) }, c.opts));
  const { height, left } = m.o;
  const svg = s('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img',
    'aria-label': c.label, preserveAspectRatio: 'xMidYMid meet' });
  for (const t of m.ticks) {
    svg.append(s('line', { class: 'gridline', x1: left, x2: width - m.o.right, y1: t.y, y2: t.y }));
    svg.append(s('text', { class: 'tick', x: left - 6, y: t.y + 4, 'text-anchor': 'end' },
      formatCompact(t.value)));
  }
  m.bars.forEach((b, i) => {
    const what = c.long[i] + ': ' + formatFull(b.value) + (b.value === 1 ? ' view' : ' views') +
      (c.people ? ', ' + formatFull(c.people[i]) + (c.people[i] === 1 ? ' person' : ' people')
        : '');
    // A transparent full-height rect makes small bars easy to point at.
    const g = s('g', { class: 'bar' }, s('title', {}, what),
      s('rect', { class: 'hit', x: left + i * m.slot, y: m.o.top, width: m.slot,
        height: m.base - m.o.top }),
      s('rect', { class: 'views', x: b.x, y: b.y, width: b.w, height: Math.max(0, b.h) }));
    svg.append(g);
  });
  if (m.previousLine) svg.append(s('path', { class: 'previous', d: m.previousLine }));
  if (m.line) svg.append(s('path', { class: 'people', d: m.line }));
  for (const i of m.labelled) {
    svg.append(s('text', { class: 'tick', x: left + (i + 0.5) * m.slot, y: height - 6,
      'text-anchor': 'middle' }, c.short[i]));
  }
  return svg;
}
