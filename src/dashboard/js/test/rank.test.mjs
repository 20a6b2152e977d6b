// Ranked lists and their (other) row, name–count pairs, size ranges (rank.js); and the
// engagement segments and chart series (series.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OTHER, countsPeople, isFull, isOther, pairRows, rankedRows,
  sortRanges } from '../rank.js';
import { DURATION_SEGMENTS, PAGE_SEGMENTS, fillSeries, medianSegment,
  sumSegments } from '../series.js';

test('a ranked list keeps its order, with shares of the largest and (other) last', () => {
  const rows = rankedRows({ entries: [{ key: '/', views: 8 }, { key: '/a', views: 2,
    truncated: true }], other: 4 });
  assert.deepEqual(rows.map((r) => [r.key, r.views, r.share, !!r.other]),
    [['/', 8, 100, false], ['/a', 2, 25, false], ['(other)', 4, 50, true]]);
  assert.equal(rows[1].entry.truncated, true);
  assert.equal(OTHER, 'other (not itemised)');
});

test('(other) can be the largest row, and a list may be (other) only', () => {
  assert.deepEqual(rankedRows({ entries: [{ key: '/', views: 1 }], other: 3 })
    .map((r) => r.share), [33, 100]);
  assert.deepEqual(rankedRows({ entries: [], other: 5 }),
    [{ key: '(other)', views: 5, share: 100, other: true }]);
  assert.deepEqual(rankedRows({ entries: [], other: 0 }), []);
  assert.deepEqual(rankedRows(undefined), []);
});

test('pages count people: each row and (other) get theirs, 0 when absent', () => {
  const pages = { entries: [{ key: '/', views: 8, people: 3 }, { key: '/a', views: 2 }],
    other: 4, other_people: 2 };
  assert.equal(countsPeople(pages), true);
  assert.deepEqual(rankedRows(pages).map((r) => [r.key, r.views, r.people]),
    [['/', 8, 3], ['/a', 2, 0], ['(other)', 4, 2]]);
  assert.deepEqual(rankedRows({ entries: [], other: 1, other_people: 0 }).map((r) => r.people),
    [0]);
  // Other lists (referrers, terms, …) have no people, and their rows none either.
  const hosts = { entries: [{ key: 'a.example', views: 1 }], other: 0 };
  assert.equal(countsPeople(hosts), false);
  assert.equal('people' in rankedRows(hosts)[0], false);
  assert.equal(countsPeople(undefined), false);
});

test('a list as long as its limit may have more', () => {
  const ranked = { entries: [{ key: 'a', views: 1 }, { key: 'b', views: 1 }], other: 0 };
  assert.equal(isFull(ranked, 2), true);
  assert.equal(isFull(ranked, 3), false);
  assert.equal(isFull(ranked, null), false);
  assert.equal(isFull(undefined, 2), false);
});

test('pairs get their share of the largest and of all', () => {
  const rows = pairRows([['chrome', 6], ['firefox', 3], ['other', 1]]);
  assert.deepEqual(rows.map((r) => [r.key, r.views, r.share, r.percent, r.other]),
    [['chrome', 6, 100, '60%', false], ['firefox', 3, 50, '30%', false],
      ['other', 1, 17, '10%', true]]);
  assert.deepEqual(pairRows([['chrome', 0]]), []);
  assert.deepEqual(pairRows(null), []);
  assert.equal(isOther('(other)'), true);
  assert.equal(isOther('others'), false);
});

test('size ranges sort by their lower bound, unknown last', () => {
  assert.deepEqual(sortRanges([['unknown', 1], ['1280', 2], ['320', 3], ['2000+', 4]])
    .map((p) => p[0]), ['320', '1280', '2000+', 'unknown']);
  assert.deepEqual(sortRanges(undefined), []);
});

test('series are filled to every slot, repeated slots added up', () => {
  const hours = fillSeries([{ hour: 1, views: 2, people: 1 }, { hour: 1, views: 3, people: 2 },
    { hour: 30, views: 9 }], 'hour', 0, 2);
  assert.deepEqual(hours, [{ hour: 0, views: 0, people: 0 }, { hour: 1, views: 5, people: 3 },
    { hour: 2, views: 0, people: 0 }]);
});

test('segments add up over days and name the median', () => {
  const days = [{ pages: [['1', 3], ['2', 1]] }, { pages: [['1', 1], ['50+', 5]] }, {}];
  const pages = sumSegments(days, 'pages', PAGE_SEGMENTS);
  assert.deepEqual(pages.filter((p) => p[1]), [['1', 4], ['2', 1], ['50+', 5]]);
  assert.equal(pages.length, PAGE_SEGMENTS.length);
  assert.equal(medianSegment(pages), '2'); // 5 of 10 visits are in "1" or "2"
  assert.equal(medianSegment([['1', 1], ['2', 3]]), '2');
  assert.equal(medianSegment(sumSegments([], 'durations', DURATION_SEGMENTS)), null);
});
