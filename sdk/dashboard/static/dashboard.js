// emotionkd live dashboard: Server-Sent Events from /events into two uPlot charts.
// State is bounded: only the last SHOW_S seconds are kept in the page.
"use strict";
(function () {
  const SHOW_S = 300;
  const SHADE = { "gap": "rgba(134,142,150,.35)", "electrode off": "rgba(253,126,20,.35)",
                  "saturated": "rgba(224,49,49,.3)" };
  const BAD_WINDOW = "rgba(253,126,20,.22)";
  const trace = { t: [], us: [], flag: [] };
  const windows = { t: [], start: [], arousal: [], valence: [], ok: [] };
  const $ = (id) => document.getElementById(id);
  let gsrPlot = null, probPlot = null, pending = false;

  // Shade the x ranges where mark(i) is truthy, in the colour colourOf(i) (a uPlot draw hook).
  function shade(u, xs, x0s, colourOf) {
    const ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
    ctx.save();
    for (let i = 0; i < xs.length; i++) {
      const colour = colourOf(i);
      if (!colour) continue;
      const a = u.valToPos(x0s(i), "x", true), b = u.valToPos(xs[i], "x", true);
      ctx.fillStyle = colour;
      ctx.fillRect(Math.min(a, b), top, Math.max(1, Math.abs(b - a)), height);
    }
    ctx.restore();
  }

  function width(el) { return Math.max(300, el.clientWidth - 8); }

  function makePlots() {
    const gsrEl = $("gsr-chart"), probEl = $("prob-chart");
    gsrPlot = new uPlot({
      width: width(gsrEl), height: 220, legend: { show: true },
      scales: { x: { time: false } },
      axes: [{ label: "stream time (s)" }, { label: "µS" }],
      series: [{ label: "t (s)" }, { label: "conductance µS", stroke: "#2b8a3e", width: 1.5, spanGaps: false }],
      hooks: { drawClear: [(u) => shade(u, trace.t, (i) => trace.t[i] - 0.125, (i) => SHADE[trace.flag[i]])] },
    }, [trace.t, trace.us], gsrEl);
    probPlot = new uPlot({
      width: width(probEl), height: 220, legend: { show: true },
      scales: { x: { time: false }, y: { range: [0, 1] } },
      axes: [{ label: "window end (s)" }, { label: "P(high)" }],
      series: [{ label: "t (s)" },
               { label: "arousal", stroke: "#d9480f", width: 2, points: { show: false } },
               { label: "valence", stroke: "#1c7ed6", width: 2, points: { show: false } }],
      hooks: { drawClear: [(u) => shade(u, windows.t, (i) => (i > 0 ? windows.t[i - 1] : windows.start[i]),
                                        (i) => (windows.ok[i] ? null : BAD_WINDOW))] },
    }, [windows.t, windows.arousal, windows.valence], probEl);
    window.addEventListener("resize", () => {
      gsrPlot.setSize({ width: width(gsrEl), height: 220 });
      probPlot.setSize({ width: width(probEl), height: 220 });
    });
  }

  function trim(store, keys, latest) {
    let drop = 0;
    while (drop < store.t.length && store.t[drop] < latest - SHOW_S) drop++;
    if (drop) for (const k of keys) store[k].splice(0, drop);
  }

  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      gsrPlot.setData([trace.t, trace.us]);
      probPlot.setData([windows.t, windows.arousal, windows.valence]);
      document.body.dataset.gsrPoints = String(trace.t.length);
      document.body.dataset.predictions = String(windows.t.length);
      document.body.dataset.flaggedPoints = String(trace.flag.filter((f) => f).length);
    });
  }

  function addSamples(s) {
    for (let i = 0; i < s.t.length; i++) { trace.t.push(s.t[i]); trace.us.push(s.us[i]); trace.flag.push(s.flag[i]); }
    if (trace.t.length) trim(trace, ["t", "us", "flag"], trace.t[trace.t.length - 1]);
  }

  function fmt(p) { return p === null || p === undefined ? "–" : p.toFixed(2); }

  function addPrediction(p) {
    windows.t.push(p.end_s); windows.start.push(p.start_s);
    windows.arousal.push(p.arousal); windows.valence.push(p.valence); windows.ok.push(p.quality === "ok");
    trim(windows, ["t", "start", "arousal", "valence", "ok"], p.end_s);
    $("arousal-now").textContent = fmt(p.arousal);
    $("valence-now").textContent = fmt(p.valence);
    $("arousal-label").textContent = p.arousal_label ? `${p.arousal_label} · window ${p.start_s}–${p.end_s} s` : "not predicted";
    $("valence-label").textContent = p.valence_label ? p.valence_label : "not predicted";
    const q = $("quality-now");
    q.textContent = p.quality_word; q.className = p.quality === "ok" ? "value small" : "value small bad";
    $("quality-detail").textContent = p.quality_detail || "window passed the quality gate";
    $("quality-detail").title = p.quality_detail || "";
    $("scl-now").textContent = p.conductance_us === null ? "–" : `${p.conductance_us.toFixed(3)} µS`;
  }

  function showStatus(s, state) {
    if (!s) return;
    const rate = s.rate_hz === null || s.rate_hz === undefined ? "–" : `${s.rate_hz} Hz measured`;
    $("source").textContent = `${s.source || ""} · ${rate}`;
    if (s.predictions !== undefined)
      $("counters").textContent = `${s.predictions} windows (${s.not_ok} not ok) · lost ${s.lost} · bad ${s.bad}`;
    setState(state || s.state);
  }

  function setState(state) {
    const badge = $("state");
    badge.textContent = state;
    badge.className = "badge " + (state === "streaming" ? "streaming" : state === "stream ended" ? "ended" :
                                  state.startsWith("disconnected") ? "lost" : "");
    document.body.dataset.state = state;
  }

  function connect() {
    const events = new EventSource("events");
    events.addEventListener("snapshot", (e) => {
      const snap = JSON.parse(e.data);
      trace.t.length = trace.us.length = trace.flag.length = 0;
      for (const k of Object.keys(windows)) windows[k].length = 0;
      addSamples(snap.trace);
      for (const p of snap.predictions) addPrediction(p);
      $("model-card").textContent = snap.model.text;
      showStatus(snap.status, snap.ended ? "stream ended" : null);
      if (snap.ended) events.close();
      redraw();
    });
    events.addEventListener("samples", (e) => {
      const d = JSON.parse(e.data); addSamples(d); showStatus(d.status); redraw();
    });
    events.addEventListener("prediction", (e) => {
      const d = JSON.parse(e.data); addPrediction(d.prediction); showStatus(d.status); redraw();
    });
    events.addEventListener("end", (e) => {
      showStatus(JSON.parse(e.data).status, "stream ended"); events.close(); redraw();
    });
    events.onerror = () => { if (document.body.dataset.state !== "stream ended") setState("disconnected (retrying)"); };
  }

  makePlots();
  connect();
})();
