/* live.js: the "Right now" panel: reads the live stream (Server-Sent Events through fetch,
   since an EventSource cannot send the token) with stream.js's parser, draws each snapshot
   and update, asks for the summary again after an update, and reconnects after 1, 2, 4 … 30 s
   when the stream ends, fails or stays silent for STALL_MS. */

import { errorOf, headers, apiUrl, siteFailure } from './api.js';
import { drawChart } from './chart-svg.js';
import { $, h } from './dom.js';
import { formatFull } from './format.js';
import { S, STALL_MS, maybeReady } from './state.js';
import { createSseParser, reconnectDelay } from './stream.js';
import { scheduleSummary } from './summary.js';

/** Reads the live stream; on its end or failure reconnects after 1, 2, 4 … 30 s. */
export async function connectLive() {
  const me = S;
  const status = $('#live-status');
  const setStatus = (st, text) => { status.dataset.status = st; status.textContent = text; };
  setStatus('connecting', 'connecting…');
  const stall = new AbortController();
  const abort = () => stall.abort();
  me.ctrl.signal.addEventListener('abort', abort);
  let watchdog = setTimeout(abort, STALL_MS);
  let parser, failure = 'the stream ended';
  try {
    const res = await fetch(apiUrl('live'), { headers: headers('text/event-stream'),
      signal: stall.signal, cache: 'no-store' });
    if (!res.ok) throw await errorOf(res);
    setStatus('open', 'live');
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    parser = createSseParser((ev) => onLiveEvent(me, ev));
    for (;;) {
      const { done, value } = await reader.read();
      if (done || me !== S) break;
      clearTimeout(watchdog);
      watchdog = setTimeout(abort, STALL_MS);
      parser.push(decoder.decode(value, { stream: true }));
    }
    parser.end();
  } catch (err) {
    if (me !== S) return;
    if (err.name !== 'AbortError' && siteFailure(err)) return;
    if (err.status === 404) { setStatus('closed', 'no live stream: ' + err.message); return; }
    failure = err.name === 'AbortError' ? 'no data for ' + STALL_MS / 1000 + ' s' : err.message;
  } finally {
    clearTimeout(watchdog);
    me.ctrl.signal.removeEventListener('abort', abort);
  }
  if (me !== S) return;
  const wait = reconnectDelay(parser && parser.retry, me.liveAttempts++, Math.random());
  setStatus('closed', failure + '; reconnecting in ' + Math.round(wait / 1000) + ' s…');
  me.liveTimer = setTimeout(() => { if (me === S) connectLive(); }, wait);
}

function onLiveEvent(me, ev) {
  if (me !== S || (ev.type !== 'snapshot' && ev.type !== 'update')) return;
  let d;
  try { d = JSON.parse(ev.data); } catch (e) { return; }
  me.liveAttempts = 0; // the stream works: the next reconnect starts from 1 s again
  renderLive(d);
  if (ev.type === 'update') scheduleSummary();
  S.liveDone = true;
  maybeReady();
}

function renderLive(d) {
  const mins = d.views_last_minutes || [];
  const pages = d.pages_now || [];
  const win = d.window_minutes || 5;
  const hm = (m) => String(m.minute).slice(11, 16);
  drawChart($('#live-chart'), {
    views: mins.map((m) => m.views), people: null,
    short: mins.map(hm), long: mins.map(hm),
    label: 'Views per minute, last ' + mins.length + ' minutes',
    opts: { height: 120, left: 32, bottom: 20 } });
  const total = pages.reduce((sum, p) => sum + (p.views || 0), 0);
  const summary = $('#live-summary');
  summary.dataset.value = total;
  summary.textContent = total
    ? formatFull(total) + (total === 1 ? ' view' : ' views') + ' in the last ' + win +
      ' minutes, on ' + pages.length + (pages.length === 1 ? ' page.' : ' pages.')
    : 'Nobody in the last ' + win + ' minutes.';
  updateLivePages(pages);
  let at = d.at || '';
  try {
    at = new Intl.DateTimeFormat(undefined, { timeZone: S.zone, hour: '2-digit',
      minute: '2-digit', second: '2-digit' }).format(new Date(d.at));
  } catch (e) { /* unknown zone or time: show it as sent */ }
  const status = $('#live-status');
  status.dataset.status = 'open';
  status.textContent = 'live · ' + at;
}

/** Updates the list in place (same page, same item), so that aria-live announces what
    changed rather than the whole list. */
function updateLivePages(pages) {
  const ol = $('#live-pages');
  const old = new Map();
  for (const li of ol.children) if (li.dataset.page != null) old.set(li.dataset.page, li);
  const items = pages.map((p) => {
    let li = old.get(p.page);
    if (!li) {
      li = h('li', { 'data-page': p.page }, h('span', { class: 'lp-title' }),
        h('code', { class: 'lp-path' }, p.page), h('span', { class: 'n' }));
    }
    const title = li.querySelector('.lp-title');
    if (title.textContent !== (p.title || '')) title.textContent = p.title || '';
    const n = li.querySelector('.n');
    if (li.dataset.views !== String(p.views)) {
      li.dataset.views = p.views;
      n.textContent = formatFull(p.views);
    }
    return li;
  });
  const kids = ol.children;
  if (items.length !== kids.length || items.some((li, i) => kids[i] !== li)) {
    ol.replaceChildren(...items);
  }
}
