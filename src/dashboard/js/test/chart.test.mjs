// A chart's geometry (chart.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chartModel, linePath, niceCeil } from '../chart.js';

test('the axis tops out at 1, 2 or 5 × 10^k', () => {
  const cases = [[0, 1], [1, 1], [1.5, 2], [3, 5], [7, 10], [10, 10], [11, 20], [201, 500],
    [999, 1000], [NaN, 1]];
  for (const [v, top] of cases) assert.equal(niceCeil(v), top, String(v));
});

test('a line path rounds to tenths', () => {
  assert.equal(linePath([[10, 20], [30.04, 40.55]]), 'M10 20L30 40.6');
  assert.equal(linePath([]), '');
});

test('bars fill their slots and the newest slot is always labelled', () => {
  const m = chartModel([0, 5, 10], [0, 2, 4], { width: 344, height: 120, left: 40, right: 4,
    top: 10, bottom: 10, maxLabels: 2 });
  assert.equal(m.max, 10);
  assert.equal(m.slot, 100);
  assert.deepEqual(m.bars.map((b) => [b.x, b.h]), [[54, 0], [154, 50], [254, 100]]);
  assert.equal(m.line, 'M90 110L190 90L290 70');
  assert.deepEqual(m.ticks.map((t) => [t.value, t.y]), [[0, 110], [5, 60], [10, 10]]);
  assert.deepEqual(m.labelled, [0, 2]);
  const none = chartModel([], null, {});
  assert.deepEqual([none.bars, none.line, none.labelled], [[], '', []]);
});

test('the period compared with is a line of its own, and counts towards the axis', () => {
  const m = chartModel([1, 2], null, { previous: [10, 0] });
  assert.equal(m.max, 10);
  assert.match(m.previousLine, /^M\S+ \S+L\S+ \S+$/);
  assert.equal(chartModel([1, 2], null, {}).previousLine, '');
});
