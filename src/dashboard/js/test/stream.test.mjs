// The live stream's Server-Sent Events parser and reconnect delays (stream.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSseParser, reconnectDelay } from '../stream.js';

function parse(chunks) {
  const events = [];
  const parser = createSseParser((e) => events.push(e));
  for (const c of chunks) parser.push(c);
  return { events, parser };
}

test('events end at a blank line; data lines join; comments are skipped', () => {
  const { events } = parse([': keep-alive\n\nevent: snapshot\ndata: {"a":\ndata: 1}\n\n' +
    'data:no space\nid: 7\n\n']);
  assert.deepEqual(events, [
    { type: 'snapshot', data: '{"a":\n1}', id: '' },
    { type: 'message', data: 'no space', id: '7' }]);
});

test('CR, LF and CRLF end lines, also when split across chunks', () => {
  const whole = 'event: update\r\ndata: x\r\n\r\ndata: y\r\rdata: z\n\n';
  const expected = [{ type: 'update', data: 'x', id: '' }, { type: 'message', data: 'y', id: '' },
    { type: 'message', data: 'z', id: '' }];
  assert.deepEqual(parse([whole]).events, expected);
  for (let i = 1; i < whole.length; i++) {
    assert.deepEqual(parse([whole.slice(0, i), whole.slice(i)]).events, expected, 'split ' + i);
  }
  assert.deepEqual(parse(whole.split('')).events, expected, 'one character at a time');
});

test('a BOM is skipped, retry is kept, bad fields are ignored', () => {
  const { events, parser } = parse(['\uFEFFretry: 2500\nretry: soon\nid: a\0b\nfoo: bar\n' +
    'data\n\n']);
  assert.equal(parser.retry, 2500);
  assert.deepEqual(events, [{ type: 'message', data: '', id: '' }]);
});

test('an event without data is no event, and one cut off by the end is dropped', () => {
  const events = [];
  const parser = createSseParser((e) => events.push(e));
  parser.push('event: update\n\ndata: cut');
  parser.end();
  parser.push('\n\n');
  assert.deepEqual(events, []);
});

test('reconnects wait 1, 2, 4 … 30 s, or from retry, ±20%', () => {
  assert.equal(reconnectDelay(null, 0, 0.5), 1000);
  assert.equal(reconnectDelay(null, 3, 0.5), 8000);
  assert.equal(reconnectDelay(null, 10, 0.5), 30000);
  assert.equal(reconnectDelay(2500, 1, 0.5), 5000);
  assert.equal(reconnectDelay(null, 0, 0), 800);
  assert.ok(Math.abs(reconnectDelay(null, 0, 0.999999) - 1200) < 0.01);
});
