/* reports.js: the report panels: which there are, in page order, their cards, loading each
   for the period shown (dropping answers for a period no longer shown), "Show more", and
   saving one as CSV. The renderers draw the tables. */

import { getJson, request, siteFailure, apiUrl } from './api.js';
import { $, h, showMessage } from './dom.js';
import { periodParam } from './dates.js';
import { LONG_DAY, LONG_MONTH, dateLabel } from './format.js';
import { csvFileName, reportPath } from './links.js';
import { renderCampaigns, renderContent, renderEvents, renderReferrers, renderTerms,
  renderTraffic } from './render-traffic.js';
import { renderEngagement, renderLocations, renderResolutions, renderRetention,
  renderTechnology } from './render-audience.js';
import { S } from './state.js';

/** The reports, in page order. `day`: also kept per day; `limit`: ranked lists, with
    "show more". */
const REPORTS = [
  { name: 'traffic', title: 'Views and people', day: true, render: renderTraffic },
  { name: 'content', title: 'Pages', day: true, limit: 20, render: renderContent },
  { name: 'referrers', title: 'Referrers', day: true, limit: 20, render: renderReferrers },
  { name: 'events', title: 'Events', day: true, render: renderEvents },
  { name: 'engagement', title: 'Visits', day: true, render: renderEngagement },
  { name: 'terms', title: 'Search', day: false, limit: 20, render: renderTerms },
  { name: 'campaigns', title: 'Campaigns', day: false, limit: 20, render: renderCampaigns },
  { name: 'technology', title: 'Technology', day: false, render: renderTechnology },
  { name: 'resolutions', title: 'Screen and window sizes', day: false,
    render: renderResolutions },
  { name: 'locations', title: 'Countries', day: false, render: renderLocations },
  { name: 'retention', title: 'Retention', day: false, wide: true, render: renderRetention },
];

/** One card per report, loading; each report's limit back to its first. */
export function buildReportCards() {
  $('#report-grid').replaceChildren(...REPORTS.map((r) => {
    S.limits[r.name] = r.limit || null;
    return h('section', { class: 'panel report' + (r.wide ? ' wide' : ''),
      id: 'report-' + r.name, 'data-report': r.name, 'data-state': 'loading',
      'aria-labelledby': 'report-' + r.name + '-h' },
    h('div', { class: 'panel-head' },
      h('h3', { id: 'report-' + r.name + '-h' }, r.title),
      h('span', { class: 'period-tag muted' }),
      h('a', { class: 'csv', href: '#', 'aria-label': 'Download ' + r.title + ' as CSV',
        onclick: (e) => downloadCsv(e, r) }, 'CSV')),
    h('div', { class: 'body', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…')),
    h('button', { type: 'button', class: 'more', hidden: true,
      onclick: () => showMore(r) }, 'Show more'));
  }));
}

function showMore(r) {
  S.limits[r.name] = Math.min(1000, S.limits[r.name] * 5);
  loadReport(r);
}

const pathOf = (r, format) => reportPath(r, S.unit, S.date, S.limits[r.name], format);

/** Loads every report for the period shown. */
export function loadReports() {
  S.reportsGen++;
  for (const r of REPORTS) loadReport(r);
}

async function loadReport(r) {
  const me = S, gen = S.reportsGen;
  const card = document.getElementById('report-' + r.name);
  const body = card.querySelector('.body');
  const period = periodParam(S.unit, S.date, r.day);
  const csv = card.querySelector('.csv');
  csv.href = apiUrl(pathOf(r, 'csv'));
  csv.setAttribute('download', csvFileName(S.site, r, period));
  card.dataset.state = 'loading';
  body.setAttribute('aria-busy', 'true');
  let answer;
  try {
    answer = await getJson(pathOf(r));
  } catch (err) {
    if (me !== S || gen !== S.reportsGen || siteFailure(err)) return;
    card.dataset.state = 'error';
    body.removeAttribute('aria-busy');
    body.replaceChildren(h('p', { class: 'error' }, err.message));
    return;
  }
  if (me !== S || gen !== S.reportsGen) return; // the period changed meanwhile
  const ctx = { unit: r.day ? S.unit : 'month', period: answer.period || period };
  card.dataset.period = ctx.period;
  card.querySelector('.period-tag').textContent = ctx.period.length === 7
    ? dateLabel(ctx.period, LONG_MONTH) : dateLabel(ctx.period, LONG_DAY);
  const nodes = r.render(answer.data || {}, ctx);
  const empty = nodes.empty;
  card.dataset.state = empty ? 'empty' : 'loaded';
  body.replaceChildren(...(empty ? [h('p', { class: 'empty' }, empty)] : nodes));
  body.removeAttribute('aria-busy');
  const more = card.querySelector('.more');
  more.hidden = !(S.limits[r.name] && nodes.full && S.limits[r.name] < 1000);
}

/** Fetches the report as CSV with the token and saves it (a link cannot send the header). */
async function downloadCsv(e, r) {
  e.preventDefault();
  const link = e.currentTarget;
  try {
    const blob = await (await request(pathOf(r, 'csv'), 'text/csv')).blob();
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: link.getAttribute('download'), hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    if (!siteFailure(err)) showMessage('CSV of ' + r.title + ': ' + err.message);
  }
}
