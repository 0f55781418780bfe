// The viewer page's CSS and script (plain ES2017, no dependencies), inlined by html.ts.
// Kept as strings so the page code is shipped verbatim (never transpiled or instrumented).

export const VIEWER_CSS = String.raw`
:root { --fg: #1d1d1f; --muted: #666; --line: #ddd; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 "DejaVu Sans", system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
header { display: flex; align-items: center; gap: 16px; padding: 10px 16px; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
h1 { font-size: 17px; margin: 0; overflow-wrap: anywhere; }
.info { color: var(--muted); }
nav { margin-left: auto; display: flex; gap: 4px; }
button { font: inherit; padding: 3px 10px; border: 1px solid #bbb; background: #f6f6f6; border-radius: 4px; cursor: pointer; }
button.active { background: var(--accent); color: #fff; border-color: var(--accent); }
#ts-controls { display: flex; align-items: center; gap: 14px; padding: 8px 16px; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
#ts-heads { display: inline-flex; flex-wrap: wrap; gap: 4px; }
#ts-heads label { display: inline-flex; align-items: center; gap: 3px; padding: 1px 6px 1px 3px; border-radius: 3px; border: 1px solid var(--line); cursor: pointer; user-select: none; }
#ts-heads .swatch { width: 11px; height: 11px; border-radius: 2px; display: inline-block; }
main { padding: 10px 16px; }
#ts-status { color: var(--muted); min-height: 1.4em; margin-bottom: 6px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#ts-canvas { display: block; cursor: default; }
#ts-model-grid { display: grid; gap: 4px; align-items: center; }
#ts-model-grid .lab { color: var(--muted); font-size: 11px; text-align: center; }
#ts-model-grid canvas { width: 64px; height: 64px; image-rendering: pixelated; border: 2px solid transparent; cursor: pointer; display: block; }
#ts-model-grid canvas:hover { border-color: #999; }
#ts-model-grid canvas.selected { border-color: #e11d48; }
.error { color: #b91c1c; }
`;

export const VIEWER_JS = String.raw`
(function () {
  'use strict';
  var meta = JSON.parse(document.getElementById('ts-meta').textContent);
  var n = meta.n, L = meta.layers, H = meta.heads, tokens = meta.tokens;
  var att = null;                     // Uint8Array [L, H, n, n], value = scale * (q / 255)^2
  var value = new Float32Array(256);
  for (var q = 0; q < 256; q++) value[q] = meta.scale * (q / 255) * (q / 255);
  var cmap = b64(meta.colormap);      // 256 x RGB
  var PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#ad494a', '#637939', '#843c39', '#7b4173', '#3182bd'];
  function headColour(h) { return h < PALETTE.length ? PALETTE[h] : 'hsl(' + ((h * 137.508) % 360).toFixed(1) + ', 65%, 45%)'; }

  var state = { layer: 0, heads: [], focus: null, threshold: meta.threshold, view: 'head' };
  for (var h0 = 0; h0 < H; h0++) state.heads.push(true);

  var $ = function (id) { return document.getElementById(id); };
  var canvas = $('ts-canvas'), ctx = canvas.getContext('2d');
  var status = $('ts-status');

  function b64(text) {
    var bin = atob(text), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function load() {
    var bytes = b64(document.getElementById('ts-data').textContent.trim());
    if (!meta.compressed) return Promise.resolve(bytes);
    if (typeof DecompressionStream === 'undefined') return Promise.reject(new Error('this browser has no DecompressionStream; save the page with compress: false'));
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Response(stream).arrayBuffer().then(function (buffer) { return new Uint8Array(buffer); });
  }

  // ---- head view geometry ----
  var geo = {};
  function layout() {
    var rowH = n <= 128 ? 20 : 14, font = n <= 128 ? 13 : 11;
    ctx.font = font + 'px "DejaVu Sans", sans-serif';
    var widest = 0;
    for (var i = 0; i < n; i++) widest = Math.max(widest, ctx.measureText(label(i)).width);
    var colW = Math.ceil(Math.min(widest, 180)) + 12;
    var gap = Math.max(220, Math.min(420, (window.innerWidth || 900) - 2 * colW - 80));
    geo = { rowH: rowH, font: font, colW: colW, gap: gap, top: 8,
            leftX: colW, rightX: colW + gap, width: 2 * colW + gap, height: 16 + n * rowH };
    var dpr = window.devicePixelRatio || 1;
    canvas.style.width = geo.width + 'px';
    canvas.style.height = geo.height + 'px';
    canvas.width = Math.round(geo.width * dpr);
    canvas.height = Math.round(geo.height * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  }
  function label(i) { var t = tokens[i]; return t.length > 24 ? t.slice(0, 23) + '\u2026' : t; }
  function rowY(i) { return geo.top + (i + 0.5) * geo.rowH; }

  function selectedHeads() { var out = []; for (var h = 0; h < H; h++) if (state.heads[h]) out.push(h); return out; }

  // ---- head view drawing ----
  var BUCKETS = 24;
  function draw() {
    if (!att) return;
    ctx.clearRect(0, 0, geo.width, geo.height);
    var heads = selectedHeads(), f = state.focus, thr = state.threshold;
    var qThr = 0; while (qThr < 255 && value[qThr] < thr) qThr++;
    if (qThr === 0) qThr = 1;         // never draw exact zeros
    var x1 = geo.leftX + 2, x2 = geo.rightX - 2;
    var base = state.layer * H * n * n;
    // Focus boxes behind the other column's tokens: one translucent layer per head.
    if (f) {
      for (var k = 0; k < heads.length; k++) {
        var h = heads[k], off = base + h * n * n;
        ctx.fillStyle = headColour(h);
        for (var j = 0; j < n; j++) {
          var qv = f.side === 'left' ? att[off + f.index * n + j] : att[off + j * n + f.index];
          if (qv < qThr) continue;
          ctx.globalAlpha = Math.min(1, value[qv]) / heads.length * 1.5;
          if (f.side === 'left') ctx.fillRect(geo.rightX, rowY(j) - geo.rowH / 2 + 1, geo.colW, geo.rowH - 2);
          else ctx.fillRect(0, rowY(j) - geo.rowH / 2 + 1, geo.colW - 4, geo.rowH - 2);
        }
      }
      ctx.globalAlpha = 1;
    }
    // Lines, batched by head and opacity bucket: one stroke per bucket.
    ctx.lineWidth = n <= 128 ? 2 : 1.2;
    for (var k2 = 0; k2 < heads.length; k2++) {
      var hh = heads[k2], o = base + hh * n * n;
      var paths = new Array(BUCKETS);
      var r0 = 0, r1 = n, c0 = 0, c1 = n;
      if (f && f.side === 'left') { r0 = f.index; r1 = f.index + 1; }
      if (f && f.side === 'right') { c0 = f.index; c1 = f.index + 1; }
      for (var r = r0; r < r1; r++) {
        var row = o + r * n, y1 = rowY(r);
        for (var c = c0; c < c1; c++) {
          var qq = att[row + c];
          if (qq < qThr) continue;
          var b = Math.min(BUCKETS - 1, Math.floor(Math.min(1, value[qq]) * BUCKETS));
          var p = paths[b] || (paths[b] = new Path2D());
          p.moveTo(x1, y1); p.lineTo(x2, rowY(c));
        }
      }
      ctx.strokeStyle = headColour(hh);
      for (var b2 = 0; b2 < BUCKETS; b2++) {
        if (!paths[b2]) continue;
        ctx.globalAlpha = Math.max(0.05, (b2 + 0.5) / BUCKETS) / Math.sqrt(heads.length);
        ctx.stroke(paths[b2]);
      }
    }
    ctx.globalAlpha = 1;
    // Tokens.
    ctx.font = geo.font + 'px "DejaVu Sans", sans-serif';
    ctx.textBaseline = 'middle';
    for (var i = 0; i < n; i++) {
      var y = rowY(i);
      var dimL = f && !(f.side === 'left' && f.index === i) && f.side === 'left';
      var dimR = f && !(f.side === 'right' && f.index === i) && f.side === 'right';
      ctx.fillStyle = dimL ? '#aaa' : '#1d1d1f';
      ctx.textAlign = 'right';
      ctx.fillText(label(i), geo.leftX - 6, y);
      ctx.fillStyle = dimR ? '#aaa' : '#1d1d1f';
      ctx.textAlign = 'left';
      ctx.fillText(label(i), geo.rightX + 6, y);
    }
    if (f) {
      ctx.strokeStyle = '#111'; ctx.lineWidth = 1;
      var fx = f.side === 'left' ? 0.5 : geo.rightX + 0.5;
      ctx.strokeRect(fx, rowY(f.index) - geo.rowH / 2 + 0.5, geo.colW - 4, geo.rowH - 1);
    }
    describe();
    drawCount++;
    document.body.setAttribute('data-draws', String(drawCount));
  }
  var drawCount = 0;

  function describe() {
    var heads = selectedHeads(), f = state.focus;
    var text = 'Layer ' + state.layer + ', ' + (heads.length === H ? 'all heads' : heads.length ? 'heads ' + heads.join(', ') : 'no heads');
    if (f && heads.length) {
      var base = state.layer * H * n * n, sums = new Float32Array(n);
      for (var k = 0; k < heads.length; k++) {
        var o = base + heads[k] * n * n;
        for (var j = 0; j < n; j++) sums[j] += value[f.side === 'left' ? att[o + f.index * n + j] : att[o + j * n + f.index]] / heads.length;
      }
      var order = []; for (var j2 = 0; j2 < n; j2++) order.push(j2);
      order.sort(function (a, b) { return sums[b] - sums[a]; });
      var top = order.slice(0, 5).map(function (j) { return tokens[j] + ' ' + sums[j].toFixed(3); });
      text += ' \u2014 "' + tokens[f.index] + '" (' + f.index + ') ' + (f.side === 'left' ? 'attends to: ' : 'is attended by: ') + top.join(', ');
    } else text += ' \u2014 hover a token to focus its lines';
    status.textContent = text;
  }

  function hit(evt) {
    var rect = canvas.getBoundingClientRect();
    var x = evt.clientX - rect.left, y = evt.clientY - rect.top;
    var i = Math.floor((y - geo.top) / geo.rowH);
    if (i < 0 || i >= n) return null;
    if (x >= 0 && x < geo.leftX) return { side: 'left', index: i };
    if (x >= geo.rightX && x <= geo.width) return { side: 'right', index: i };
    return null;
  }
  var pending = false;
  function schedule() { if (!pending) { pending = true; requestAnimationFrame(function () { pending = false; draw(); }); } }
  canvas.addEventListener('mousemove', function (evt) {
    var f = hit(evt), g = state.focus;
    if ((f && g && f.side === g.side && f.index === g.index) || (!f && !g)) return;
    state.focus = f; schedule();
  });
  canvas.addEventListener('mouseleave', function () { if (state.focus) { state.focus = null; schedule(); } });

  // ---- controls ----
  function buildControls() {
    var select = $('ts-layer');
    for (var l = 0; l < L; l++) { var opt = document.createElement('option'); opt.value = String(l); opt.textContent = String(l); select.appendChild(opt); }
    select.addEventListener('change', function () { state.layer = Number(select.value); state.focus = null; draw(); markSelected(); });
    var heads = $('ts-heads');
    for (var h = 0; h < H; h++) {
      var lab = document.createElement('label');
      var box = document.createElement('input'); box.type = 'checkbox'; box.checked = true; box.id = 'ts-head-' + h; box.setAttribute('data-head', String(h));
      var sw = document.createElement('span'); sw.className = 'swatch'; sw.style.background = headColour(h);
      lab.appendChild(box); lab.appendChild(sw); lab.appendChild(document.createTextNode(String(h)));
      heads.appendChild(lab);
      box.addEventListener('change', function (evt) { state.heads[Number(evt.target.getAttribute('data-head'))] = evt.target.checked; draw(); markSelected(); });
    }
    $('ts-all').addEventListener('click', function () { setHeads(function () { return true; }); });
    $('ts-none').addEventListener('click', function () { setHeads(function () { return false; }); });
    var thr = $('ts-threshold');
    thr.value = String(state.threshold);
    $('ts-threshold-value').textContent = state.threshold.toFixed(3);
    thr.addEventListener('input', function () { state.threshold = Number(thr.value); $('ts-threshold-value').textContent = state.threshold.toFixed(3); schedule(); });
    $('ts-tab-head').addEventListener('click', function () { show('head'); });
    $('ts-tab-model').addEventListener('click', function () { show('model'); });
    $('ts-info').textContent = n + ' tokens \u00b7 ' + L + ' layers \u00b7 ' + H + ' heads';
  }
  function setHeads(pick) {
    for (var h = 0; h < H; h++) { state.heads[h] = pick(h); $('ts-head-' + h).checked = state.heads[h]; }
    draw(); markSelected();
  }
  function show(view) {
    state.view = view;
    $('ts-head-view').hidden = view !== 'head';
    $('ts-model-view').hidden = view !== 'model';
    $('ts-tab-head').className = view === 'head' ? 'active' : '';
    $('ts-tab-model').className = view === 'model' ? 'active' : '';
    if (view === 'model') startThumbs();
  }
  function select(layer, head) {
    state.layer = layer; $('ts-layer').value = String(layer);
    setHeads(function (h) { return h === head; });
    state.focus = null;
    show('head'); draw();
  }

  // ---- model view: layers x heads thumbnails, rendered a few at a time ----
  var thumbs = [], thumbQueue = [], thumbsStarted = false;
  function buildModelView() {
    var grid = $('ts-model-grid');
    grid.style.gridTemplateColumns = '32px repeat(' + H + ', 68px)';
    grid.appendChild(document.createElement('div'));
    for (var h = 0; h < H; h++) { var d = document.createElement('div'); d.className = 'lab'; d.textContent = 'head ' + h; grid.appendChild(d); }
    var res = Math.min(n, 64);
    for (var l = 0; l < L; l++) {
      var lab = document.createElement('div'); lab.className = 'lab'; lab.textContent = 'L' + l; grid.appendChild(lab);
      for (var h2 = 0; h2 < H; h2++) {
        var c = document.createElement('canvas');
        c.width = res; c.height = res; c.title = 'layer ' + l + ', head ' + h2;
        c.setAttribute('data-layer', String(l)); c.setAttribute('data-head', String(h2));
        c.addEventListener('click', function (evt) { select(Number(evt.target.getAttribute('data-layer')), Number(evt.target.getAttribute('data-head'))); });
        grid.appendChild(c);
        thumbs.push(c); thumbQueue.push([l, h2, c]);
      }
    }
  }
  function drawThumb(l, h, c) {
    var res = c.width, img = c.getContext('2d').createImageData(res, res), px = img.data;
    var o = (l * H + h) * n * n, pooled = new Float32Array(res * res), max = 0;
    for (var r = 0; r < n; r++) {
      var pr = Math.floor(r * res / n) * res;
      for (var col = 0; col < n; col++) {
        var v = value[att[o + r * n + col]], k = pr + Math.floor(col * res / n);
        if (v > pooled[k]) { pooled[k] = v; if (v > max) max = v; }
      }
    }
    var s = max > 0 ? 255 / max : 0;
    for (var i = 0; i < pooled.length; i++) {
      var ci = Math.round(pooled[i] * s) * 3;
      px[i * 4] = cmap[ci]; px[i * 4 + 1] = cmap[ci + 1]; px[i * 4 + 2] = cmap[ci + 2]; px[i * 4 + 3] = 255;
    }
    c.getContext('2d').putImageData(img, 0, 0);
  }
  function startThumbs() {
    if (thumbsStarted || !att) return;
    thumbsStarted = true;
    (function step() {
      var until = performance.now() + 12;
      while (thumbQueue.length && performance.now() < until) { var t = thumbQueue.shift(); drawThumb(t[0], t[1], t[2]); }
      if (thumbQueue.length) setTimeout(step, 0);
      else document.body.setAttribute('data-thumbs', 'done');
    })();
    markSelected();
  }
  function markSelected() {
    var heads = selectedHeads();
    for (var i = 0; i < thumbs.length; i++) {
      var c = thumbs[i];
      var on = Number(c.getAttribute('data-layer')) === state.layer && heads.indexOf(Number(c.getAttribute('data-head'))) >= 0;
      c.className = on ? 'selected' : '';
    }
  }

  // Test and scripting hook.
  window.torchscopeViewer = {
    state: state, meta: meta,
    select: select, show: show, draw: draw,
    tokenPosition: function (side, i) {
      var rect = canvas.getBoundingClientRect();
      return { x: rect.left + (side === 'left' ? geo.leftX - 20 : geo.rightX + 20), y: rect.top + rowY(i) };
    },
    value: function (l, h, r, c) { return value[att[((l * H + h) * n + r) * n + c]]; }
  };

  buildControls();
  buildModelView();
  layout();
  var t0 = performance.now();
  load().then(function (bytes) {
    if (bytes.length !== L * H * n * n) throw new Error('data blob has ' + bytes.length + ' values, expected ' + L * H * n * n);
    att = bytes;
    draw();
    markSelected();
    startThumbs();
    document.body.setAttribute('data-load-ms', String(Math.round(performance.now() - t0)));
    document.body.setAttribute('data-ready', '1');
  }).catch(function (error) {
    status.textContent = 'Cannot load the attention data: ' + error.message;
    status.className = 'error';
    document.body.setAttribute('data-ready', 'error');
  });
  window.addEventListener('resize', function () { if (att) { layout(); draw(); } });
})();
`;
