/* names.js: the names the tables show for tally's browser, platform and device keys
   (src/track/agent.rs makes the keys: "ios", "chromeos", "samsung"…). A key this module does
   not know is shown capitalised, as before. Pure: no DOM; node imports it in
   test/names.test.mjs. */

import { capitalise } from './format.js';

const PLATFORMS = {
  ios: 'iOS', macos: 'macOS', windows: 'Windows', android: 'Android', linux: 'Linux',
  chromeos: 'Chrome OS', windows_phone: 'Windows Phone', bsd: 'BSD', firefox_os: 'Firefox OS',
  blackberry: 'BlackBerry', playstation: 'PlayStation', xbox: 'Xbox', nintendo: 'Nintendo',
  other: 'Other',
};

const BROWSERS = {
  chrome: 'Chrome', firefox: 'Firefox', safari: 'Safari', edge: 'Edge', opera: 'Opera',
  ie: 'Internet Explorer', samsung: 'Samsung Internet', vivaldi: 'Vivaldi',
  yandex: 'Yandex Browser', gsa: 'Google app', webview: 'Android WebView',
  sleipnir: 'Sleipnir', other: 'Other',
};

const DEVICES = { desktop: 'Desktop', mobile: 'Mobile', tablet: 'Tablet', other: 'Other' };

const named = (table) => (key) =>
  (Object.prototype.hasOwnProperty.call(table, key) ? table[key] : capitalise(key));

/** "ios" → "iOS", "chromeos" → "Chrome OS". */
export const platformName = named(PLATFORMS);
/** "samsung" → "Samsung Internet", "ie" → "Internet Explorer". */
export const browserName = named(BROWSERS);
/** "desktop" → "Desktop". */
export const deviceName = named(DEVICES);
