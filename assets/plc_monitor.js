/* /plc-monitor/ in the browser (pages/plc_monitor.py): the table of every tag, fed by the page's /ws/plc/ sockets.
 *
 * configure(catalog, text, quality) is called by the page's clientside callback: a new catalog (the machine
 * filter) draws the rows once; the text and quality filters only show and hide rows. Values come from the
 * sockets' snapshot and tag_update messages (through window.oeeLive, assets/live.js): only the value and quality
 * cells of the tags a message names are touched, and only when their text changes; ages tick once a second;
 * counts and the quality filter follow once a second too. Ages use the server's clock (the offset from the
 * snapshot's and heartbeats' time), so a browser whose clock is off still shows the right age.
 * window.oeePlcMonitor.stats counts messages, values, cell writes and the milliseconds this script spent
 * (busy_ms: handling messages and the ticks; tests and the curious read them).
 */
(function () {
  "use strict";
  var QUALITY = {0: ["good", "quality-good"], 1: ["uncertain", "quality-uncertain"], 2: ["bad", "quality-bad"]};
  var COLUMNS = ["Machine", "Tag", "Address", "Type", "Role", "Value", "Quality", "Last changed", "Last read",
                 "Why not good"];
  var READS_EVERY_MS = 5000;
  var M = {
    catalog: null, tags: [], byId: {}, values: {}, text: "", quality: "", rows: {}, shown: [], offset: 0, page: 0,
    reads: {},
    dirty: false, table: null,
    stats: {messages: 0, values: 0, cells: 0, draws: 0, snapshots: 0, closed: 0, busy_ms: 0}
  };

  function fmtValue(v) {
    if (v === null || v === undefined) { return "—"; }
    if (typeof v === "boolean") { return v ? "TRUE" : "FALSE"; }
    var text;
    if (typeof v === "number") {
      if (!isFinite(v)) { return String(v); }
      if (Number.isInteger(v) && Math.abs(v) < 1e15) { return v.toFixed(0); }
      var a = Math.abs(v);
      if (a >= 1e6 || a < 1e-3) { return v.toPrecision(4); }
      return v.toFixed(4).replace(/0+$/, "").replace(/\.$/, "");
    }
    text = typeof v === "string" ? v : JSON.stringify(v);
    return text.length <= 60 ? text : text.slice(0, 57) + "…";
  }

  function duration(s) {  // components.format.duration
    s = Math.max(s, 0);
    var r = Math.round(s);
    if (r < 60) { return r + " s"; }
    if (r < 3600) { return Math.floor(r / 60) + " min" + (r % 60 ? " " + (r % 60) + " s" : ""); }
    var m = Math.round(s / 60);
    if (m < 1440) { return Math.floor(m / 60) + " h" + (m % 60 ? " " + (m % 60) + " min" : ""); }
    var h = Math.round(s / 3600);
    return Math.floor(h / 24) + " d" + (h % 24 ? " " + (h % 24) + " h" : "");
  }

  function qualityOf(v) { return v ? (QUALITY[v[2]] || ["?", ""]) : ["no value", "text-muted"]; }
  function qualityKey(v) { return v ? ({0: "good", 1: "uncertain", 2: "bad"}[v[2]] || "none") : "none"; }

  function setText(el, text, cls) {
    if (el.textContent !== text) { el.textContent = text; M.stats.cells += 1; }
    if (cls !== undefined && el.className !== cls) { el.className = cls; }
  }

  function hay(t) {
    return [t.machine_id, t.machine_name, t.name, t.address, t.role, t.data_type, t.connection]
      .map(function (x) { return x === null || x === undefined ? "" : String(x); }).join(" ").toLowerCase();
  }

  function wanted(t) {
    var words = M.text.toLowerCase().split(/\s+/).filter(Boolean);
    for (var i = 0; i < words.length; i++) { if (t.hay.indexOf(words[i]) < 0) { return false; } }
    var q = qualityKey(M.values[t.id]);
    if (M.quality === "notgood") { return q !== "good"; }
    if (M.quality) { return q === M.quality; }
    return true;
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  function makeRow(t) {
    var tr = document.createElement("tr");
    tr.className = "tag-row";
    tr.setAttribute("data-tag", t.id);
    cell(tr, t.machine_id || "—");
    cell(tr, t.name, "fw-semibold");
    cell(tr, t.address || "", "text-muted");
    cell(tr, t.data_type || "");
    cell(tr, t.role || "");
    var row = {tr: tr, value: cell(tr, "", "num value-cell"), quality: cell(tr, ""), age: cell(tr, "", "num"),
               read: cell(tr, "", "num"), why: cell(tr, "", "small text-muted")};
    paint(t.id, row);
    return row;
  }

  function paint(tid, row) {
    var v = M.values[tid], q = qualityOf(v);
    setText(row.value, fmtValue(v ? v[1] : null));
    setText(row.quality, q[0], q[1]);
    setText(row.why, v && v[2] !== 0 && v[3] ? String(v[3]) : "");
    paintAge(tid, row, Date.now() / 1000 + M.offset);
  }

  function paintAge(tid, row, now) {
    // Last read: the connection's last good poll (the collectors' health), which reads every tag; a value that has
    // not changed for minutes was still read a second ago.
    var read = M.reads[(M.byId[tid] || {}).connection];
    setText(row.read, read ? duration(now - read) : "—", "num");
    var v = M.values[tid];
    if (!v || !v[0]) { setText(row.age, "—", "num"); return; }
    // The age of the value: since the collector read it as it is now (collectors send changes, so a steady good
    // value grows old and stays right); a value that is not good for long is marked.
    var age = now - v[0];
    setText(row.age, duration(age), "num" + (v[2] !== 0 && age > M.staleAfter ? " stale" : ""));
  }

  function draw() {
    var holder = document.getElementById("plc-table");
    if (!holder) { return; }
    M.stats.draws += 1;
    M.pageSize = parseInt(holder.getAttribute("data-page-size") || "100", 10);
    M.staleAfter = parseFloat(holder.getAttribute("data-stale-after") || "30");
    holder.textContent = "";
    var table = document.createElement("table");
    table.id = "plc-rows";
    table.className = "table table-sm table-striped table-hover monitor-table plc-table";
    var head = document.createElement("thead"), hr = document.createElement("tr");
    COLUMNS.forEach(function (c) { var th = document.createElement("th"); th.textContent = c; hr.appendChild(th); });
    head.appendChild(hr);
    table.appendChild(head);
    table.appendChild(document.createElement("tbody"));
    // Pages of rows: a plant of 20,000 tags stays a table of pageSize rows (the values of all are kept).
    var more = document.createElement("nav");
    more.id = "plc-more";
    more.setAttribute("aria-label", "Pages of tags");
    more.className = "align-items-center gap-2 small my-2";  // not d-flex: its !important would keep it shown
    more.innerHTML = '<button type="button" id="plc-prev" class="btn btn-sm btn-outline-secondary">‹ Previous</button>'
      + '<span id="plc-rows-shown"></span>'
      + '<button type="button" id="plc-next" class="btn btn-sm btn-outline-secondary">Next ›</button>';
    more.querySelector("#plc-prev").addEventListener("click", function () { M.page -= 1; filter(); });
    more.querySelector("#plc-next").addEventListener("click", function () { M.page += 1; filter(); });
    var none = document.createElement("div");
    none.id = "plc-none";
    none.className = "alert alert-light";
    none.textContent = "No tag matches the filter.";
    holder.appendChild(more);
    holder.appendChild(table);
    holder.appendChild(none);
    M.table = table;
    M.rows = {};
    filter();
    fetchReads();
  }

  // Show one page of the rows that match, in catalog order; rows are made when first shown and kept.
  function filter() {
    if (!M.table) { return; }
    var body = M.table.tBodies[0], ids = [];
    M.tags.forEach(function (t) { if (wanted(t)) { ids.push(t.id); } });
    var matching = ids.length, pages = Math.max(1, Math.ceil(matching / M.pageSize));
    M.page = Math.min(Math.max(M.page, 0), pages - 1);
    var first = M.page * M.pageSize, shown = ids.slice(first, first + M.pageSize);
    var same = shown.length === M.shown.length && shown.every(function (id, i) { return id === M.shown[i]; });
    if (!same) {
      var frag = document.createDocumentFragment();
      shown.forEach(function (id) {
        var row = M.rows[id] || (M.rows[id] = makeRow(M.byId[id]));
        paint(id, row);
        frag.appendChild(row.tr);
      });
      body.textContent = "";
      body.appendChild(frag);
      M.shown = shown;
    }
    var n = function (x) { return x.toLocaleString("en-US"); };
    document.getElementById("plc-rows-shown").textContent = shown.length
      ? "Tags " + n(first + 1) + "–" + n(first + shown.length) + " of " + n(matching) : "";
    var prev = document.getElementById("plc-prev"), next = document.getElementById("plc-next");
    prev.disabled = M.page === 0;
    next.disabled = M.page >= pages - 1;
    prev.style.display = next.style.display = pages > 1 ? "" : "none";
    document.getElementById("plc-more").style.display = shown.length ? "flex" : "none";
    M.table.style.display = shown.length ? "" : "none";
    M.table.classList.toggle("plc-offline", !M.connected);
    document.getElementById("plc-none").style.display = shown.length || !M.tags.length ? "none" : "";
  }

  function summary() {
    var el = document.getElementById("plc-summary");
    if (!el || !M.catalog) { return; }
    var counts = {good: 0, uncertain: 0, bad: 0, none: 0};
    M.tags.forEach(function (t) { counts[qualityKey(M.values[t.id])] += 1; });
    var spans = el.querySelectorAll("span");
    if (spans.length !== 6) {
      el.innerHTML = '<span id="plc-count" class="fact-value me-3"></span>'
        + '<span id="plc-good" class="quality-good me-3"></span>'
        + '<span id="plc-uncertain" class="quality-uncertain me-3"></span>'
        + '<span id="plc-bad" class="quality-bad me-3"></span>'
        + '<span id="plc-novalue" class="text-muted me-3"></span>'
        + '<span id="plc-source" class="text-muted small"></span>';
      spans = el.querySelectorAll("span");
    }
    var n = function (x) { return x.toLocaleString("en-US"); };
    setText(spans[0], n(M.tags.length) + " tags");
    setText(spans[1], n(counts.good) + " good");
    setText(spans[2], n(counts.uncertain) + " uncertain");
    setText(spans[3], n(counts.bad) + " bad");
    setText(spans[4], n(counts.none) + " without a value");
    setText(spans[5], M.connected ? "Values live over WebSocket."
      : "Values as the server knew them" + (M.catalog.source === "stored" ? " (the newest stored samples)" : "")
        + "; waiting for the live connection.");
  }

  // The catalog comes as one list per tag (pages/plc_monitor.py CATALOG_COLUMNS) and machine names once.
  function tagsOf(catalog) {
    if (catalog._tags) { return catalog._tags; }
    var cols = catalog.columns || [], names = catalog.machines || {};
    catalog._tags = (catalog.rows || []).map(function (r) {
      var t = {};
      cols.forEach(function (c, i) { t[c] = r[i]; });
      t.machine_name = names[t.machine_id];
      return t;
    });
    return catalog._tags;
  }

  function signature(catalog) {
    return (catalog.machine || "") + "|" + tagsOf(catalog).map(function (t) { return t.id; }).join(",");
  }

  function configure(catalog, text, quality) {
    if (!catalog) { return; }
    var redraw = catalog !== M.catalog && (!M.catalog || !M.table || !document.body.contains(M.table)
                                           || signature(catalog) !== signature(M.catalog));
    if (text !== M.text || quality !== M.quality) { M.page = 0; }
    M.text = text;
    M.quality = quality;
    if (redraw) {
      M.catalog = catalog;
      M.tags = tagsOf(catalog);
      M.byId = {};
      M.tags.forEach(function (t) {
        t.hay = hay(t);
        M.byId[t.id] = t;
        var known = M.values[t.id];
        if (t.value && (!known || known[0] < t.value[0])) { M.values[t.id] = t.value; }
      });
      M.shown = [];
      // values the sockets already have (they may have connected before this ran)
      var live = window.oeeLive ? window.oeeLive.sockets : {};
      Object.keys(live).forEach(function (id) {
        if (id.indexOf("plc-live-") === 0) { take(live[id].state.tags); }
      });
      draw();
    } else {
      filter();
    }
    summary();
  }

  // New values: remember each; repaint the rows on screen whose value or quality changed.
  function take(values) {
    Object.keys(values).forEach(function (tid) {
      var v = values[tid], known = M.values[tid];
      if (!v || (known && known[0] > v[0])) { return; }
      if (known && known[2] !== 0 && v[2] === known[2] && v[3] === undefined && known[3]) {
        v = v.concat([known[3]]);  // the same bad stretch: keep the why the page was drawn with (not sent live)
      }
      M.values[tid] = v;
      M.stats.values += 1;
      if (!known || known[2] !== v[2]) { M.dirty = true; }
      var row = M.rows[tid];
      if (row && row.tr.parentNode) { paint(tid, row); }
    });
  }

  function onMessage(socketId, msg) {
    if (socketId.indexOf("plc-live-") !== 0) { return; }
    var t0 = performance.now();
    handle(msg);
    M.stats.busy_ms += performance.now() - t0;
  }

  function handle(msg) {
    M.stats.messages += 1;
    if (msg.time) { M.offset = msg.time - Date.now() / 1000; }
    if (msg.type === "snapshot") {
      M.stats.snapshots += 1;
      M.connected = true;
      var values = {};
      Object.keys(msg.tags || {}).forEach(function (tid) { values[tid] = msg.tags[tid].value; });
      take(values);
      M.dirty = true;
      if (M.table) { M.table.classList.remove("plc-offline"); }
    } else if (msg.type === "tag_update") {
      take(msg.tags);
    } else if (msg.type === "closed") {
      M.stats.closed += 1;
      M.connected = false;
      M.dirty = true;
      if (M.table) { M.table.classList.add("plc-offline"); }
    }
  }

  function tick() {
    var t0 = performance.now();
    ticked();
    M.stats.busy_ms += performance.now() - t0;
  }

  function ticked() {
    if (!M.table || !document.body.contains(M.table)) {
      if (M.catalog && document.getElementById("plc-table")) { draw(); summary(); }  // drawn before the page was
      return;
    }
    var now = Date.now() / 1000 + M.offset;
    M.shown.forEach(function (id) { var row = M.rows[id]; if (row) { paintAge(id, row, now); } });
    if (M.dirty) {
      M.dirty = false;
      if (M.quality) { filter(); }
      summary();
    }
  }

  // The connections' last good poll from /healthz (not a Dash callback; only while the table is on the page).
  function fetchReads() {
    var holder = document.getElementById("plc-table");
    if (!holder || !window.fetch) { return; }
    fetch(holder.getAttribute("data-health-url") || "/healthz", {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (h) {
        if (!h) { return; }
        var reads = {};
        (h.connections || []).forEach(function (c) { if (c.name && c.last_success) { reads[c.name] = c.last_success; } });
        M.reads = reads;
      })
      .catch(function () {});
  }

  function start() {
    if (!window.oeeLive) { setTimeout(start, 50); return; }
    window.oeeLive.subscribe(onMessage);
  }
  start();
  setInterval(tick, 1000);
  setInterval(fetchReads, READS_EVERY_MS);


  window.oeePlcMonitor = {configure: configure, stats: M.stats, state: M, format: fmtValue, duration: duration};
})();
