/*
 * livechat loader, served as GET /widget/{channel}/loader.js. Plain JavaScript, no build.
 *
 * Tiny on purpose: it only adds the widget script (/widget/widget.js) with `async`, so the
 * host page never waits for the widget. The widget asks the server what to do on the page
 * and draws everything inside a shadow root; server texts go in with textContent only.
 */
(function () {
  'use strict';
  var CHANNEL_ID = __LIVECHAT_CHANNEL_ID__;
  var me = document.currentScript;
  var src = me && me.src ? me.src : '';
  // The server is wherever this script came from, path prefix included.
  var cut = src.lastIndexOf('/widget/');
  var base = cut >= 0 ? src.slice(0, cut) : '';
  var s = document.createElement('script');
  s.async = true;
  s.src = base + '/widget/widget.js';
  s.setAttribute('data-channel', CHANNEL_ID);
  s.setAttribute('data-base', base);
  // The direct-link page opens the window at once and fills the page.
  if (me && me.hasAttribute('data-livechat-open')) s.setAttribute('data-open', '');
  (document.head || document.documentElement).appendChild(s);
})();
