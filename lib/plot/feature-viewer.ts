// The feature page's CSS and script (plain ES2017, no dependencies), inlined by feature-html.ts.
// Kept as strings so the page code is shipped verbatim (never transpiled or instrumented). Tokens
// and labels enter the DOM only through textContent and title, never as markup.

export const FEATURE_VIEWER_CSS = String.raw`
:root { --fg: #1d1d1f; --muted: #666; --line: #ddd; --accent: #2563eb; --hot: 255, 112, 0; }
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 "DejaVu Sans", system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
header { display: flex; align-items: baseline; gap: 16px; padding: 10px 16px; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
h1 { font-size: 17px; margin: 0; overflow-wrap: anywhere; }
.info { color: var(--muted); }
main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(300px, 420px); align-items: start; }
@media (max-width: 820px) { main { grid-template-columns: minmax(0, 1fr); } }
#fx-left { padding: 10px 16px; min-width: 0; }
#fx-right { padding: 10px 16px; border-left: 1px solid var(--line); position: sticky; top: 0; max-height: 100vh; overflow: auto; min-width: 0; }
.panel { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; margin-bottom: 10px; background: #fafafa; }
#fx-feature { position: sticky; top: 0; z-index: 1; }
#fx-feature-name { font-weight: bold; overflow-wrap: anywhere; }
#fx-feature-stats { color: var(--muted); overflow-wrap: anywhere; }
.legend { display: flex; align-items: center; gap: 6px; margin-top: 4px; color: var(--muted); font-size: 11px; }
.legend .ramp { width: 140px; height: 10px; border: 1px solid #ccc; background: linear-gradient(to right, rgba(var(--hot), 0.1), rgba(var(--hot), 0.9)); }
#fx-tokens { font-size: 15px; line-height: 1.45; }
/* Inline blocks: lines break between tokens, never inside one (unless it is wider than the line). */
.tok { display: inline-block; vertical-align: top; max-width: 100%; overflow-wrap: anywhere; white-space: pre-wrap; scroll-margin: 110px 0 20px;
  padding: 1px 0; margin: 2px 1px; border-radius: 3px; cursor: pointer; box-shadow: inset 0 -1px 0 #e4e4e4; }
.tok.blank { min-width: 0.6em; }
.tok:hover { outline: 1px solid #999; }
.tok.pinned { outline: 2px solid #111; }
.ctl { color: #999; }
.tok[data-act] .ctl { color: #333; }
#fx-token .head { font-weight: bold; overflow-wrap: anywhere; }
#fx-token .hint, .muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th { text-align: left; font-weight: normal; color: var(--muted); border-bottom: 1px solid var(--line); padding: 2px 4px; }
td { padding: 2px 4px; border-bottom: 1px solid #f0f0f0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
th:nth-child(1), td:nth-child(1) { width: 68px; }
th.num, td.num { width: 62px; text-align: right; font-variant-numeric: tabular-nums; }
tr.pick { cursor: pointer; }
tr.pick:hover td { background: #f1f5ff; }
tr.sel td { background: #dbe6ff; }
tr.absent { color: #999; cursor: default; }
.pin { color: var(--accent); font-size: 10px; margin-left: 3px; }
th.bar, td.bar { width: 64px; padding-left: 2px; }
td.bar i { display: block; height: 9px; min-width: 1px; background: rgba(var(--hot), 0.6); border-radius: 2px; }
#fx-list-head { display: flex; gap: 8px; align-items: center; margin: 4px 0; }
#fx-filter { flex: 1; font: inherit; padding: 3px 6px; border: 1px solid #bbb; border-radius: 4px; min-width: 0; }
#fx-count { color: var(--muted); white-space: nowrap; }
button { font: inherit; padding: 3px 10px; border: 1px solid #bbb; background: #f6f6f6; border-radius: 4px; cursor: pointer; margin-top: 6px; }
.error { color: #b91c1c; }
`;

export const FEATURE_VIEWER_JS = String.raw`
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var meta = JSON.parse($('fx-meta').textContent);
  var tokens = meta.tokens, n = meta.seq, labels = meta.labels;
  var PAGE = 200;                     // list rows rendered at a time
  var d = null;                       // the typed arrays of the blob
  var row = new Map();                // feature -> its index in d.ids (embedded features)
  var state = { feature: null, pinnedToken: null, hoverToken: null, filter: '', shown: 0 };
  var spans = [], listed = [], updates = 0;

  function b64(text) {
    var bin = atob(text), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function load() {
    var bytes = b64($('fx-data').textContent.trim());
    if (!meta.compressed) return Promise.resolve(bytes);
    if (typeof DecompressionStream === 'undefined') return Promise.reject(new Error('this browser has no DecompressionStream'));
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Response(stream).arrayBuffer().then(function (buffer) { return new Uint8Array(buffer); });
  }
  function unpack(bytes) {
    var out = {}, offset = 0;
    var kinds = { uint16: Uint16Array, uint32: Uint32Array, float32: Float32Array };
    meta.sections.forEach(function (s) {
      var T = kinds[s[1]];
      out[s[0]] = new T(bytes.buffer, bytes.byteOffset + offset, s[2]);
      offset += Math.ceil(s[2] * T.BYTES_PER_ELEMENT / 4) * 4;
    });
    if (offset !== bytes.length) throw new Error('data blob has ' + bytes.length + ' bytes, expected ' + offset);
    return out;
  }

  // The same formatting as formatActivation() in lib/plot/features.ts.
  function fmt(v) { return v === 0 ? '0' : String(Number(v.toPrecision(4))); }
  // Control characters as escapes, greyed in the text (fonts lack symbols such as U+21B5).
  var CONTROL = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };
  function shown(t) { return t.replace(/[\n\t\r]/g, function (c) { return CONTROL[c]; }); }
  function fillToken(span, t) {
    var parts = t.split(/([\n\t\r])/);
    for (var i = 0; i < parts.length; i++) {
      if (!parts[i]) continue;
      if (i % 2 === 0) { span.appendChild(document.createTextNode(parts[i])); continue; }
      var c = document.createElement('span'); c.className = 'ctl'; c.textContent = CONTROL[parts[i]]; span.appendChild(c);
    }
  }
  function tokenAt(evt) { var s = evt.target.closest ? evt.target.closest('.tok') : null; return s ? Number(s.getAttribute('data-pos')) : null; }
  function quote(t) { return '\u201c' + shown(t) + '\u201d'; }
  function name(f) { return labels[f] !== undefined ? labels[f] : ''; }

  // Activation of embedded feature row r, entry e.
  function value(r, e) { return meta.values === 'uint16' ? d.values[e] / 65535 * d.max[r] : d.values[e]; }
  function column(f) {
    var r = row.get(f), out = { positions: [], values: [] };
    if (r === undefined) return out;
    for (var e = d.starts[r]; e < d.starts[r + 1]; e++) { out.positions.push(d.positions[e]); out.values.push(value(r, e)); }
    return out;
  }

  // ---- tokens ----
  function buildTokens() {
    var box = $('fx-tokens'), frag = document.createDocumentFragment();
    for (var i = 0; i < n; i++) {
      var s = document.createElement('span'), t = tokens[i];
      s.className = 'tok' + (t.trim() === '' && t.indexOf('\n') < 0 ? ' blank' : '');
      s.setAttribute('data-pos', String(i));
      fillToken(s, t);
      spans.push(s);
      frag.appendChild(s);
      if (t.indexOf('\n') >= 0) frag.appendChild(document.createElement('br'));
    }
    box.appendChild(frag);
    box.addEventListener('mouseover', function (evt) {
      var p = tokenAt(evt);
      if (p !== null && state.pinnedToken === null && p !== state.hoverToken) { state.hoverToken = p; showToken(); }
    });
    box.addEventListener('mouseleave', function () { if (state.pinnedToken === null) { state.hoverToken = null; showToken(); } });
    box.addEventListener('click', function (evt) {
      var p = tokenAt(evt);
      if (p !== null) pinToken(state.pinnedToken === p ? null : p);
    });
  }
  function pinToken(p) {
    if (state.pinnedToken !== null) spans[state.pinnedToken].classList.remove('pinned');
    state.pinnedToken = p;
    if (p !== null) spans[p].classList.add('pinned');
    state.hoverToken = p;
    showToken();
  }
  function paint() {
    var f = state.feature, r = f === null ? undefined : row.get(f);
    for (var i = 0; i < n; i++) {
      var s = spans[i];
      s.style.backgroundColor = '';
      s.removeAttribute('data-act');
      s.title = '#' + i + ' ' + quote(tokens[i]) + (f === null ? '' : ': feature ' + f + ' = 0');
    }
    if (r !== undefined) {
      var max = d.max[r];
      for (var e = d.starts[r]; e < d.starts[r + 1]; e++) {
        var p = d.positions[e], v = value(r, e), sp = spans[p];
        sp.style.backgroundColor = 'rgba(255, 112, 0, ' + (0.1 + 0.8 * Math.min(1, v / max)).toFixed(3) + ')';
        sp.setAttribute('data-act', fmt(v));
        sp.title = '#' + p + ' ' + quote(tokens[p]) + ': feature ' + f + ' = ' + fmt(v);
      }
    }
  }

  // ---- the selected feature ----
  // reveal: scroll the feature's top token into view (when the user picked the feature).
  function selectFeature(f, reveal) {
    if (!row.has(f)) return false;
    state.feature = f;
    paint();
    var r = row.get(f), label = name(f), count = d.starts[r + 1] - d.starts[r];
    $('fx-feature-name').textContent = 'Feature ' + f + (label ? ' \u00b7 ' + label : '');
    var stats;
    if (count === 0) stats = 'does not fire on this prompt';
    else {
      var at = 0, best = -1;
      for (var e = d.starts[r]; e < d.starts[r + 1]; e++) { var v = value(r, e); if (v > best) { best = v; at = d.positions[e]; } }
      if (reveal) spans[at].scrollIntoView({ block: 'nearest' });
      stats = 'max ' + fmt(d.max[r]) + ' at ' + quote(tokens[at]) + ' (#' + at + ') \u00b7 fires on ' + count + ' of ' + n + ' tokens';
    }
    $('fx-feature-stats').textContent = stats;
    $('fx-legend-max').textContent = fmt(d.max[r]);
    var rows = document.querySelectorAll('tr[data-feature]');
    for (var i = 0; i < rows.length; i++) rows[i].classList.toggle('sel', Number(rows[i].getAttribute('data-feature')) === f);
    document.body.setAttribute('data-selected', String(f));
    done();
    return true;
  }

  // ---- the token panel ----
  function cell(tr, text, cls) { var td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }
  // A value and a bar of its fraction of the largest.
  function barCells(tr, text, fraction) {
    cell(tr, text, 'num');
    var td = document.createElement('td'), bar = document.createElement('i');
    td.className = 'bar'; bar.style.width = (100 * Math.min(1, fraction)).toFixed(1) + '%';
    td.appendChild(bar); tr.appendChild(td);
  }
  function showToken() {
    var panel = $('fx-token'), p = state.hoverToken;
    panel.textContent = '';
    if (p === null) {
      var hint = document.createElement('div'); hint.className = 'hint';
      hint.textContent = 'Hover a token for its top features; click it to keep them here.';
      panel.appendChild(hint); done(); return;
    }
    var head = document.createElement('div'); head.className = 'head';
    head.textContent = 'Token #' + p + ' ' + quote(tokens[p]);
    var sub = document.createElement('div'); sub.className = 'muted';
    var k = d.topStart[p + 1] - d.topStart[p];
    sub.textContent = d.l0[p] + ' active feature' + (d.l0[p] === 1 ? '' : 's') + (k ? (k < d.l0[p] ? ', top ' + k : '') + ':' : '');
    panel.appendChild(head); panel.appendChild(sub);
    if (!k) { done(); return; }
    var table = document.createElement('table'), body = document.createElement('tbody');
    table.id = 'fx-token-features';
    var top = d.topValues[d.topStart[p]];
    for (var e = d.topStart[p]; e < d.topStart[p + 1]; e++) {
      var f = d.topIds[e], tr = document.createElement('tr');
      tr.setAttribute('data-feature', String(f));
      tr.className = row.has(f) ? 'pick' : 'absent';
      if (!row.has(f)) tr.title = 'not kept in this page (it keeps the ' + meta.embedded + ' most active features)';
      cell(tr, String(f)); cell(tr, name(f)).title = name(f);
      barCells(tr, fmt(d.topValues[e]), d.topValues[e] / top);
      if (f === state.feature) tr.classList.add('sel');
      body.appendChild(tr);
    }
    table.appendChild(body); panel.appendChild(table);
    done();
  }

  // ---- the feature list ----
  function buildList() {
    var all = [], top = 0;
    for (var r = 0; r < d.ids.length; r++) { all.push(r); top = Math.max(top, d.max[r]); }
    state.rows = all;
    state.top = top;
    applyFilter('');
    $('fx-filter').addEventListener('input', function (evt) { applyFilter(evt.target.value); });
    $('fx-more').addEventListener('click', function () { renderRows(state.shown + PAGE); });
    document.addEventListener('click', function (evt) {
      var tr = evt.target.closest ? evt.target.closest('tr[data-feature]') : null;
      if (tr && !tr.classList.contains('absent')) selectFeature(Number(tr.getAttribute('data-feature')), true);
    });
  }
  function applyFilter(text) {
    var q = text.trim().toLowerCase();
    listed = !q ? state.rows : state.rows.filter(function (r) {
      var f = d.ids[r];
      return String(f).indexOf(q) === 0 || name(f).toLowerCase().indexOf(q) >= 0;
    });
    $('fx-list').tBodies[0].textContent = '';
    state.shown = 0;
    renderRows(PAGE);
  }
  function renderRows(upTo) {
    var body = $('fx-list').tBodies[0], frag = document.createDocumentFragment();
    var top = state.top, end = Math.min(upTo, listed.length);
    for (var i = state.shown; i < end; i++) {
      var r = listed[i], f = d.ids[r], tr = document.createElement('tr');
      tr.className = 'pick' + (f === state.feature ? ' sel' : '');
      tr.setAttribute('data-feature', String(f));
      var id = cell(tr, String(f));
      if (r < meta.pinned) { var pin = document.createElement('span'); pin.className = 'pin'; pin.textContent = 'pinned'; id.appendChild(pin); }
      cell(tr, name(f)).title = name(f);
      barCells(tr, fmt(d.max[r]), top > 0 ? d.max[r] / top : 0);
      cell(tr, String(d.starts[r + 1] - d.starts[r]), 'num');
      frag.appendChild(tr);
    }
    body.appendChild(frag);
    state.shown = end;
    $('fx-more').hidden = end >= listed.length;
    $('fx-count').textContent = end < listed.length ? end + ' of ' + listed.length : listed.length + (listed.length === 1 ? ' feature' : ' features');
  }

  function describe() {
    var text = n + ' token' + (n === 1 ? '' : 's') + ' \u00b7 ' + meta.dSae.toLocaleString('en-US') + ' features \u00b7 ' +
      meta.active.toLocaleString('en-US') + ' fire on this prompt \u00b7 mean L0 ' + (meta.nnz / n).toFixed(1);
    if (meta.embedded < meta.active) text += ' \u00b7 this page keeps the ' + meta.embedded.toLocaleString('en-US') + ' most active (' +
      meta.entries.toLocaleString('en-US') + ' activations)';
    $('fx-info').textContent = text;
  }
  function done() { updates++; document.body.setAttribute('data-updates', String(updates)); }

  // Test and scripting hook.
  window.torchscopeFeatures = {
    meta: meta, state: state, selectFeature: selectFeature, pinToken: pinToken, column: column, fmt: fmt,
    listed: function () { return listed.map(function (r) { return d.ids[r]; }); }
  };

  document.addEventListener('keydown', function (evt) { if (evt.key === 'Escape' && state.pinnedToken !== null) pinToken(null); });
  var t0 = performance.now();
  load().then(function (bytes) {
    d = unpack(bytes);
    for (var r = 0; r < d.ids.length; r++) row.set(d.ids[r], r);
    describe();
    buildTokens();
    buildList();
    showToken();
    if (d.ids.length) selectFeature(d.ids[0]);
    else { $('fx-feature-name').textContent = 'No feature fires on this prompt'; paint(); }
    document.body.setAttribute('data-load-ms', String(Math.round(performance.now() - t0)));
    document.body.setAttribute('data-ready', '1');
  }).catch(function (error) {
    $('fx-feature-name').textContent = 'Cannot load the feature data: ' + error.message;
    $('fx-feature-name').className = 'error';
    document.body.setAttribute('data-ready', 'error');
  });
})();
`;
