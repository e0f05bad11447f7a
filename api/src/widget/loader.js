/*
 * livechat widget loader, served as GET /widget/{channel}/loader.js. Plain JavaScript, no build.
 *
 * Asks the server what to do on this page (GET /api/v1/public/channels/{channel}/init), then
 * shows the chat button, the notification bubble and the chat window as the channel's rules
 * say. Everything is drawn inside a shadow root, so the site's styles neither leak in nor out,
 * and every text that comes from the server is set with textContent, never as HTML.
 *
 * The full conversation view comes later: for now the window shows the channel's name and
 * welcome message.
 */
(function () {
  'use strict';

  var CHANNEL_ID = __LIVECHAT_CHANNEL_ID__;
  var MAX_URL = 2000;
  var SMALL_SCREEN = 768;

  var script = document.currentScript;
  var src = script && script.src ? script.src : '';
  // The server is wherever this script came from, path prefix included.
  var cut = src.lastIndexOf('/widget/');
  var base = cut >= 0 ? src.slice(0, cut) : '';
  // The direct-link page opens the window at once.
  var pageMode = !!(script && script.hasAttribute('data-livechat-open'));
  var popupKey = 'livechat.auto_popup.' + CHANNEL_ID;

  var CSS = [
    ':host { all: initial; }',
    '.lc-root { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;',
    '  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;',
    '  display: flex; flex-direction: column; align-items: flex-end; gap: 12px; }',
    '.lc-button { width: 56px; height: 56px; border: 0; border-radius: 50%; cursor: pointer;',
    '  box-shadow: 0 4px 12px rgba(0,0,0,.25); display: flex; align-items: center; justify-content: center; }',
    '.lc-button svg { width: 28px; height: 28px; fill: currentColor; }',
    '.lc-bubble { max-width: 260px; padding: 10px 14px; border-radius: 12px; background: #fff; color: #222;',
    '  box-shadow: 0 2px 10px rgba(0,0,0,.2); cursor: pointer; white-space: pre-wrap; overflow-wrap: anywhere; }',
    '.lc-window { width: 340px; max-width: calc(100vw - 40px); height: 420px; max-height: calc(100vh - 120px);',
    '  background: #fff; color: #222; border-radius: 12px; overflow: hidden;',
    '  box-shadow: 0 8px 28px rgba(0,0,0,.3); display: flex; flex-direction: column; }',
    '.lc-window[hidden], .lc-button[hidden], .lc-bubble[hidden] { display: none; }',
    '.lc-header { display: flex; align-items: center; gap: 8px; padding: 12px 14px; font-weight: 600; }',
    '.lc-title { flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }',
    '.lc-close { border: 0; background: transparent; font-size: 22px; line-height: 1; cursor: pointer; padding: 0 4px; }',
    '.lc-body { flex: 1; overflow-y: auto; padding: 14px; background: #f6f6f8; }',
    '.lc-message { margin: 0; padding: 10px 12px; border-radius: 12px; background: #fff; display: inline-block;',
    '  max-width: 85%; box-shadow: 0 1px 3px rgba(0,0,0,.12); white-space: pre-wrap; overflow-wrap: anywhere; }',
    '.lc-notice { padding: 10px 14px; border-radius: 12px; background: #fff; color: #222; max-width: 280px;',
    '  box-shadow: 0 2px 10px rgba(0,0,0,.2); }',
    '.lc-page { left: 0; right: 0; top: 0; bottom: 0; align-items: center; justify-content: center; }',
    '.lc-page .lc-window { width: 480px; height: 600px; max-height: calc(100vh - 40px); }',
    '.lc-page .lc-close, .lc-page .lc-button { display: none; }'
  ].join('\n');

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // A speech balloon, drawn with DOM calls (no markup parsing).
  function icon() {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    var path = document.createElementNS(ns, 'path');
    path.setAttribute('d', 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z');
    svg.appendChild(path);
    return svg;
  }

  function mount() {
    var host = document.createElement('div');
    host.setAttribute('data-livechat-channel', CHANNEL_ID);
    var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
    var style = document.createElement('style');
    style.textContent = CSS;
    root.appendChild(style);
    var frame = el('div', pageMode ? 'lc-root lc-page' : 'lc-root');
    root.appendChild(frame);
    document.body.appendChild(host);
    return frame;
  }

  function remembered() {
    try {
      return window.localStorage.getItem(popupKey) === 'done';
    } catch (e) {
      return false;
    }
  }

  function remember() {
    try {
      window.localStorage.setItem(popupKey, 'done');
    } catch (e) {
      /* storage refused (private mode, sandbox): the window may open again next time */
    }
  }

  function chatWindow(frame, options, onClose) {
    var win = el('section', 'lc-window');
    win.setAttribute('role', 'dialog');
    win.setAttribute('aria-label', options.channel_name || 'Chat');
    var header = el('div', 'lc-header');
    header.style.backgroundColor = options.header_color;
    header.style.color = options.header_text_color;
    header.appendChild(el('span', 'lc-title', options.channel_name));
    var close = el('button', 'lc-close', '\u00d7');
    close.type = 'button';
    close.setAttribute('aria-label', 'Close');
    close.style.color = options.header_text_color;
    close.addEventListener('click', onClose);
    header.appendChild(close);
    var body = el('div', 'lc-body');
    if (options.welcome_message) body.appendChild(el('p', 'lc-message', options.welcome_message));
    win.appendChild(header);
    win.appendChild(body);
    win.hidden = true;
    frame.insertBefore(win, frame.firstChild);
    return win;
  }

  function notice(text) {
    mount().appendChild(el('div', 'lc-notice', text));
  }

  function render(init) {
    var o = init.options || {};
    if (pageMode && o.channel_name) document.title = o.channel_name;
    if (!init.show_button) {
      if (pageMode) notice('Nobody is available to chat right now. Please try again later.');
      return;
    }
    var action = init.rule ? init.rule.action : 'show';
    var frame = mount();
    var win = null;
    var bubble = null;

    var button = el('button', 'lc-button');
    button.type = 'button';
    button.title = o.notification_text || o.channel_name || '';
    button.setAttribute('aria-label', o.notification_text || o.channel_name || 'Chat');
    button.style.backgroundColor = o.button_color;
    button.style.color = o.button_text_color;
    button.appendChild(icon());

    function open() {
      if (!win) win = chatWindow(frame, o, close);
      win.hidden = false;
      if (bubble) bubble.hidden = true;
      button.setAttribute('aria-expanded', 'true');
    }
    function close() {
      if (win) win.hidden = true;
      button.setAttribute('aria-expanded', 'false');
    }

    if (action === 'show_with_notification' && o.notification_text) {
      bubble = el('div', 'lc-bubble', o.notification_text);
      bubble.addEventListener('click', open);
      frame.appendChild(bubble);
    }
    button.addEventListener('click', function () {
      if (win && !win.hidden) close();
      else open();
    });
    frame.appendChild(button);

    if (pageMode) {
      open();
    } else if (action === 'open_automatically' && window.innerWidth >= SMALL_SCREEN && !remembered()) {
      // As Odoo: once per browser, not on small screens, not over a window already open.
      var seconds = Math.max(0, Number(init.rule.timer_seconds) || 0);
      window.setTimeout(function () {
        if (win && !win.hidden) return;
        open();
        remember();
      }, seconds * 1000);
    }
  }

  function start() {
    var url = (location.pathname + location.search).slice(0, MAX_URL);
    var endpoint =
      base + '/api/v1/public/channels/' + encodeURIComponent(CHANNEL_ID) + '/init?url=' + encodeURIComponent(url);
    fetch(endpoint, { credentials: 'omit' })
      .then(function (res) {
        return res.ok ? res.json() : null;
      })
      .then(function (init) {
        if (init) render(init);
        else if (pageMode) notice('This chat is not available.');
      })
      .catch(function () {
        if (pageMode) notice('This chat is not available right now. Please try again later.');
      });
  }

  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
