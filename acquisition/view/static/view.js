// The live view's page: one WebSocket to the view server, canvas drawing, text tables.
// Everything it needs ships in this package; nothing is loaded from the network.
"use strict";
(function () {
  const S = {
    session: "", stopped: false, traceS: 30, descriptors: {}, traces: {},
    cellM: 0.25, cells: new Map(), here: {}, lanes: [], gaps: [], anomalies: [],
    anomalyKeys: new Set(), targets: new Map(), threshold: {}, lastMsg: 0, dirty: true,
  };
  const MAX_ANOMALIES = 200;
  const COLOURS = ["#1f5fbf", "#c0392b", "#27864a", "#8e44ad", "#d35400", "#2c3e50"];
  // Bus event -> text on the page, ms (the benchmark reads it).
  window.uxoLatency = [];
  window.uxoState = S;
  const $ = (id) => document.getElementById(id);

  // Anomalies also split it: bus -> view server, view server -> page text.
  window.uxoLatencyParts = [];
  function latency(sentNs, seenNs) {
    if (typeof sentNs !== "number" || window.uxoLatency.length >= 100000) return;
    const now = Date.now();
    window.uxoLatency.push(now - sentNs / 1e6);
    if (typeof seenNs === "number") window.uxoLatencyParts.push([(seenNs - sentNs) / 1e6, now - seenNs / 1e6]);
  }

  // --- messages ----------------------------------------------------------------
  function onMessage(m) {
    S.lastMsg = Date.now();
    switch (m.type) {
      case "snapshot": applySnapshot(m); break;
      case "reset": applySnapshot(m.snapshot); break;
      case "session": S.stopped = !!m.stopped; showSession(); break;
      case "descriptor": S.descriptors[m.stream] = m.descriptor; break;
      case "trace": addTrace(m.stream, m.t, m.v); break;
      case "cells": addCells(m); break;
      case "anomaly": addAnomaly(m.anomaly, true); break;
      case "target": addTarget(m.target, true); break;
      case "state": showState(m.state); break;
      case "notice": addNotice(m.notice); break;
      case "health": showHealth(m); break;
      case "pong": break;
      default: break;
    }
    S.dirty = true;
  }

  function applySnapshot(s) {
    S.session = s.session; S.stopped = s.stopped; S.traceS = s.trace_s || 30;
    S.descriptors = s.descriptors || {};
    S.traces = {};
    for (const [sid, tr] of Object.entries(s.traces || {})) addTrace(sid, tr.t, tr.v, true);
    S.cellM = s.cell_m; S.cells = new Map();
    for (const c of s.cells || []) S.cells.set(c[0] + "," + c[1], c[2]);
    S.here = {};
    for (const h of s.here || []) S.here[h.stream] = h;
    S.lanes = s.lanes || [];
    S.anomalies = []; S.anomalyKeys = new Set();
    $("anomalies").textContent = "";
    for (const a of s.anomalies || []) addAnomaly(a, false);
    S.targets = new Map();
    $("targets").tBodies[0].textContent = "";
    for (const t of s.targets || []) addTarget(t, false);
    $("streams").tBodies[0].textContent = "";
    for (const st of s.states || []) showState(st);
    $("notices").textContent = "";
    for (const n of s.notices || []) addNotice(n);
    $("traces").textContent = "";
    showSession();
  }

  function showSession() {
    $("session").textContent = S.session
      ? "session " + S.session + (S.stopped ? " (stopped)" : "") : "session: waiting for the bus";
  }

  function addTrace(sid, t, v, replace) {
    let tr = S.traces[sid];
    if (!tr || replace || tr.v.length !== v.length) tr = S.traces[sid] = { t: [], v: v.map(() => []) };
    const last = tr.t.length ? tr.t[tr.t.length - 1] : -Infinity;
    for (let i = 0; i < t.length; i++) {
      if (t[i] <= last) continue;  // already had it (snapshot and update overlap)
      tr.t.push(t[i]);
      for (let c = 0; c < v.length; c++) tr.v[c].push(v[c][i]);
    }
    const cut = tr.t.length ? tr.t[tr.t.length - 1] - S.traceS : 0;
    let k = 0;
    while (k < tr.t.length && tr.t[k] < cut) k++;
    if (k) { tr.t.splice(0, k); for (const col of tr.v) col.splice(0, k); }
  }

  function addCells(m) {
    if (m.reset || m.cell_m !== S.cellM) { S.cells = new Map(); S.cellM = m.cell_m; }
    for (const c of m.cells) S.cells.set(c[0] + "," + c[1], c[2]);
    if (m.here) S.here[m.here.stream] = m.here;
  }

  function num(v, d) { return (typeof v === "number") ? v.toFixed(d) : "?"; }

  function addAnomaly(a, live) {
    const key = a.stream_id + "/" + a.anomaly_id;
    if (S.anomalyKeys.has(key)) return;
    S.anomalyKeys.add(key);
    S.anomalies.push(a);
    const li = document.createElement("li");
    li.textContent = "#" + a.anomaly_id + " " + a.stream_id + " lane " + a.lane + " at x=" +
      num(a.x, 2) + " y=" + num(a.y, 2) + " " + num(a.amplitude_nT, 1) + " nT" +
      (a.hole ? " hole " + a.hole : "") + (typeof a.depth === "number" ? " depth " + num(a.depth, 2) + " m" : "");
    const list = $("anomalies");
    list.insertBefore(li, list.firstChild);
    while (S.anomalies.length > MAX_ANOMALIES) {
      const old = S.anomalies.shift();
      S.anomalyKeys.delete(old.stream_id + "/" + old.anomaly_id);
      list.removeChild(list.lastChild);
    }
    if (live) { latency(a.sent_ns, a.seen_ns); beep(); }
  }

  function addTarget(t, live) {
    S.targets.set(t.stream + "/" + t.id, t);
    const body = $("targets").tBodies[0];
    let tr = document.getElementById("target-" + t.stream + "-" + t.id);
    if (!tr) {
      tr = document.createElement("tr");
      tr.id = "target-" + t.stream + "-" + t.id;
      body.appendChild(tr);
    }
    tr.textContent = "";
    for (const c of t.cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    if (live) latency(t.sent_ns);
  }

  function showState(st) {
    const sid = st.stream_id;
    let tr = document.getElementById("stream-" + sid);
    if (!tr) {
      tr = document.createElement("tr");
      tr.id = "stream-" + sid;
      for (let i = 0; i < 7; i++) tr.appendChild(document.createElement("td"));
      tr.cells[0].textContent = sid;
      $("streams").tBodies[0].appendChild(tr);
    }
    tr.cells[1].textContent = st.state;
    tr.cells[1].className = (st.state === "connected") ? "ok" : "warn";
    tr.cells[2].textContent = st.reason || "";
    if (st.sent_ns) latency(st.sent_ns);
  }

  function addNotice(n) {
    const li = document.createElement("li");
    li.textContent = n.stream_id + " " + n.state + ": " + (n.reason || "");
    li.className = /error/.test(n.state) ? "alarm" : "warn";
    const list = $("notices");
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 20) list.removeChild(list.lastChild);
    if (n.sent_ns) latency(n.sent_ns);
  }

  function showHealth(h) {
    if (h.session && h.session !== S.session) return;  // a reset is on its way
    S.stopped = h.stopped; showSession();
    $("silent").hidden = !h.bus_silent;
    for (const [sid, s] of Object.entries(h.streams || {})) {
      showState({ stream_id: sid, state: s.state, reason: s.reason });
      const tr = document.getElementById("stream-" + sid);
      const c = s.counters || {};
      tr.cells[3].textContent = c.frames_rejected ?? "?";
      tr.cells[4].textContent = c.gaps ?? "?";
      tr.cells[5].textContent = c.reconnects ?? "?";
      tr.cells[6].textContent = c.stalls ?? "?";
      if (s.threshold_nT !== null && s.threshold_nT !== undefined) S.threshold[sid] = s.threshold_nT;
      if (s.clock_offset_ms !== null && s.clock_offset_ms !== undefined)
        $("clock").textContent = "clock offset (" + sid + ", device minus host): " + s.clock_offset_ms.toFixed(1) + " ms";
      if (s.recording) {
        const r = s.recording;
        $("recording").textContent = "recording: " + r.file + ", " + fmtBytes(r.bytes) +
          ", last flush " + (r.last_flush_age_s ?? "?") + " s ago, integrity: " + r.integrity;
      } else if (s.recorder) {
        $("recording").textContent = "recording: " + s.recorder;
      }
    }
    const g = h.gnss;
    if (g) {
      $("gnss").textContent = "GNSS " + g.stream + ": fix quality " + (g.fix ?? "?") + ", " +
        (g.sats ?? "?") + " satellites, HDOP " + (g.hdop ?? "?") + ", age " + (g.age_s ?? "?") + " s";
    }
    const b = h.bus || {};
    $("buscounts").textContent = "bus: " + (b.received ?? 0) + " messages, " + (b.gaps ?? 0) +
      " lost in bus gaps, " + (b.rejected ?? 0) + " rejected; instrument frames rejected: " +
      (h.frames_rejected ?? 0) + "; last heartbeat " + (h.heartbeat_age_s ?? "?") + " s ago";
    const v = h.view || {};
    $("pagecounts").textContent = "view: " + (v.pages ?? "?") + " pages, " + (v.dropped ?? 0) +
      " updates dropped for slow pages, " + (v.ws_rejected ?? 0) + " malformed page messages";
    const cov = h.coverage || {};
    S.gaps = cov.segments || [];
    $("coverage").textContent = cov.known
      ? "coverage gaps: " + (cov.gap_m ?? 0).toFixed(1) + " m of planned lanes (red)"
      : "(planned lanes unknown: no gap check)";
  }

  function fmtBytes(n) {
    if (typeof n !== "number") return "? bytes";
    if (n > 1e6) return (n / 1e6).toFixed(1) + " MB";
    if (n > 1e3) return (n / 1e3).toFixed(1) + " kB";
    return n + " bytes";
  }

  // --- tone ----------------------------------------------------------------------
  let audio = null;
  $("tone").addEventListener("change", () => {
    if ($("tone").checked && !audio && window.AudioContext) audio = new AudioContext();
  });
  function beep() {
    if (!$("tone").checked || !audio) return;
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880; g.gain.value = 0.2;
    o.connect(g); g.connect(audio.destination);
    o.start(); o.stop(audio.currentTime + 0.15);
    window.uxoBeeps = (window.uxoBeeps || 0) + 1;
  }

  // --- drawing ------------------------------------------------------------------------
  function traceCanvas(sid) {
    let c = document.getElementById("trace-" + sid);
    if (!c) {
      const box = document.createElement("div");
      const label = document.createElement("div");
      const d = S.descriptors[sid] || {};
      const ch = (d.channels || []).map((x, i) => '<span style="color:' + COLOURS[i % COLOURS.length] + '">' +
        escapeHtml(x.name + " [" + x.units + "]") + "</span>").join(" ");
      label.innerHTML = "<b>" + escapeHtml(sid) + "</b> " + ch;
      c = document.createElement("canvas");
      c.id = "trace-" + sid; c.width = 700; c.height = 160;
      box.appendChild(label); box.appendChild(c);
      $("traces").appendChild(box);
    }
    return c;
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (ch) => "&#" + ch.charCodeAt(0) + ";");
  }

  function drawTrace(sid, tr) {
    const c = traceCanvas(sid), g = c.getContext("2d"), W = c.width, H = c.height;
    g.clearRect(0, 0, W, H);
    if (!tr.t.length) return;
    const t1 = tr.t[tr.t.length - 1], t0 = t1 - S.traceS;
    const thr = S.threshold[sid];
    let lo = Infinity, hi = -Infinity;
    for (const col of tr.v) for (const y of col) if (y !== null) { if (y < lo) lo = y; if (y > hi) hi = y; }
    if (typeof thr === "number") { lo = Math.min(lo, -thr); hi = Math.max(hi, thr); }
    if (!isFinite(lo)) { lo = -1; hi = 1; }
    if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
    const pad = 0.05 * (hi - lo); lo -= pad; hi += pad;
    const X = (t) => 40 + (W - 45) * (t - t0) / S.traceS, Y = (y) => H - 15 - (H - 20) * (y - lo) / (hi - lo);
    g.strokeStyle = "#ccc"; g.fillStyle = "#555"; g.font = "10px sans-serif";
    for (let s = 0; s <= S.traceS; s += 5) {
      const x = X(t0 + s); g.beginPath(); g.moveTo(x, 5); g.lineTo(x, H - 15); g.stroke();
      g.fillText((s - S.traceS) + " s", x - 10, H - 3);
    }
    g.fillText(hi.toPrecision(3), 2, 12); g.fillText(lo.toPrecision(3), 2, H - 17);
    if (typeof thr === "number") {
      g.setLineDash([5, 4]); g.strokeStyle = "#e67e22";
      for (const y of [thr, -thr]) { g.beginPath(); g.moveTo(40, Y(y)); g.lineTo(W - 5, Y(y)); g.stroke(); }
      g.setLineDash([]);
    }
    tr.v.forEach((col, ci) => {
      g.strokeStyle = COLOURS[ci % COLOURS.length]; g.beginPath();
      let pen = false;
      for (let i = 0; i < col.length; i++) {
        if (col[i] === null) { pen = false; continue; }
        const x = X(tr.t[i]), y = Y(col[i]);
        if (pen) g.lineTo(x, y); else g.moveTo(x, y);
        pen = true;
      }
      g.stroke();
    });
  }

  function colour(v, scale) {
    const a = Math.max(-1, Math.min(1, v / scale));
    const r = a > 0 ? 255 : Math.round(255 * (1 + a)), b = a < 0 ? 255 : Math.round(255 * (1 - a));
    const gg = Math.round(255 * (1 - Math.abs(a)));
    return "rgb(" + r + "," + gg + "," + b + ")";
  }

  function drawMap() {
    const c = $("map"), g = c.getContext("2d"), W = c.width, H = c.height;
    g.fillStyle = "#f4f4f0"; g.fillRect(0, 0, W, H);
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    const grow = (x, y) => { if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y; };
    for (const l of S.lanes) { grow(l[0], l[1]); grow(l[2], l[3]); }
    let vmax = 0;
    for (const [k, v] of S.cells) {
      const [i, j] = k.split(",").map(Number);
      grow(i * S.cellM, j * S.cellM); grow((i + 1) * S.cellM, (j + 1) * S.cellM);
      if (Math.abs(v) > vmax) vmax = Math.abs(v);
    }
    for (const t of S.targets.values()) if (t.x !== null && t.y !== null) grow(t.x, t.y);
    if (!isFinite(x0)) { g.fillStyle = "#555"; g.fillText("no positions yet", 10, 20); return; }
    const span = Math.max(x1 - x0, y1 - y0, 1) * 1.08;
    const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, k = (Math.min(W, H) - 20) / span;
    const X = (x) => W / 2 + (x - cx) * k, Y = (y) => H / 2 - (y - cy) * k;
    const thr = Object.values(S.threshold)[0];
    const scale = (typeof thr === "number" && thr > 0) ? 2 * thr : (vmax || 1);
    const px = Math.max(1, S.cellM * k);
    for (const [key, v] of S.cells) {
      const [i, j] = key.split(",").map(Number);
      g.fillStyle = colour(v, scale);
      g.fillRect(X(i * S.cellM), Y((j + 1) * S.cellM), px + 0.5, px + 0.5);
    }
    g.strokeStyle = "rgba(0,0,0,0.35)"; g.setLineDash([3, 3]);
    for (const l of S.lanes) { g.beginPath(); g.moveTo(X(l[0]), Y(l[1])); g.lineTo(X(l[2]), Y(l[3])); g.stroke(); }
    g.setLineDash([]); g.strokeStyle = "#d00"; g.lineWidth = 3;
    for (const s of S.gaps) { g.beginPath(); g.moveTo(X(s[0]), Y(s[1])); g.lineTo(X(s[2]), Y(s[3])); g.stroke(); }
    g.lineWidth = 1;
    g.strokeStyle = "#e67e22";
    for (const a of S.anomalies.slice(-50)) if (typeof a.x === "number" && typeof a.y === "number") {
      g.beginPath(); g.arc(X(a.x), Y(a.y), 6, 0, 2 * Math.PI); g.stroke();
    }
    g.strokeStyle = "#000"; g.fillStyle = "#000"; g.font = "11px sans-serif";
    for (const t of S.targets.values()) if (t.x !== null && t.y !== null) {
      const x = X(t.x), y = Y(t.y);
      g.beginPath(); g.moveTo(x - 5, y - 5); g.lineTo(x + 5, y + 5); g.moveTo(x - 5, y + 5); g.lineTo(x + 5, y - 5); g.stroke();
      g.fillText("#" + t.id, x + 6, y - 4);
    }
    for (const h of Object.values(S.here)) {
      g.fillStyle = "#0a0"; g.beginPath(); g.arc(X(h.x), Y(h.y), 5, 0, 2 * Math.PI); g.fill();
    }
    g.fillStyle = "#555"; g.fillText("1 m = " + k.toFixed(1) + " px; colour ±" + scale.toPrecision(3) + " nT", 8, H - 6);
  }

  function frame() {
    if (S.dirty) {
      S.dirty = false;
      for (const [sid, tr] of Object.entries(S.traces)) drawTrace(sid, tr);
      drawMap();
    }
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);

  // --- the connection ---------------------------------------------------------------------
  let ws = null, backoff = 500;
  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + "/ws" + location.search);
    ws.onopen = () => { backoff = 500; $("link").textContent = "live"; $("link").className = "ok"; };
    ws.onmessage = (ev) => { try { onMessage(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
    ws.onclose = () => {
      $("link").textContent = "view server unreachable: retrying"; $("link").className = "alarm";
      setTimeout(connect, backoff); backoff = Math.min(5000, backoff * 2);
    };
  }
  setInterval(() => {
    if (ws && ws.readyState === 1 && Date.now() - S.lastMsg > 3000) {
      $("link").textContent = "no news from the view server for 3 s"; $("link").className = "alarm";
    } else if (ws && ws.readyState === 1) { $("link").textContent = "live"; $("link").className = "ok"; }
  }, 1000);
  connect();
})();
