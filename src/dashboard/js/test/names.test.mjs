// Proper names for the technology report's keys (names.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserName, deviceName, platformName } from '../names.js';

test('platforms by their proper names', () => {
  for (const [k, name] of [['ios', 'iOS'], ['macos', 'macOS'], ['chromeos', 'Chrome OS'],
    ['windows', 'Windows'], ['android', 'Android'], ['linux', 'Linux'],
    ['windows_phone', 'Windows Phone'], ['bsd', 'BSD'], ['playstation', 'PlayStation']]) {
    assert.equal(platformName(k), name, k);
  }
});

test('browsers by their proper names; an unknown key capitalised, never an inherited name', () => {
  assert.equal(browserName('chrome'), 'Chrome');
  assert.equal(browserName('ie'), 'Internet Explorer');
  assert.equal(browserName('samsung'), 'Samsung Internet');
  assert.equal(browserName('gsa'), 'Google app');
  assert.equal(browserName('brave'), 'Brave');
  assert.equal(platformName('constructor'), 'Constructor');
  assert.equal(deviceName('tablet'), 'Tablet');
});
