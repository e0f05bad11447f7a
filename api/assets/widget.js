/*
 * livechat widget, served as GET /widget/widget.js (added by the loader). Plain JavaScript.
 *
 * Asks `init` what to do on the page, draws the button and the chat window inside a shadow
 * root (host styles cannot reach in, ours cannot leak out), and talks to the visitor API:
 * the conversation starts on the visitor's first message (as Odoo's lazy session), lives in
 * localStorage for a day (the previous operator for seven), and follows the WebSocket stream
 * from the last position it saw, so a reload or a dropped network neither loses nor repeats
 * a message (messages are also keyed by id). Server texts go in with textContent only.
 */
(function () {
  'use strict';

  var me = document.currentScript;
  if (!me) return;
  var CH = me.getAttribute('data-channel');
  var BASE = me.getAttribute('data-base') || '';
  var PAGE = me.hasAttribute('data-open');
  var DAY = 86400000;
  var KEY = 'livechat.session.' + CH;
  var PREV = 'livechat.previous_operator.' + CH;
  var POPUP = 'livechat.auto_popup.' + CH;
  var SMALL_SCREEN = 768;
  var NOBODY = 'No available collaborator, please try again later.';

  // --- storage ---
  function load(k) {
    try {
      var v = JSON.parse(window.localStorage.getItem(k));
      if (v && v.expires > Date.now()) return v;
      window.localStorage.removeItem(k);
    } catch (e) {
      /* storage refused or garbled: start afresh */
    }
    return null;
  }
  function save(k, v, ttl) {
    try {
      v.expires = v.expires || Date.now() + ttl;
      window.localStorage.setItem(k, JSON.stringify(v));
    } catch (e) {
      /* private mode: the conversation lasts as long as the page */
    }
  }
  function drop(k) {
    try {
      window.localStorage.removeItem(k);
    } catch (e) {
      /* nothing to drop */
    }
  }

  // --- HTTP ---
  function api(method, path, body, token) {
    var headers = { Accept: 'application/json' };
    if (body) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch(BASE + path, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
      credentials: 'omit'
    }).then(function (res) {
      if (res.status === 204) return null;
      return res.json().then(function (j) {
        if (!res.ok) {
          var err = new Error((j && j.detail) || 'request failed');
          err.status = res.status;
          throw err;
        }
        return j;
      });
    });
  }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) {
      return (x + 256).toString(16).slice(1);
    }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  // The visitor's own conversation: `tail` is the path after its id.
  function mine(method, tail, body) {
    return api(method, '/api/v1/public/sessions/' + s.session_id + tail, body, s.token);
  }

  // --- DOM ---
  function el(tag, cls, text, attrs) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }
  function icon(d) {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    var p = document.createElementNS(ns, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
    return svg;
  }
  // Rating faces as drawings: emoji fonts are missing on many systems.
  var MOUTHS = { 5: 'M8 14q4 4 8 0', 3: 'M8 15h8', 1: 'M8 16q4-4 8 0' };
  function face(value) {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'M9 9.5v.5M15 9.5v.5' }], ['path', { d: MOUTHS[value] }]].forEach(
      function (part) {
        var e = document.createElementNS(ns, part[0]);
        for (var k in part[1]) e.setAttribute(k, part[1][k]);
        svg.appendChild(e);
      }
    );
    return svg;
  }
  var BALLOON = 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z';
  function clock(iso) {
    var d = new Date(iso);
    return isNaN(d) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  // --- state ---
  var o = {}; // the channel's options from init
  var init = null;
  var s = null; // stored conversation: session_id, token, position, open, operator, closed
  var ui = {};
  var shown = {}; // message id -> element
  var order = []; // message ids in display order
  var lastVisitorMessage = null;
  var seenUpTo = null;
  var ws = null;
  var held = null; // stream events that arrived before the history drew
  var retry = 500;
  var typingTimer = null;
  var typingSent = false;
  var theirTypingTimer = null;
  // Chatbot: the run as the session view shows it ({ name, expects, state, redirect_link }).
  var bot = null;
  var botName = '';
  var busy = false; // an answer or a restart is in flight: a double click sends one
  var botSeq = 0; // bumped by each bot command, so an older view read cannot undo it
  var refreshTimer = null;
  var onDrawn = null; // called once the history has drawn after a start
  var RESTARTING = 'Restarting conversation...';
  var ASKS = { question_email: 'Your email', question_phone: 'Your phone number' };

  function persist() {
    if (s) save(KEY, s, DAY);
  }

  function mount() {
    var host = el('div', null, null, { 'data-livechat-channel': CH });
    var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
    root.appendChild(el('link', null, null, { rel: 'stylesheet', href: BASE + '/widget/widget.css' }));
    var frame = el('div', PAGE ? 'lc-root lc-page' : 'lc-root');
    root.appendChild(frame);
    document.body.appendChild(host);
    ui.frame = frame;
    ui.root = root;
  }

  function button() {
    var b = el('button', 'lc-button', null, {
      type: 'button',
      'aria-label': o.notification_text || o.channel_name || 'Chat',
      title: o.notification_text || o.channel_name || '',
      'aria-expanded': 'false',
      'aria-controls': 'lc-window'
    });
    b.style.backgroundColor = o.button_color;
    b.style.color = o.button_text_color;
    b.appendChild(icon(BALLOON));
    b.addEventListener('click', function () {
      if (ui.win && !ui.win.hidden) fold();
      else open();
    });
    ui.frame.appendChild(b);
    ui.button = b;
  }

  function bubble() {
    var b = el('button', 'lc-bubble', o.notification_text, { type: 'button' });
    b.addEventListener('click', open);
    ui.frame.appendChild(b);
    ui.bubble = b;
  }

  function buildWindow() {
    var win = el('section', 'lc-window', null, { id: 'lc-window', role: 'dialog', 'aria-label': o.channel_name || 'Chat' });
    var header = el('header', 'lc-header');
    header.style.backgroundColor = o.header_color;
    header.style.color = o.header_text_color;
    ui.title = el('h2', 'lc-title', o.channel_name);
    header.appendChild(ui.title);
    ui.restart = el('button', 'lc-restart', 'Restart', { type: 'button', 'aria-label': 'Restart the conversation' });
    ui.restart.style.color = o.header_text_color;
    ui.restart.hidden = true;
    ui.restart.addEventListener('click', restart);
    header.appendChild(ui.restart);
    var close = el('button', 'lc-close', '\u00d7', { type: 'button', 'aria-label': 'End the conversation' });
    close.style.color = o.header_text_color;
    close.addEventListener('click', end);
    header.appendChild(close);
    win.appendChild(header);

    ui.notice = el('p', 'lc-notice', null, { role: 'status' });
    ui.notice.hidden = true;
    win.appendChild(ui.notice);
    ui.log = el('ol', 'lc-log', null, { role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', tabindex: '0' });
    win.appendChild(ui.log);
    ui.choices = el('div', 'lc-choices', null, { role: 'group' });
    ui.choices.hidden = true;
    win.appendChild(ui.choices);
    ui.typing = el('p', 'lc-typing', '', { 'aria-live': 'polite' });
    win.appendChild(ui.typing);

    var form = el('form', 'lc-form');
    ui.input = el('textarea', 'lc-input', null, {
      rows: '1',
      'aria-label': o.input_placeholder || 'Message',
      placeholder: o.input_placeholder || '',
      maxlength: '4000'
    });
    ui.send = el('button', 'lc-send', 'Send', { type: 'submit' });
    ui.send.style.backgroundColor = o.button_color;
    ui.send.style.color = o.button_text_color;
    form.appendChild(ui.input);
    form.appendChild(ui.send);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      send();
    });
    ui.input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        send();
      }
    });
    ui.input.addEventListener('input', typing);
    win.appendChild(form);
    ui.form = form;
    win.addEventListener('keydown', function (e) {
      if (e.key === 'Escape' && !PAGE) {
        fold();
        if (ui.button) ui.button.focus();
      }
    });
    win.hidden = true;
    ui.frame.insertBefore(win, ui.frame.firstChild);
    ui.win = win;
    var c = init.chatbot;
    var welcome = !s && c && c.name && c.welcome_steps ? c.welcome_steps : [];
    if (welcome.length) {
      botWelcome(c, welcome);
    } else if (!s && o.welcome_message && init.operator_available) {
      // Shown before the conversation exists; the stored welcome replaces it on start.
      ui.pendingWelcome = showMessage({
        message_id: 'welcome',
        author: { kind: 'operator', name: o.channel_name },
        text: o.welcome_message,
        posted_at: new Date().toISOString()
      });
    }
    if (!s && !init.operator_available && !welcome.length) say(NOBODY + ' You can leave a message: we will answer as soon as possible.');
  }

  function failed(what, e) {
    say(what + (e && e.message ? ': ' + e.message : '') + '. Please try again.');
  }

  function say(text) {
    ui.notice.textContent = text || '';
    ui.notice.hidden = !text;
  }

  function open() {
    if (!ui.win) buildWindow();
    ui.win.hidden = false;
    if (ui.bubble) ui.bubble.hidden = true;
    if (ui.button) ui.button.setAttribute('aria-expanded', 'true');
    if (s) {
      s.open = true;
      persist();
    }
    markSeen();
    if (!ui.choices.hidden) ui.choices.firstChild.focus();
    else ui.input.focus();
  }

  function fold() {
    if (ui.win) ui.win.hidden = true;
    if (ui.button) ui.button.setAttribute('aria-expanded', 'false');
    if (s) {
      s.open = false;
      persist();
    }
  }

  // --- messages ---
  function authorName(m) {
    if (m.author.kind === 'visitor') return 'You';
    if (m.author.kind === 'bot') return m.author.name || botName;
    return m.author.name || (s && s.operator && s.operator.name) || '';
  }

  function showMessage(m) {
    var known = shown[m.message_id];
    if (known) {
      known.querySelector('.lc-text').textContent = m.deleted ? 'This message was deleted' : m.text;
      return known;
    }
    if (ui.pendingWelcome && m.welcome) {
      ui.pendingWelcome.remove();
      order.splice(order.indexOf('welcome'), 1);
      delete shown.welcome;
      ui.pendingWelcome = null;
    }
    var li = el('li', 'lc-msg lc-' + m.author.kind, null, { 'data-message-id': m.message_id });
    var meta = el('p', 'lc-meta');
    meta.appendChild(el('span', 'lc-author', authorName(m)));
    meta.appendChild(document.createTextNode(' '));
    meta.appendChild(el('time', 'lc-time', clock(m.posted_at), { datetime: m.posted_at }));
    li.appendChild(meta);
    li.appendChild(el('p', 'lc-text', m.deleted ? 'This message was deleted' : m.text));
    shown[m.message_id] = li;
    // The welcome opens the conversation, even when the visitor's first post drew first.
    if (m.welcome) {
      ui.log.insertBefore(li, ui.log.firstChild);
      order.unshift(m.message_id);
    } else {
      ui.log.appendChild(li);
      order.push(m.message_id);
    }
    if (m.author.kind === 'visitor') lastVisitorMessage = m.message_id;
    ui.log.scrollTop = ui.log.scrollHeight;
    showSeen();
    return li;
  }

  // "Seen" under the visitor's last message once the operator's mark reaches it.
  function showSeen() {
    var old = ui.log && ui.log.querySelector('.lc-seen');
    if (old) old.remove();
    if (!lastVisitorMessage || !seenUpTo) return;
    if (order.indexOf(seenUpTo) < order.indexOf(lastVisitorMessage)) return;
    shown[lastVisitorMessage].appendChild(el('p', 'lc-seen', 'Seen'));
  }

  function markSeen() {
    if (!s || !ui.win || ui.win.hidden) return;
    for (var i = order.length - 1; i >= 0; i--) {
      var li = shown[order[i]];
      if (!li.classList.contains('lc-visitor') && !li.classList.contains('lc-pending') && order[i] !== 'welcome') {
        if (s.seen !== order[i]) {
          s.seen = order[i];
          persist();
          mine('POST', '/seen', { up_to: order[i] }).catch(function () {});
        }
        return;
      }
    }
  }

  function status(v) {
    if (v.operator) {
      s.operator = v.operator;
      ui.title.textContent = v.operator.name;
      save(PREV, { id: v.operator.id }, 7 * DAY);
      botForm(null);
    } else if ('bot' in v) {
      if (v.bot) {
        botName = v.bot.name;
        ui.title.textContent = botName;
      }
      botForm(v.bot);
    }
    if (v.status === 'waiting') {
      say(NOBODY + (v.queue_position ? ' You are number ' + v.queue_position + ' in the queue.' : ''));
    } else if (v.status === 'closed' || v.status === 'abandoned') {
      ended('The conversation has ended.');
    } else {
      say('');
    }
    if (v.seen_by_operator) {
      seenUpTo = v.seen_by_operator;
      showSeen();
    }
    persist();
  }

  function ended(text) {
    s.closed = true;
    persist();
    say(text);
    ui.input.disabled = true;
    ui.send.disabled = true;
    botForm(null);
  }

  function send() {
    var text = ui.input.value.trim();
    if (!text || ui.input.disabled) return;
    if (s && s.closed) return;
    ui.input.value = '';
    stopTyping();
    post(s ? Promise.resolve() : start(), text);
  }

  // While the bot waits for typed text, the server takes a message as the answer.
  function post(started, text) {
    var id = uuid();
    botSeq++;
    return started
      .then(function () {
        return mine('POST', '/messages', { message_id: id, text: text });
      })
      .then(showMessage)
      .catch(function (e) {
        ui.input.value = text;
        failed('Your message could not be sent', e);
      });
  }

  function start() {
    var prev = load(PREV);
    var body = { url: (location.pathname + location.search).slice(0, 2000) };
    if (prev && prev.id) body.previous_operator_id = prev.id;
    return api('POST', '/api/v1/public/channels/' + CH + '/sessions', body).then(function (r) {
      s = { session_id: r.session_id, token: r.visitor_token, position: null, open: true };
      persist();
      status(r);
      if (!r.bot) return connect(true);
      // The bot's stored welcome replaces the drawn one before the visitor's answer shows.
      return new Promise(function (done) {
        onDrawn = done;
        setTimeout(done, 5000);
        connect(true);
      });
    });
  }

  function history() {
    return mine('GET', '/messages?limit=200').then(
      function (page) {
        dropPending();
        page.messages.forEach(function (m) {
          if (m.author.kind !== 'system') showMessage(m);
        });
        markSeen();
      }
    );
  }

  // The history holds everything up to its read; held events are in it (and skipped by id)
  // or newer, so drawing them after it keeps the order.
  function release() {
    var h = held || [];
    held = null;
    h.forEach(handle);
    if (onDrawn) onDrawn();
    onDrawn = null;
  }

  // --- the chatbot ---
  // Odoo's lazy start: the welcome is drawn from init and the conversation starts with the
  // visitor's first answer; its stored messages then replace these.
  function botWelcome(c, steps) {
    botName = c.name;
    ui.title.textContent = c.name;
    ui.pending = [];
    var last = null;
    steps.forEach(function (st, i) {
      // A conditional step cannot hold before any answer; a forward speaks only if it finds someone.
      if ((st.only_if && st.only_if.length) || st.step_type === 'forward_operator') return;
      var li = showMessage({
        message_id: 'bot-welcome-' + i,
        author: { kind: 'bot', name: c.name },
        text: st.message,
        posted_at: new Date().toISOString()
      });
      li.classList.add('lc-pending');
      ui.pending.push(li);
      last = st;
    });
    if (last && last.step_type !== 'text') botForm({ name: c.name, state: 'running', expects: last });
  }

  function dropPending() {
    (ui.pending || []).forEach(function (li) {
      var id = li.getAttribute('data-message-id');
      li.remove();
      delete shown[id];
      order.splice(order.indexOf(id), 1);
    });
    ui.pending = null;
  }

  // The answer form: a `question_selection` step's answers as buttons, any other question
  // through the usual input; Restart while the bot has the conversation.
  function botForm(b) {
    if (!ui.choices) return;
    bot = b && !(s && s.closed) ? b : null;
    var expects = bot && bot.state === 'running' ? bot.expects : null;
    var answers = expects && expects.step_type === 'question_selection' ? expects.answers : [];
    var focused = ui.root.activeElement;
    var hadFocus = ui.keepFocus || (focused && (focused === ui.input || focused.parentNode === ui.choices));
    ui.choices.textContent = '';
    ui.choices.hidden = !answers.length;
    ui.choices.setAttribute('aria-label', expects ? expects.message : '');
    answers.forEach(function (a) {
      var c = el('button', 'lc-choice', a.label, { type: 'button' });
      c.style.backgroundColor = o.button_color;
      c.style.color = o.button_text_color;
      c.disabled = busy;
      c.addEventListener('click', function () {
        choose(expects, a);
      });
      ui.choices.appendChild(c);
    });
    ui.restart.hidden = !(s && bot);
    var ask = answers.length ? 'Choose an answer above' : (expects && ASKS[expects.step_type]) || o.input_placeholder;
    ui.input.placeholder = ask || '';
    ui.input.setAttribute('aria-label', ask || 'Message');
    ui.input.disabled = ui.send.disabled = !!answers.length || !!(s && s.closed);
    if (hadFocus && answers.length && !busy) ui.choices.firstChild.focus();
    else if (hadFocus && !ui.input.disabled) ui.input.focus();
    else return;
    ui.keepFocus = false;
  }

  function choose(step, a) {
    if (busy) return;
    busy = true;
    botSeq++;
    // Disabled buttons lose the focus: the next form gets it back.
    ui.keepFocus = true;
    ui.choices.querySelectorAll('button').forEach(function (b) {
      b.disabled = true;
    });
    // One id per step: a retried answer is the same answer.
    step.message_id = step.message_id || uuid();
    var fresh = !s;
    (fresh ? start() : Promise.resolve())
      .then(function () {
        var now = bot && bot.expects;
        if (!bot && fresh) {
          // The bot did not start (an operator came online meanwhile): the choice is a message.
          busy = false;
          return post(Promise.resolve(), a.label);
        }
        // The bot moved on meanwhile (another tab, an operator): the next form shows that.
        if (!now || now.step_id !== step.step_id) return null;
        return mine('POST', '/bot/answer', { step_id: step.step_id, answer_id: a.answer_id, message_id: step.message_id }).then(
          answered
        );
      })
      .catch(function (e) {
        failed('Your answer could not be sent', e);
      })
      .then(function () {
        busy = false;
        botSeq++;
        if (s && !s.closed) refreshBot();
        else botForm(bot);
      });
  }

  function restart() {
    if (busy || !s) return;
    busy = true;
    botSeq++;
    ui.restart.disabled = true;
    mine('POST', '/bot/restart', { message_id: uuid() })
      .then(answered)
      .catch(function (e) {
        failed('That did not work', e);
      })
      .then(function () {
        busy = false;
        ui.restart.disabled = false;
        refreshBot();
      });
  }

  // A bot command's answer: the messages from the visitor's on, and the run after it.
  function answered(r) {
    say('');
    r.messages.forEach(function (m) {
      if (m.author.kind !== 'system') showMessage(m);
    });
    status(r.session);
    var b = r.session.bot;
    // Links are checked on the server too: only http(s) or a path of this site.
    if (b && b.state === 'redirected' && /^(https?:\/\/|\/)/i.test(b.redirect_link || '')) {
      window.location.assign(b.redirect_link);
    }
  }

  // After a bot event, the expected answer form from the session view (one read per burst).
  function refreshBot() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      if (!s || s.closed) return;
      var seq = botSeq;
      mine('GET', '').then(function (v) {
        if (seq === botSeq && !busy && s && !s.closed) status(v);
      }, function () {});
    }, 100);
  }

  // --- the stream ---
  function connect(loadHistory) {
    if (!s || s.closed) return;
    var url = BASE.replace(/^http/, 'ws') + '/api/v1/stream?access_token=' + encodeURIComponent(s.token);
    if (s.position) url += '&from=' + encodeURIComponent(s.position);
    ws = new WebSocket(url);
    ws.onmessage = function (e) {
      var f;
      try {
        f = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (f.type === 'ready') {
        retry = 500;
        if (!s.position) {
          s.position = f.position;
          persist();
        }
        // After the stream is open, so nothing falls between history and stream.
        if (loadHistory) {
          loadHistory = false;
          held = [];
          history().then(release, release);
        }
      } else if (f.type === 'event') {
        if (held) held.push(f);
        else handle(f);
      } else if (f.type === 'typing' && f.party && f.party.kind === 'operator') {
        theirTyping(f.typing);
      }
    };
    ws.onclose = function () {
      ws = null;
      if (!s || s.closed) return;
      // Network drop or server restart: resume after the last position seen.
      setTimeout(function () {
        connect(false);
      }, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  function handle(f) {
    if (!s) return;
    onEvent(f);
    s.position = f.position;
    persist();
  }

  function onEvent(f) {
    var d = f.data || {};
    switch (f.event_type) {
      case 'MessagePosted':
        if (d.author.kind === 'system') return;
        showMessage({
          message_id: d.message_id,
          author: { kind: d.author.kind, name: d.author.kind === 'operator' && s.operator ? s.operator.name : '' },
          text: d.text,
          welcome: d.welcome,
          posted_at: f.recorded_at
        });
        if (d.author.kind === 'operator') {
          theirTyping(false);
          markSeen();
        }
        break;
      case 'MessageEdited':
        if (shown[d.message_id]) shown[d.message_id].querySelector('.lc-text').textContent = d.text;
        break;
      case 'MessageDeleted':
        if (shown[d.message_id]) shown[d.message_id].querySelector('.lc-text').textContent = 'This message was deleted';
        break;
      case 'MessagesSeen':
        if (d.by && d.by.kind === 'operator') {
          seenUpTo = d.up_to;
          showSeen();
        }
        break;
      case 'ChatbotStarted':
        botName = d.script.author_name;
        break;
      case 'ChatbotStepPosted':
      case 'ChatbotSaid':
      case 'ChatbotRestarted':
        showMessage({
          message_id: d.message_id,
          author: { kind: 'bot', name: botName },
          text: f.event_type === 'ChatbotRestarted' ? RESTARTING : d.text,
          posted_at: f.recorded_at
        });
        refreshBot();
        break;
      case 'ChatbotAnswered':
        showMessage({ message_id: d.message_id, author: { kind: 'visitor' }, text: d.text, posted_at: f.recorded_at });
        refreshBot();
        break;
      case 'ChatbotForwarding':
      case 'ChatbotEnded':
        refreshBot();
        break;
      case 'OperatorAssigned':
        status({ status: 'active', operator: { id: d.operator_id, name: d.display_name } });
        break;
      case 'SessionClosed':
        if (d.by && d.by.kind !== 'visitor') ended('The operator has ended the conversation.');
        if (ws) ws.close();
        break;
    }
  }

  function theirTyping(on) {
    clearTimeout(theirTypingTimer);
    var name = (s && s.operator && s.operator.name) || 'The operator';
    ui.typing.textContent = on ? name + ' is typing\u2026' : '';
    // As Odoo: an indicator nobody refreshes goes away after a minute.
    if (on) theirTypingTimer = setTimeout(theirTyping, 60000, false);
  }

  function typing() {
    if (!s || !ws || ws.readyState !== 1) return;
    if (!typingSent) {
      typingSent = true;
      ws.send(JSON.stringify({ type: 'typing', session_id: s.session_id, typing: true }));
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 5000);
  }
  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingSent && ws && ws.readyState === 1) {
      ws.send(JSON.stringify({ type: 'typing', session_id: s.session_id, typing: false }));
    }
    typingSent = false;
  }

  // --- ending and feedback ---
  function end() {
    if (!s) {
      if (PAGE) return;
      fold();
      return;
    }
    var left = s.closed ? Promise.resolve() : mine('POST', '/leave');
    s.closed = true;
    persist();
    if (ws) ws.close();
    left.catch(function () {}).then(feedback);
  }

  function feedback() {
    var rated = null;
    ui.log.hidden = true;
    ui.form.hidden = true;
    ui.typing.hidden = true;
    say('');
    var panel = el('form', 'lc-feedback', null, { 'aria-label': 'Rate the conversation' });
    panel.appendChild(el('p', 'lc-ask', 'How would you rate this conversation?', { id: 'lc-ask' }));
    var faces = el('div', 'lc-faces', null, { role: 'group', 'aria-labelledby': 'lc-ask' });
    [
      [5, 'Happy'],
      [3, 'Neutral'],
      [1, 'Unhappy']
    ].forEach(function (f) {
      var b = el('button', 'lc-face lc-face-' + f[0], null, { type: 'button', 'aria-label': f[1], 'aria-pressed': 'false' });
      b.appendChild(face(f[0]));
      b.addEventListener('click', function () {
        rated = f[0];
        faces.querySelectorAll('.lc-face').forEach(function (x) {
          x.setAttribute('aria-pressed', String(x === b));
        });
      });
      faces.appendChild(b);
    });
    panel.appendChild(faces);
    var comment = el('textarea', 'lc-comment', null, { 'aria-label': 'Explain your note (optional)', placeholder: 'Explain your note (optional)', maxlength: '2000' });
    panel.appendChild(comment);
    var label = el('label', 'lc-check');
    var wants = el('input', null, null, { type: 'checkbox' });
    label.appendChild(wants);
    label.appendChild(document.createTextNode(' Send me the transcript'));
    panel.appendChild(label);
    var email = el('input', 'lc-email', null, { type: 'email', 'aria-label': 'Your email', placeholder: 'Your email', autocomplete: 'email' });
    email.hidden = true;
    wants.addEventListener('change', function () {
      email.hidden = !wants.checked;
      if (wants.checked) email.focus();
    });
    panel.appendChild(email);
    var result = el('p', 'lc-result', '', { role: 'status' });
    var submit = el('button', 'lc-send', 'Send', { type: 'submit' });
    submit.style.backgroundColor = o.button_color;
    submit.style.color = o.button_text_color;
    panel.appendChild(submit);
    panel.appendChild(result);
    var restart = el('button', 'lc-link', PAGE ? 'Start a new conversation' : 'Close', { type: 'button' });
    restart.addEventListener('click', reset);
    panel.appendChild(restart);
    panel.addEventListener('submit', function (e) {
      e.preventDefault();
      var jobs = [];
      if (rated) {
        var body = { value: rated };
        if (comment.value.trim()) body.feedback = comment.value.trim();
        jobs.push(mine('POST', '/rating', body));
      }
      if (wants.checked) jobs.push(mine('POST', '/transcript', { email: email.value.trim() }));
      if (!jobs.length) return reset();
      Promise.all(jobs).then(
        function () {
          result.textContent = 'Thank you for your feedback.';
          submit.disabled = true;
        },
        function (err) {
          result.textContent = 'That did not work: ' + err.message;
        }
      );
    });
    ui.win.appendChild(panel);
    ui.feedback = panel;
    faces.firstChild.focus();
  }

  // A finished conversation is forgotten; the next message starts a new one.
  function reset() {
    drop(KEY);
    s = null;
    shown = {};
    order = [];
    lastVisitorMessage = null;
    seenUpTo = null;
    bot = null;
    busy = false;
    if (ui.win) ui.win.remove();
    ui.win = null;
    if (PAGE) open();
    else if (ui.button) {
      ui.button.setAttribute('aria-expanded', 'false');
      ui.button.focus();
    }
  }

  // --- start ---
  function resume() {
    return mine('GET', '').then(function (v) {
      status(v);
      if (s.closed) return history();
      mine('POST', '/pages', { url: (location.pathname + location.search).slice(0, 2000) }).catch(function () {});
      // Resumes after the stored position; the history fills what came before.
      connect(true);
    });
  }

  function render(data) {
    init = data;
    o = data.options || {};
    s = load(KEY);
    // A conversation the visitor ended stays ended: the next message starts a new one.
    if (s && s.closed) {
      drop(KEY);
      s = null;
    }
    if (PAGE && o.channel_name) document.title = o.channel_name;
    var action = data.rule ? data.rule.action : 'show';
    // A page may hide the button but never a conversation in progress (except `hide`).
    var visible = s ? action !== 'hide' || PAGE : data.show_button || PAGE;
    if (!visible) return;
    mount();
    if (!PAGE) button();
    if (!s && action === 'show_with_notification' && o.notification_text && !PAGE) bubble();
    if (s) {
      buildWindow();
      if (s.open || PAGE) open();
      resume().catch(function (e) {
        if (e && (e.status === 401 || e.status === 403 || e.status === 404)) reset();
      });
    } else if (PAGE) {
      open();
    } else if (action === 'open_automatically' && window.innerWidth >= SMALL_SCREEN && !load(POPUP)) {
      // As Odoo: once per browser, not on small screens, not over a window already open.
      setTimeout(function () {
        if (ui.win && !ui.win.hidden) return;
        open();
        save(POPUP, { done: true }, 3650 * DAY);
      }, Math.max(0, Number(data.rule.timer_seconds) || 0) * 1000);
    }
  }

  function go() {
    var url = (location.pathname + location.search).slice(0, 2000);
    api('GET', '/api/v1/public/channels/' + encodeURIComponent(CH) + '/init?url=' + encodeURIComponent(url))
      .then(render)
      .catch(function () {
        if (!PAGE) return;
        mount();
        ui.frame.appendChild(el('p', 'lc-notice', 'This chat is not available right now. Please try again later.'));
      });
  }

  if (document.body) go();
  else document.addEventListener('DOMContentLoaded', go);
})();
