// Numbers, percentages, dates and size ranges as the page writes them (format.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DAY_OF_MONTH, FULL_DAY, HOUR, LONG_MONTH, capitalise, dateLabel, formatCompact,
  formatFull, formatPercent, formatVersions, rangeLabel } from '../format.js';

test('counts in full are grouped for the locale', () => {
  assert.equal(formatFull(1234567, 'en-US'), '1,234,567');
  assert.equal(formatFull(1234567, 'de-DE'), '1.234.567');
  assert.equal(formatFull(0, 'en-US'), '0');
  assert.equal(formatFull(NaN, 'en-US'), '–');
  assert.equal(formatFull(undefined, 'en-US'), '–');
});

test('tile counts are full below 10,000, then shortened', () => {
  const cases = [[9999, '9,999'], [10000, '10k'], [12345, '12.3k'], [123456, '123k'],
    [99949, '99.9k'], [99950, '100k'], [999499, '999k'], [999500, '1M'], [1234567, '1.2M'],
    [12345678901, '12.3B'], [-12345, '-12.3k'], [2.5e15, '2,500T']];
  for (const [n, text] of cases) assert.equal(formatCompact(n, 'en-US'), text, String(n));
  assert.equal(formatCompact(Infinity, 'en-US'), '–');
  assert.equal(formatCompact(12345, 'de-DE'), '12,3k');
});

test('percentages are whole, with <1% for a small share and – for no whole', () => {
  assert.equal(formatPercent(2, 5), '40%');
  assert.equal(formatPercent(1, 3), '33%');
  assert.equal(formatPercent(1, 1000), '<1%');
  assert.equal(formatPercent(0, 1000), '0%');
  assert.equal(formatPercent(5, 0), '–');
});

test('dates are labelled as calendar days, whatever the zone', () => {
  assert.equal(dateLabel('2026-11-02', FULL_DAY, 'en-US'), 'Monday, November 2, 2026');
  assert.equal(dateLabel('2026-11', LONG_MONTH, 'en-US'), 'November 2026');
  assert.equal(dateLabel('2026-03-01', DAY_OF_MONTH, 'en-GB'), 'Sun 1 Mar');
  assert.equal(dateLabel('2026-11-02T14', HOUR, 'en-GB'), '14:00');
  // The first of the month stays the first: the label is computed in UTC.
  assert.equal(dateLabel('2026-01-01', LONG_MONTH, 'en-US'), 'January 2026');
});

test('names, versions and size ranges', () => {
  assert.equal(capitalise('chrome'), 'Chrome');
  assert.equal(capitalise(''), '');
  assert.equal(formatVersions([['120-0', 5], ['119-0', 1234]], 'en-US'),
    '120.0 (5), 119.0 (1,234)');
  assert.equal(formatVersions([['1', 1], ['2', 1], ['3', 1], ['4', 1], ['5', 1]], 'en-US'),
    '1 (1), 2 (1), 3 (1), 4 (1), …');
  assert.equal(formatVersions(undefined), '');
  const widths = [320, 480, 800, 1024, 1280, 1440, 1600, 2000];
  assert.equal(rangeLabel('1280', widths), '1280–1439 px');
  assert.equal(rangeLabel('320', widths), '320–479 px');
  assert.equal(rangeLabel('2000', widths), '2000+ px');
  assert.equal(rangeLabel('2000+', widths), '2000+ px');
  assert.equal(rangeLabel('0', widths), '0+ px');
});
