// Calendar arithmetic and the report bar's periods (dates.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addDays, addMonths, daysInMonth, pad2, parseDay } from '../dates.js';

test('only real calendar days parse', () => {
  assert.equal(parseDay('2026-11-02').toISOString(), '2026-11-02T00:00:00.000Z');
  assert.equal(parseDay('2024-02-29').toISOString(), '2024-02-29T00:00:00.000Z');
  for (const bad of ['2026-02-29', '2026-13-01', '2026-00-10', '2026-1-1', '2026-11-02x',
    '', null, undefined]) {
    assert.equal(parseDay(bad), null, String(bad));
  }
});

test('days in a month, leap years included', () => {
  assert.equal(daysInMonth(2026, 2), 28);
  assert.equal(daysInMonth(2024, 2), 29);
  assert.equal(daysInMonth(2100, 2), 28);
  assert.equal(daysInMonth(2026, 12), 31);
  assert.equal(pad2(7), '07');
});

test('adding days crosses months and years', () => {
  assert.equal(addDays('2026-03-01', -1), '2026-02-28');
  assert.equal(addDays('2024-03-01', -1), '2024-02-29');
  assert.equal(addDays('2026-12-31', 1), '2027-01-01');
  // The day DST starts in Europe is a day like any other here.
  assert.equal(addDays('2026-03-28', 1), '2026-03-29');
  assert.equal(addDays('2026-03-29', 1), '2026-03-30');
});

test('adding months clamps to the month length', () => {
  assert.equal(addMonths('2026-01-31', 1), '2026-02-28');
  assert.equal(addMonths('2024-01-31', 1), '2024-02-29');
  assert.equal(addMonths('2026-03-31', -1), '2026-02-28');
  assert.equal(addMonths('2026-01-15', -1), '2025-12-15');
  assert.equal(addMonths('2026-12-15', 1), '2027-01-15');
  assert.equal(addMonths('2026-05-10', -17), '2024-12-10');
});
