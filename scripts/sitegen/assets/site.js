/*
 * The site's only script: the search box, and collapsing the sidebar on
 * narrow screens. Plain JavaScript, no library, nothing from the network:
 * the index (search-index.js, generated at build time) is loaded from the
 * site itself the first time the search box is used.
 */
(function () {
  'use strict';

  var root = document.documentElement.getAttribute('data-root') || '';
  var input = document.getElementById('site-search');
  var panel = document.getElementById('search-results');
  var KIND_LABELS = { section: 'Section', requirement: 'Requirement', schema: 'Schema', vector: 'Vectors', check: 'Check' };
  var KIND_WEIGHT = { requirement: 4, section: 3, schema: 3, check: 2, vector: 2 };
  var MAX_RESULTS = 12;
  var index = null;
  var loading = null;
  var active = -1;

  // On a narrow screen the table of contents starts folded so the text comes first.
  var toggle = document.querySelector('.sidebar-toggle');
  if (toggle && window.matchMedia && window.matchMedia('(max-width: 60rem)').matches) toggle.removeAttribute('open');

  if (!input || !panel) return;

  function loadIndex() {
    if (index) return Promise.resolve(index);
    if (loading) return loading;
    loading = new Promise(function (resolve, reject) {
      var script = document.createElement('script');
      script.src = root + 'search-index.js';
      script.onload = function () {
        index = (window.STRIPE402_SEARCH_INDEX || []).map(function (entry) {
          entry.hay = (entry.t + ' ' + entry.s + ' ' + entry.x).toLowerCase();
          entry.title = entry.t.toLowerCase();
          return entry;
        });
        resolve(index);
      };
      script.onerror = function () {
        loading = null;
        reject(new Error('the search index could not be loaded'));
      };
      document.head.appendChild(script);
    });
    return loading;
  }

  function score(entry, query, terms) {
    var total = 0;
    for (var i = 0; i < terms.length; i++) {
      if (entry.hay.indexOf(terms[i]) === -1) return 0;
      if (entry.title.indexOf(terms[i]) !== -1) total += 6;
    }
    if (entry.title === query) total += 100;
    else if (entry.title.indexOf(query) === 0) total += 30;
    else if (entry.title.indexOf(query) !== -1) total += 15;
    else if (entry.hay.indexOf(query) !== -1) total += 5;
    return total + (KIND_WEIGHT[entry.k] || 1);
  }

  function search(query) {
    var q = query.trim().toLowerCase();
    if (!q) return [];
    var terms = q.split(/\s+/);
    var hits = [];
    for (var i = 0; i < index.length; i++) {
      var s = score(index[i], q, terms);
      if (s > 0) hits.push({ entry: index[i], score: s, order: i });
    }
    hits.sort(function (a, b) { return b.score - a.score || a.order - b.order; });
    return hits.slice(0, MAX_RESULTS).map(function (hit) { return hit.entry; });
  }

  /** A piece of text around the first matched term, with every term marked. */
  function snippet(text, terms) {
    var lower = text.toLowerCase();
    var at = -1;
    for (var i = 0; i < terms.length && at === -1; i++) at = lower.indexOf(terms[i]);
    var start = Math.max(0, at - 60);
    var piece = (start > 0 ? '…' : '') + text.slice(start, start + 180) + (start + 180 < text.length ? '…' : '');
    var fragment = document.createDocumentFragment();
    var pattern = new RegExp('(' + terms.map(function (t) { return t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }).join('|') + ')', 'gi');
    var last = 0;
    piece.replace(pattern, function (match, _group, offset) {
      fragment.appendChild(document.createTextNode(piece.slice(last, offset)));
      var mark = document.createElement('mark');
      mark.textContent = match;
      fragment.appendChild(mark);
      last = offset + match.length;
      return match;
    });
    fragment.appendChild(document.createTextNode(piece.slice(last)));
    return fragment;
  }

  function close() {
    panel.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    active = -1;
  }

  function render(query) {
    var results = search(query);
    var terms = query.trim().toLowerCase().split(/\s+/).filter(Boolean);
    panel.textContent = '';
    active = -1;
    if (!query.trim()) return close();
    if (results.length === 0) {
      var empty = document.createElement('p');
      empty.className = 'search-empty';
      empty.textContent = 'Nothing matches “' + query.trim() + '”.';
      panel.appendChild(empty);
    }
    results.forEach(function (entry, i) {
      var link = document.createElement('a');
      link.className = 'search-result';
      link.href = root + entry.u;
      link.setAttribute('role', 'option');
      link.id = 'search-result-' + i;
      var head = document.createElement('span');
      head.className = 'search-result-head';
      var kind = document.createElement('span');
      kind.className = 'search-kind search-kind-' + entry.k;
      kind.textContent = KIND_LABELS[entry.k] || entry.k;
      var title = document.createElement('span');
      title.className = 'search-title';
      title.textContent = entry.t;
      head.appendChild(kind);
      head.appendChild(title);
      var context = document.createElement('span');
      context.className = 'search-context';
      context.textContent = entry.s;
      var text = document.createElement('span');
      text.className = 'search-snippet';
      text.appendChild(snippet(entry.x, terms));
      link.appendChild(head);
      link.appendChild(context);
      link.appendChild(text);
      link.addEventListener('click', close);
      panel.appendChild(link);
    });
    panel.hidden = false;
    input.setAttribute('aria-expanded', 'true');
  }

  function move(step) {
    var options = panel.querySelectorAll('.search-result');
    if (options.length === 0) return;
    if (options[active]) options[active].classList.remove('active');
    active = (active + step + options.length) % options.length;
    options[active].classList.add('active');
    options[active].scrollIntoView({ block: 'nearest' });
    input.setAttribute('aria-activedescendant', options[active].id);
  }

  input.addEventListener('focus', function () { loadIndex().catch(function () {}); });
  input.addEventListener('input', function () {
    var query = input.value;
    loadIndex().then(function () { if (input.value === query) render(query); }, function (error) {
      panel.textContent = error.message;
      panel.hidden = false;
    });
  });
  input.addEventListener('keydown', function (event) {
    if (event.key === 'ArrowDown') { move(1); event.preventDefault(); }
    else if (event.key === 'ArrowUp') { move(-1); event.preventDefault(); }
    else if (event.key === 'Escape') { close(); input.blur(); }
    else if (event.key === 'Enter') {
      var options = panel.querySelectorAll('.search-result');
      var chosen = options[active] || options[0];
      if (chosen) { event.preventDefault(); close(); window.location.href = chosen.href; }
    }
  });
  document.addEventListener('keydown', function (event) {
    var target = event.target;
    var typing = target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA' || target.isContentEditable);
    if (event.key === '/' && !typing) { event.preventDefault(); input.focus(); }
  });
  document.addEventListener('click', function (event) {
    if (!panel.contains(event.target) && event.target !== input) close();
  });
})();
