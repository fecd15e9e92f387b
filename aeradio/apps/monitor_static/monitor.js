// The live page of `aeradio rx --monitor`: one EventSource, uPlot charts updated per event.
// Events (JSON, see aeradio/apps/monitor.py; arrays as base64 float32): `config` once (the run's configuration and
// the LUT), `history` once (the BLER/SNR/CFO points so far), then one message per update
// (counters, the newest history point, payload symbols, spectrum, and `finished` at the end).
"use strict";
(() => {
  const MAX_POINTS = 2400;
  const RX_COLOR = "rgba(31, 119, 180, 0.45)";
  const LUT_COLOR = "#d62728";
  const state = {
    config: null, use: "all", view: "symbols", events: 0, finished: null, last: null,
    t: [], bler: [], blerTotal: [], snr: [], cfo: [],
  };
  const charts = {};
  window.aeradioMonitor = { state, charts };

  const $ = (id) => document.getElementById(id);

  // Arrays arrive as base64 of little-endian float32 (cheap for the server to make).
  function floats(b64) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return Array.from(new Float32Array(bytes.buffer));
  }

  function complexPoints(p) {
    return { n: p.n, re: floats(p.re), im: floats(p.im) };
  }

  function chartSize(el, aspect) {
    const width = Math.max(200, el.clientWidth);
    return { width, height: Math.round(width * aspect) };
  }

  function fmt(value, digits = 3) {
    if (value === null || value === undefined) return "–";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    const a = Math.abs(value);
    return a !== 0 && (a < 1e-2 || a >= 1e5) ? value.toExponential(2) : value.toFixed(digits);
  }

  // ---- charts -------------------------------------------------------------------------
  function constellationChart(lim, few) {
    const el = $("constellation");
    const dots = (size, fill, stroke, width) => ({
      paths: uPlot.paths.points(), fill, stroke, width,
      points: { show: false, size, width },
    });
    return new uPlot({
      mode: 2,
      ...chartSize(el, 1.0),
      legend: { show: true, live: false },
      cursor: { show: false },
      scales: {
        x: { time: false, auto: false, range: [-lim, lim] },
        y: { auto: false, range: [-lim, lim] },
      },
      axes: [{ label: "I (in-phase)" }, { label: "Q (quadrature)" }],
      series: [
        {},
        { label: "received", ...dots(3.5, RX_COLOR, RX_COLOR, 0) },
        // Rings around few points (M <= 64 per view), small dots over many.
        few ? { label: "LUT points", ...dots(10, "rgba(0,0,0,0)", LUT_COLOR, 2) }
          : { label: "LUT points", ...dots(3, LUT_COLOR, LUT_COLOR, 0) },
      ],
    }, [null, [[], []], [[], []]], el);
  }

  // Log axis: ticks and labels at the powers of ten only.
  const decades = (u, splits) => splits.map((v) => (Number.isInteger(Math.round(Math.log10(v) * 1e6) / 1e6) ? v : null));
  const LOG_AXIS = {
    filter: decades,
    grid: { filter: decades },
    ticks: { filter: decades },
    values: (u, splits) => splits.map((v) => (v === null ? "" : v >= 1 ? "1" : `1e${Math.round(Math.log10(v))}`)),
  };

  function timeChart(id, label, series, scaleY, axisY) {
    const el = $(id);
    return new uPlot({
      ...chartSize(el, 0.45),
      legend: { show: series.length > 1, live: false },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: false }, y: scaleY || {} },
      axes: [{ label: "time (s)" }, { label, size: 60, ...axisY }],
      series: [{ label: "t (s)" }, ...series],
    }, [[], ...series.map(() => [])], el);
  }

  // The spectrum as tall as the constellation beside it allows (the panels share a row).
  function spectrumSize() {
    const el = $("spectrum");
    const size = chartSize(el, 0.45);
    const beside = charts.constellation ? charts.constellation.height - 60 : 0;
    return { width: size.width, height: Math.max(size.height, Math.min(beside, size.width)) };
  }

  function spectrumChart() {
    const el = $("spectrum");
    return new uPlot({
      ...spectrumSize(),
      legend: { show: false },
      scales: { x: { time: false } },
      axes: [{ label: "offset from center (kHz)" }, { label: "PSD (dB FS/Hz)", size: 60 }],
      series: [{ label: "kHz" }, { label: "PSD", stroke: "#2c7a3f", width: 1.25, points: { show: false } }],
    }, [[], []], el);
  }

  function logRange(u, min, max) {
    const lo = min === null || !isFinite(min) ? 1e-4 : Math.pow(10, Math.floor(Math.log10(min)));
    return [Math.min(lo, 1e-1), 1];
  }

  function makeCharts(config) {
    const lut = config.lut;
    let peak = 0;
    for (let i = 0; i < lut.re.length; i++) peak = Math.max(peak, Math.hypot(lut.re[i], lut.im[i]));
    state.lim = 1.45 * (peak || 1);
    charts.constellation = constellationChart(state.lim, config.M <= 64);
    charts.spectrum = spectrumChart();
    charts.bler = timeChart("bler", "BLER", [
      { label: "per update", stroke: "#1f77b4", width: 0, points: { show: true, size: 5, fill: "#1f77b4" } },
      { label: "whole run", stroke: "#333", width: 1.5, dash: [6, 4], points: { show: false } },
    ], { distr: 3, log: 10, range: logRange }, LOG_AXIS);
    charts.snr = timeChart("snr", "SNR (dB)", [
      { label: "SNR (dB)", stroke: "#9467bd", width: 1.5, points: { show: true, size: 4 } },
    ]);
    charts.cfo = timeChart("cfo", "CFO (Hz)", [
      { label: "CFO (Hz)", stroke: "#ff7f0e", width: 1.5, points: { show: true, size: 4 } },
    ]);
    new ResizeObserver(() => {
      for (const [name, chart] of Object.entries(charts)) {
        const el = chart.root.parentElement;
        chart.setSize(name === "spectrum" ? spectrumSize() : chartSize(el, name === "constellation" ? 1.0 : 0.45));
      }
    }).observe($("constellation").parentElement.parentElement);
  }

  // ---- tables -------------------------------------------------------------------------
  const COUNTERS = [
    ["frames_detected", "frames detected"], ["frames_decoded", "frames decoded"],
    ["header_crc_failures", "header CRC failures", true], ["model_mismatches", "model mismatches", true],
    ["frames_truncated", "frames truncated", true], ["false_detections", "false detections"],
    ["blocks", "blocks"], ["block_errors", "block errors", true], ["bler", "BLER (whole run)"],
    ["data_crc_failures", "data CRC failures", true], ["samples", "samples"],
    ["samples_dropped", "samples dropped", true], ["nonfinite_samples", "non-finite samples", true],
    ["malformed_messages", "malformed messages", true], ["device_faults", "device faults", true],
    ["snr_db", "mean SNR (dB)"], ["cfo_hz", "mean CFO (Hz)"],
    ["frames_per_s", "frames/s (last update)"], ["rate_msps", "samples (MS/s, last update)"],
  ];

  function buildCounters() {
    const body = $("counters").tBodies[0];
    for (const [key, label] of COUNTERS) {
      const row = body.insertRow();
      row.insertCell().textContent = label;
      const cell = row.insertCell();
      cell.id = `counter-${key}`;
      cell.className = "num";
      cell.textContent = "–";
    }
  }

  function showCounters(counters, point) {
    const values = { ...point, ...counters, bler: point.bler_total };  // run means over the last update
    for (const [key, , badWhenNonzero] of COUNTERS) {
      const cell = $(`counter-${key}`);
      cell.textContent = fmt(values[key], key === "bler" ? 3 : 2);
      cell.classList.toggle("bad", Boolean(badWhenNonzero && values[key]));
    }
  }

  const CONFIG_LABELS = [
    ["link_name", "link"], ["model_dir", "model"], ["model_hash32", "model hash"],
    ["k", "k (bits/block)"], ["n", "n (channel uses)"], ["M", "M (messages)"], ["rate", "R (bits/use)"],
    ["samples_per_symbol", "samples/symbol"], ["rolloff", "RRC roll-off"], ["blocks_per_frame", "blocks/frame"],
    ["device_uri", "device"], ["sample_rate_hz", "sample rate (S/s)"], ["center_freq_hz", "center (Hz)"],
    ["gain_db", "gain (dB)"], ["test_pattern_seed", "test-pattern seed"], ["calibration", "calibration"],
    ["training", "trained on"], ["aeradio_version", "aeradio"], ["started_utc", "started (UTC)"],
    ["command_line", "command"],
  ];

  function showConfig(config) {
    $("link-name").textContent = config.link_name || "";
    const body = $("config").tBodies[0];
    body.textContent = "";
    const items = CONFIG_LABELS.filter(([key]) => config[key] !== undefined);
    let row = null;
    items.forEach(([key, label], i) => {
      if (key === "command_line" || i % 3 === 0 || row === null) row = body.insertRow();
      row.insertCell().textContent = label;
      const cell = row.insertCell();
      cell.id = `config-${key}`;
      const value = config[key];
      cell.textContent = value === null ? "none" : typeof value === "object" ? JSON.stringify(value) : fmt(value, 3);
      if (key === "command_line") cell.colSpan = 5;
    });
    const select = $("use-select");
    if (config.n > 1) {
      for (let u = 0; u < config.n; u++) select.add(new Option(`${u + 1} of ${config.n}`, String(u)));
    } else {
      select.parentElement.hidden = true;
    }
    select.addEventListener("change", () => { state.use = select.value; drawConstellation(); });
    const view = $("view-select");
    view.addEventListener("change", () => { state.view = view.value; drawConstellation(); });
  }

  // ---- updates ------------------------------------------------------------------------
  function pick(points, use) {
    // points: {n, re, im} row-major [rows, n]; the given channel use, or all of them.
    if (use === "all") return [points.re, points.im];
    const u = Number(use), n = points.n, re = [], im = [];
    for (let i = u; i < points.re.length; i += n) { re.push(points.re[i]); im.push(points.im[i]); }
    return [re, im];
  }

  function drawConstellation() {
    if (!charts.constellation || !state.last) return;
    const chart = charts.constellation;
    let lim = state.lim, rx, ref;
    if (state.view === "errors") {
      // Received minus the decided codeword: noise and distortion, around the origin.
      rx = pick(state.last.errors, state.use);
      ref = [[], []];
      let power = 0;
      for (let i = 0; i < rx[0].length; i++) power += rx[0][i] ** 2 + rx[1][i] ** 2;
      const rms = Math.sqrt(power / Math.max(1, rx[0].length));
      lim = Math.max(4.5 * rms, 0.05);
      $("symbol-count").textContent = `${rx[0].length} error vectors, RMS ${rms.toFixed(3)}`;
    } else {
      rx = pick(state.last.symbols, state.use);
      ref = pick(state.config.lut, state.use);
      $("symbol-count").textContent = `${rx[0].length} symbols of the last decoded frames`;
    }
    chart.batch(() => {
      chart.setData([null, rx, ref], false);
      chart.setScale("x", { min: -lim, max: lim });
      chart.setScale("y", { min: -lim, max: lim });
    });
  }

  function addPoint(p) {
    if (state.t.length && p.t_s <= state.t[state.t.length - 1]) return;
    state.t.push(p.t_s);
    state.bler.push(p.bler || null);  // 0 has no place on a log axis: see the note
    state.blerTotal.push(p.bler_total || null);
    state.snr.push(p.snr_db);
    state.cfo.push(p.cfo_hz);
    if (state.t.length > MAX_POINTS) for (const k of ["t", "bler", "blerTotal", "snr", "cfo"]) state[k].shift();
  }

  function drawHistory() {
    if (!charts.bler) return;
    charts.bler.setData([state.t, state.bler, state.blerTotal]);
    charts.snr.setData([state.t, state.snr]);
    charts.cfo.setData([state.t, state.cfo]);
  }

  function drawSpectrum(spectrum) {
    if (!spectrum || !charts.spectrum) return;
    const f = spectrum.psd_db.map((_, i) => (spectrum.start_hz + i * spectrum.step_hz) / 1e3);
    charts.spectrum.setData([f, spectrum.psd_db]);
  }

  function setStatus(kind, text) {
    const el = $("status");
    el.className = `status ${kind}`;
    el.textContent = text;
  }

  function onUpdate(msg) {
    state.events += 1;
    state.last = msg;
    addPoint(msg.point);
    drawHistory();
    drawConstellation();
    drawSpectrum(msg.spectrum);
    showCounters(msg.counters, msg.point);
    const c = msg.counters;
    $("bler-note").textContent = c.blocks && !c.block_errors
      ? `no block error in ${c.blocks.toLocaleString("en-US")} blocks (BLER < ${fmt(3 / c.blocks)} at 95 %)` : "";
    $("elapsed").textContent = `${msg.point.t_s.toFixed(1)} s`;
    if (msg.finished) {
      state.finished = msg.finished;
      setStatus("finished", `finished: stopped by ${msg.finished.stopped_by || "rx"}`);
    } else {
      setStatus("live", "live");
    }
  }

  function connect() {
    const source = new EventSource("events");
    source.addEventListener("config", (e) => {
      if (state.config) return;  // a reconnection: the page is built
      state.config = JSON.parse(e.data);
      state.config.lut = complexPoints(state.config.lut);
      showConfig(state.config);
      makeCharts(state.config);
    });
    source.addEventListener("history", (e) => {
      for (const p of JSON.parse(e.data)) addPoint(p);
      drawHistory();
    });
    source.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      msg.symbols = complexPoints(msg.symbols);
      msg.errors = complexPoints(msg.errors);
      if (msg.spectrum) msg.spectrum.psd_db = floats(msg.spectrum.psd_db);
      onUpdate(msg);
    };
    source.onopen = () => { if (!state.finished) setStatus("waiting", "waiting for samples…"); };
    source.onerror = () => {
      if (state.finished) { source.close(); return; }
      setStatus("lost", "connection lost: is aeradio rx still running? retrying…");
    };
  }

  buildCounters();
  connect();
})();
