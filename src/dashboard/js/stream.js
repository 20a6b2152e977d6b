/* stream.js: reading the live stream's bytes: a Server-Sent Events parser, and how long to
   wait before reconnecting. Pure: no DOM, no network, no page state; node imports it in
   test/stream.test.mjs. live.js reads the stream and draws what it says. */

/** Server-Sent Events, parsed as the HTML standard says: lines end in CR, LF or CRLF (also
    across chunks), `:` lines are comments, a blank line ends an event, several `data:`
    lines join with "\n". `onEvent({type, data, id})`; `parser.retry` holds a `retry:`. */
export function createSseParser(onEvent) {
  let buf = '', data = [], type = '', id = '', skipLF = false, first = true;
  const parser = { retry: null, push, end };

  function line(l) {
    if (l === '') {
      if (data.length) onEvent({ type: type || 'message', data: data.join('\n'), id });
      data = [];
      type = '';
      return;
    }
    if (l[0] === ':') return; // a comment: keep-alive
    const c = l.indexOf(':');
    const field = c < 0 ? l : l.slice(0, c);
    let value = c < 0 ? '' : l.slice(c + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') type = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) parser.retry = +value;
  }

  function push(chunk) {
    if (first && chunk) {
      if (chunk[0] === '\uFEFF') chunk = chunk.slice(1);
      first = false;
    }
    if (skipLF && chunk) {
      if (chunk[0] === '\n') chunk = chunk.slice(1);
      skipLF = false;
    }
    buf += chunk;
    let i;
    while ((i = buf.search(/[\r\n]/)) >= 0) {
      line(buf.slice(0, i));
      if (buf[i] === '\r') {
        if (i + 1 === buf.length) skipLF = true; // its LF may come with the next chunk
        else if (buf[i + 1] === '\n') i++;
      }
      buf = buf.slice(i + 1);
    }
  }

  // The stream ended: an event without its blank line is dropped, as a browser does.
  function end() {
    buf = '';
    data = [];
    type = '';
  }

  return parser;
}

/** Milliseconds to wait before reconnecting after `attempt` failures in a row (0 for the
    first): the stream's `retry` (else 1 s), doubled each time, at most 30 s, ±20% by
    `random` (a number in [0, 1), Math.random on the page). */
export function reconnectDelay(retry, attempt, random) {
  const base = retry || 1000;
  const jitter = 0.8 + random * 0.4;
  return Math.min(30000, base * Math.pow(2, attempt)) * jitter;
}
