// The dashboard page's CSS and script (plain ES2017, no dependencies), inlined by
// feature-dashboard.ts. Kept as strings so the page code is shipped verbatim (never transpiled or
// instrumented). Tokens enter the DOM only through textContent and title, never as markup.

export const DASHBOARD_VIEWER_CSS = String.raw`
:root { --fg: #1d1d1f; --muted: #666; --line: #ddd; --accent: #2563eb; --hot: 255, 112, 0; --cold: 37, 99, 235; }
* { box-sizing: border-box; }
html, body { height: 100%; }
body { margin: 0; display: flex; flex-direction: column; font: 13px/1.4 "DejaVu Sans", system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
header { display: flex; align-items: baseline; gap: 16px; padding: 10px 16px; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
h1 { font-size: 17px; margin: 0; overflow-wrap: anywhere; }
.info, .muted { color: var(--muted); }
main { flex: 1; min-height: 0; display: grid; grid-template-columns: 250px minmax(0, 1fr); }
#fd-side { display: flex; flex-direction: column; min-height: 0; border-right: 1px solid var(--line); padding: 8px 0 0; }
#fd-search { font: inherit; margin: 0 10px 6px; padding: 4px 7px; border: 1px solid #bbb; border-radius: 4px; }
#fd-sort { display: flex; justify-content: space-between; align-items: center; margin: 0 10px 6px; color: var(--muted); }
#fd-sort select { font: inherit; }
#fd-list { flex: 1; min-height: 0; overflow-y: auto; border-top: 1px solid var(--line); outline: none; }
#fd-rows { position: relative; }
.row { position: absolute; left: 0; right: 0; height: 24px; display: flex; align-items: center; gap: 8px; padding: 0 10px; cursor: pointer; font-variant-numeric: tabular-nums; }
.row:hover { background: #f1f5ff; }
.row.sel { background: #dbe6ff; }
.row .id { width: 56px; }
.row .max { width: 58px; text-align: right; }
.row .bar { flex: 1; height: 7px; background: #f0f0f0; border-radius: 2px; overflow: hidden; }
.row .bar i { display: block; height: 100%; background: rgba(var(--hot), 0.65); }
#fd-panel { overflow-y: auto; padding: 12px 20px 40px; min-width: 0; }
h2 { font-size: 18px; margin: 0 0 2px; }
.stats { color: var(--muted); margin-bottom: 12px; }
.cards { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 12px; margin-bottom: 14px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; background: #fafafa; }
.cap { font-size: 11px; font-weight: bold; letter-spacing: 0.03em; color: #444; margin-bottom: 4px; }
.card svg { display: block; }
.logits { display: flex; gap: 14px; }
.logits table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.logits td { padding: 1px 6px; white-space: pre; max-width: 150px; overflow: hidden; text-overflow: ellipsis; }
.logits td.v { text-align: right; }
.group { margin-bottom: 12px; }
.group .cap { border-bottom: 1px solid var(--line); padding-bottom: 3px; margin-bottom: 4px; font-size: 12px; }
.ex { display: flex; gap: 8px; align-items: baseline; padding: 2px 0; border-bottom: 1px solid #f3f3f3; cursor: pointer; }
.ex .loc { flex: none; width: 86px; color: var(--muted); font-size: 11px; font-variant-numeric: tabular-nums; }
.ex .val { flex: none; width: 52px; text-align: right; font-size: 11px; font-variant-numeric: tabular-nums; }
.toks { min-width: 0; font-size: 13px; line-height: 1.6; }
.tok { white-space: pre-wrap; border-radius: 2px; padding: 1px 0; box-shadow: inset 0 -1px 0 #e6e6e6; }
.tok.q { font-weight: bold; outline: 1.5px solid #111; outline-offset: -1px; }
.tok.q.blank { display: inline-block; min-width: 0.6em; }
.ctl { color: #999; }
.more { color: var(--muted); }
.error { color: #b91c1c; }
`;

export const DASHBOARD_VIEWER_JS = String.raw`
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var meta = JSON.parse($('fd-meta').textContent);
  var ROW = 24, CROP = 12, SVGNS = 'http://www.w3.org/2000/svg';
  var data = null, listed = [], byIndex = new Map(), state = { selected: null, order: 'index', filter: '', expanded: new Set() };

  function b64(text) {
    var bin = atob(text), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function load() {
    var bytes = b64($('fd-data').textContent.trim());
    if (!meta.compressed) return Promise.resolve(unpack(bytes));
    if (typeof DecompressionStream === 'undefined') return Promise.reject(new Error('this browser has no DecompressionStream'));
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Response(stream).arrayBuffer().then(function (buffer) { return unpack(new Uint8Array(buffer)); });
  }
  // The blob (lib/plot/feature-dashboard.ts pack): its JSON, then the windows' token refs and values.
  function unpack(bytes) {
    var size = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
    var d = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + size)));
    var align = function (n) { return n + (4 - n % 4) % 4; };
    var T = d.wide ? Uint32Array : Uint16Array, at = align(4 + size);
    d.refs = new T(bytes.buffer, bytes.byteOffset + at, d.length);
    d.none = d.wide ? 0xffffffff : 0xffff;
    at = align(at + d.length * T.BYTES_PER_ELEMENT);
    d.values = new Int16Array(bytes.buffer, bytes.byteOffset + at, d.length);
    if (at + d.length * 2 !== bytes.length) throw new Error('data blob has ' + bytes.length + ' bytes, expected ' + (at + d.length * 2));
    // Each example's place in the windows' arrays, in the order they were packed.
    var offset = 0;
    d.features.forEach(function (f) {
      var put = function (x) { x.push(offset); offset += x[4]; };
      f.x.forEach(put);
      f.q.forEach(function (q) { q[4].forEach(put); });
    });
    return d;
  }

  function fmt(v) { return v === 0 ? '0' : String(Number(v.toPrecision(4))); }
  function pct(f) { return (100 * f).toFixed(3) + '%'; }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
  var CONTROL = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };
  function fillToken(span, t) {
    var parts = t.split(/([\n\t\r])/);
    for (var i = 0; i < parts.length; i++) {
      if (!parts[i]) continue;
      if (i % 2 === 0) { span.appendChild(document.createTextNode(parts[i])); continue; }
      span.appendChild(el('span', 'ctl', CONTROL[parts[i]]));
    }
  }
  function token(ref) { return data.tokens[ref]; }

  // ---- the list ----
  function applyList() {
    var q = state.filter.trim(), rows = data.features.slice();
    if (q.charAt(0) === '>') { var above = Number(q.slice(1)); if (!isNaN(above)) rows = rows.filter(function (f) { return f.m > above; }); }
    else if (q) rows = rows.filter(function (f) { return String(f.i).indexOf(q) === 0; });
    if (state.order === 'max') rows.sort(function (a, b) { return b.m - a.m || a.i - b.i; });
    else if (state.order === 'density') rows.sort(function (a, b) { return b.a / b.n - a.a / a.n || a.i - b.i; });
    else rows.sort(function (a, b) { return a.i - b.i; });
    listed = rows;
    $('fd-rows').style.height = (rows.length * ROW) + 'px';
    $('fd-count').textContent = rows.length === data.features.length ? rows.length.toLocaleString('en-US') : rows.length.toLocaleString('en-US') + ' of ' + data.features.length.toLocaleString('en-US');
    renderRows();
  }
  function renderRows() {
    var box = $('fd-list'), rows = $('fd-rows');
    var first = Math.max(0, Math.floor(box.scrollTop / ROW) - 5), last = Math.min(listed.length, Math.ceil((box.scrollTop + box.clientHeight) / ROW) + 5);
    var top = data.top || 1, frag = document.createDocumentFragment();
    rows.textContent = '';
    for (var i = first; i < last; i++) {
      var f = listed[i], r = el('div', 'row' + (f.i === state.selected ? ' sel' : ''));
      r.style.top = (i * ROW) + 'px';
      r.setAttribute('data-feature', String(f.i));
      r.appendChild(el('span', 'id', '#' + f.i));
      r.appendChild(el('span', 'max', fmt(f.m)));
      var bar = el('span', 'bar'), fill = el('i');
      fill.style.width = (100 * Math.max(0, Math.min(1, f.m / top))).toFixed(1) + '%';
      bar.appendChild(fill); r.appendChild(bar);
      r.title = meta.label + ' ' + f.i + ': max ' + fmt(f.m) + ', density ' + pct(f.a / f.n);
      frag.appendChild(r);
    }
    rows.appendChild(frag);
  }
  function reveal(index) {
    var at = -1;
    for (var i = 0; i < listed.length; i++) if (listed[i].i === index) { at = i; break; }
    if (at < 0) return;
    // Out of view: scrolled to the middle (the keys' next row is then in view too).
    var box = $('fd-list');
    if (at * ROW < box.scrollTop || (at + 1) * ROW > box.scrollTop + box.clientHeight) box.scrollTop = at * ROW - (box.clientHeight - ROW) / 2;
    renderRows();
  }

  // ---- pictures ----
  function histogram(h, width, color) {
    var height = 96, pad = 14, svg = document.createElementNS(SVGNS, 'svg');
    svg.setAttribute('width', String(width)); svg.setAttribute('height', String(height + pad + 2));
    var counts = h[2], most = 1;
    for (var i = 0; i < counts.length; i++) most = Math.max(most, counts[i]);
    var w = width / counts.length;
    for (var j = 0; j < counts.length; j++) {
      if (!counts[j]) continue;
      var r = document.createElementNS(SVGNS, 'rect'), bh = Math.max(1, height * counts[j] / most);
      r.setAttribute('x', (j * w + 0.5).toFixed(2)); r.setAttribute('width', Math.max(0.5, w - 1).toFixed(2));
      r.setAttribute('y', (height - bh).toFixed(2)); r.setAttribute('height', bh.toFixed(2));
      r.setAttribute('fill', color(h[0] + (j + 0.5) * (h[1] - h[0]) / counts.length));
      var t = document.createElementNS(SVGNS, 'title');
      t.textContent = fmt(h[0] + j * (h[1] - h[0]) / counts.length) + ' to ' + fmt(h[0] + (j + 1) * (h[1] - h[0]) / counts.length) + ': ' + counts[j];
      r.appendChild(t); svg.appendChild(r);
    }
    var axis = document.createElementNS(SVGNS, 'line');
    axis.setAttribute('x1', '0'); axis.setAttribute('x2', String(width)); axis.setAttribute('y1', String(height + 0.5)); axis.setAttribute('y2', String(height + 0.5));
    axis.setAttribute('stroke', '#999'); svg.appendChild(axis);
    [[h[0], 'start', 0], [h[1], 'end', width]].forEach(function (l) {
      var tx = document.createElementNS(SVGNS, 'text');
      tx.setAttribute('x', String(l[2])); tx.setAttribute('y', String(height + pad)); tx.setAttribute('text-anchor', l[1]);
      tx.setAttribute('font-size', '10'); tx.setAttribute('fill', '#666'); tx.textContent = fmt(l[0]); svg.appendChild(tx);
    });
    var top = document.createElementNS(SVGNS, 'text');
    top.setAttribute('x', String(width)); top.setAttribute('y', '9'); top.setAttribute('text-anchor', 'end');
    top.setAttribute('font-size', '10'); top.setAttribute('fill', '#666'); top.textContent = 'max ' + most; svg.appendChild(top);
    return svg;
  }
  function shade(v, scale) {
    var a = Math.min(1, Math.abs(v) / scale) * 0.85;
    return a < 0.02 ? '' : 'rgba(' + (v > 0 ? '255, 112, 0' : '37, 99, 235') + ', ' + a.toFixed(3) + ')';
  }

  // One example ([row, position, value, first kept position, kept length, offset]): its place, its
  // value, its tokens lit (cropped around the token; a click shows all the page kept).
  function example(f, x, key) {
    var row = x[0], pos = x[1], start = x[3], length = x[4], offset = x[5];
    var line = el('div', 'ex'), at = pos - start, whole = state.expanded.has(key), unit = f.s / 32767, scale = Math.abs(f.m) || f.s || 1;
    line.setAttribute('data-key', key);
    line.appendChild(el('span', 'loc', 'row ' + row + ' \u00b7 #' + pos));
    line.appendChild(el('span', 'val', fmt(x[2])));
    var toks = el('span', 'toks'), from = whole ? 0 : Math.max(0, at - CROP), to = whole ? length : Math.min(length, at + CROP + 1);
    if (from > 0) toks.appendChild(el('span', 'more', '\u2026 '));
    for (var i = from; i < to; i++) {
      var ref = data.refs[offset + i], text = ref === data.none ? null : data.tokens[ref];
      var v = i === at ? x[2] : data.values[offset + i] * unit;
      var s = el('span', 'tok' + (i === at ? ' q' : '') + (text !== null && text.trim() === '' && text.indexOf('\n') < 0 ? ' blank' : ''));
      fillToken(s, text === null ? '\u00b7' : text);
      var bg = shade(v, scale);
      if (bg) s.style.backgroundColor = bg;
      s.title = (text === null ? '' : JSON.stringify(text) + ' ') + '#' + (start + i) + ': ' + fmt(v);
      toks.appendChild(s);
    }
    if (to < length) toks.appendChild(el('span', 'more', ' \u2026'));
    line.appendChild(toks);
    return line;
  }
  function logitTable(rows, sign) {
    var table = el('table'), scale = 0;
    rows.forEach(function (r) { scale = Math.max(scale, Math.abs(r[1])); });
    rows.forEach(function (r) {
      var tr = el('tr'), t = el('td'), v = el('td', 'v', (r[1] > 0 ? '+' : '') + fmt(r[1]));
      fillToken(t, token(r[0]));
      t.title = JSON.stringify(token(r[0]));
      t.style.backgroundColor = 'rgba(' + (sign > 0 ? '37, 99, 235' : '220, 38, 38') + ', ' + (0.6 * Math.abs(r[1]) / (scale || 1)).toFixed(3) + ')';
      tr.appendChild(t); tr.appendChild(v); table.appendChild(tr);
    });
    return table;
  }

  // ---- the panel ----
  function render() {
    var f = byIndex.get(state.selected), panel = $('fd-panel');
    panel.textContent = '';
    if (!f) { panel.appendChild(el('div', 'muted', 'No ' + meta.label.toLowerCase() + ' selected.')); return; }
    panel.appendChild(el('h2', '', meta.label + ' ' + f.i));
    panel.appendChild(el('div', 'stats', 'max ' + fmt(f.m) + ' \u00b7 density ' + pct(f.a / f.n) + ' (' + f.a.toLocaleString('en-US') + ' of ' + f.n.toLocaleString('en-US') + ' tokens above 0)'));
    var cards = el('div', 'cards');
    var acts = el('div', 'card');
    acts.appendChild(el('div', 'cap', 'ACTIVATIONS \u00b7 DENSITY = ' + pct(f.a / f.n)));
    if (f.h) acts.appendChild(histogram(f.h, 300, function () { return 'rgba(255, 112, 0, 0.75)'; }));
    else acts.appendChild(el('div', 'muted', 'never above 0'));
    cards.appendChild(acts);
    if (f.l) {
      var tables = el('div', 'card logits'), neg = el('div'), pos = el('div');
      neg.appendChild(el('div', 'cap', 'NEGATIVE LOGITS')); neg.appendChild(logitTable(f.l.b, -1));
      pos.appendChild(el('div', 'cap', 'POSITIVE LOGITS')); pos.appendChild(logitTable(f.l.t, 1));
      tables.appendChild(neg); tables.appendChild(pos); cards.appendChild(tables);
      var lh = el('div', 'card');
      lh.appendChild(el('div', 'cap', 'LOGITS'));
      lh.appendChild(histogram(f.l.h, 240, function (x) { return x < 0 ? 'rgba(220, 38, 38, 0.7)' : 'rgba(37, 99, 235, 0.7)'; }));
      cards.appendChild(lh);
    }
    panel.appendChild(cards);
    var groups = [['TOP ACTIVATIONS \u00b7 MAX = ' + fmt(f.m), f.x, 't']];
    for (var j = f.q.length - 1; j >= 0; j--) {
      var q = f.q[j];
      groups.push(['INTERVAL ' + fmt(q[0]) + ' \u2013 ' + fmt(q[1]) + ' \u00b7 CONTAINS ' + pct(q[3]), q[4], 'q' + j]);
    }
    groups.forEach(function (g) {
      var box = el('div', 'group');
      box.setAttribute('data-group', g[2]);
      box.appendChild(el('div', 'cap', g[0]));
      if (!g[1].length) box.appendChild(el('div', 'muted', 'no token within the buffer'));
      g[1].forEach(function (x, n) { box.appendChild(example(f, x, g[2] + ':' + n)); });
      panel.appendChild(box);
    });
    panel.scrollTop = 0;
  }
  function select(index) {
    if (!byIndex.has(index)) return false;
    state.selected = index;
    state.expanded.clear();
    render();
    reveal(index);
    if (history.replaceState) history.replaceState(null, '', '#' + index);
    document.body.setAttribute('data-selected', String(index));
    return true;
  }

  function wire() {
    $('fd-search').addEventListener('input', function (e) { state.filter = e.target.value; $('fd-list').scrollTop = 0; applyList(); });
    $('fd-search').addEventListener('keydown', function (e) { if (e.key === 'Enter' && listed.length) select(listed[0].i); });
    $('fd-order').addEventListener('change', function (e) { state.order = e.target.value; applyList(); reveal(state.selected); });
    $('fd-list').addEventListener('scroll', renderRows);
    window.addEventListener('resize', renderRows);
    $('fd-rows').addEventListener('click', function (e) {
      var r = e.target.closest ? e.target.closest('.row') : null;
      if (r) select(Number(r.getAttribute('data-feature')));
    });
    $('fd-list').addEventListener('keydown', function (e) {
      if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
      var at = -1;
      for (var i = 0; i < listed.length; i++) if (listed[i].i === state.selected) { at = i; break; }
      var next = listed[Math.max(0, Math.min(listed.length - 1, at + (e.key === 'ArrowDown' ? 1 : -1)))];
      if (next) { select(next.i); e.preventDefault(); }
    });
    $('fd-panel').addEventListener('click', function (e) {
      var line = e.target.closest ? e.target.closest('.ex') : null;
      if (!line) return;
      var key = line.getAttribute('data-key'), f = byIndex.get(state.selected);
      if (state.expanded.has(key)) state.expanded.delete(key); else state.expanded.add(key);
      var parts = key.split(':'), g = parts[0], n = Number(parts[1]);
      var x = g === 't' ? f.x[n] : f.q[Number(g.slice(1))][4][n];
      line.parentNode.replaceChild(example(f, x, key), line);
    });
    window.addEventListener('hashchange', function () { select(Number(location.hash.slice(1))); });
  }

  window.torchscopeDashboard = {
    meta: meta, state: state, select: select,
    listed: function () { return listed.map(function (f) { return f.i; }); },
    feature: function (i) { return byIndex.get(i); }
  };

  var t0 = performance.now();
  load().then(function (d) {
    data = d;
    data.top = 0;
    data.features.forEach(function (f) { byIndex.set(f.i, f); data.top = Math.max(data.top, f.m); });
    var n = data.features.length ? data.features[0].n : 0;
    $('fd-info').textContent = data.features.length.toLocaleString('en-US') + ' ' + meta.label.toLowerCase() + (data.features.length === 1 ? '' : 's') + ' \u00b7 ' + n.toLocaleString('en-US') + ' tokens';
    wire();
    applyList();
    var wanted = Number(location.hash.slice(1));
    if (!(location.hash.length > 1 && select(wanted))) {
      if (listed.length) select(listed[0].i);
      else render();
    }
    document.body.setAttribute('data-load-ms', String(Math.round(performance.now() - t0)));
    document.body.setAttribute('data-ready', '1');
  }).catch(function (error) {
    $('fd-info').textContent = 'Cannot load the dashboards: ' + error.message;
    $('fd-info').className = 'error';
    document.body.setAttribute('data-ready', 'error');
  });
})();
`;
