/* Live values over WebSocket for the Dash pages (docs/live.md). Loaded on every page from assets/.
 *
 * A page declares a socket with components.live.live_socket(id, path): a hidden element carrying
 * data-oee-live-url. This script finds it (also after page changes), connects, keeps the latest values, and
 *   - appends points to every components.live.live_graph bound to it, through the graph's extendData prop
 *     (dash_clientside.set_props), so the figure keeps the user's zoom (uirevision) and a bounded window;
 *   - writes {connected, machines, alerts, time} into the socket's dcc.Store (<id>-store) at most once a second,
 *     for Dash callbacks;
 *   - shows the connection's state in <id>-status;
 *   - reconnects by itself with backoff (1 s doubling to 30 s, jittered), also when heartbeats stop; a socket the
 *     server refused (4400, 4404: unknown machine or line) is not retried.
 * Other scripts can listen: window.oeeLive.on(socketId, function (message, state) {...}) for one socket, or
 * window.oeeLive.subscribe(function (socketId, message, state) {...}) for every socket, also those a page opens
 * later (the PLC monitor). A lost connection is passed on as {type: "closed", code, reason}.
 */
(function () {
  "use strict";
  var sockets = {};
  var everywhere = [];

  function setProps(id, props, rendered) {
    // A dcc.Store renders no element: only components that render are checked for presence.
    if (window.dash_clientside && window.dash_clientside.set_props && (!rendered || document.getElementById(id))) {
      window.dash_clientside.set_props(id, props);
    }
  }

  function wsUrl(path) {
    // Behind a proxy the app may live under a prefix (url_base_pathname): Dash's config says which.
    var prefix = "/";
    try { prefix = JSON.parse(document.getElementById("_dash-config").textContent).requests_pathname_prefix || "/"; }
    catch (e) { prefix = "/"; }
    var proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    return proto + "//" + window.location.host + prefix.replace(/\/$/, "") + path;
  }

  function graphsOf(id) {
    return Array.prototype.slice.call(
      document.querySelectorAll('[data-oee-live-socket="' + id + '"][data-oee-live-graph]'));
  }

  function Live(id, path) {
    this.id = id;
    this.path = path;
    this.ws = null;
    this.retry = 0;
    this.closed = false;
    this.listeners = [];
    this.state = {machines: {}, tags: {}, names: {}, alerts: {}, connected: false, heartbeat_s: 15};
    this.lastMessage = 0;
    this.received = 0;  // messages, all connections of this socket (for tests and the curious)
    this.connects = 0;
    this.storeDue = false;
    this.connect();
    var self = this;
    this.timer = setInterval(function () { self.tick(); }, 1000);
  }

  Live.prototype.status = function (text, ok) {
    var el = document.getElementById(this.id + "-status");
    if (el) {
      el.textContent = text;
      el.className = "oee-live-status " + (ok ? "oee-live-ok" : "oee-live-down");
    }
  };

  Live.prototype.connect = function () {
    var self = this;
    if (this.closed) { return; }
    this.status(this.retry ? "reconnecting…" : "connecting…", false);
    var ws = new WebSocket(wsUrl(this.path));
    this.ws = ws;
    ws.onopen = function () { self.lastMessage = Date.now(); self.connects += 1; };
    ws.onmessage = function (ev) {
      self.lastMessage = Date.now();
      self.received += 1;
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      self.handle(msg);
    };
    ws.onclose = function (ev) {
      self.state.connected = false;
      self.storeDue = true;
      if (self.ws !== ws || self.closed) { return; }
      self.notify({type: "closed", code: ev.code, reason: ev.reason});
      if (ev.code === 4400 || ev.code === 4404) {
        self.status("not available: " + (ev.reason || ev.code), false);
        self.closed = true;
        return;
      }
      var delay = Math.min(1000 * Math.pow(2, self.retry), 30000) * (0.8 + 0.4 * Math.random());
      self.retry += 1;
      self.status("disconnected; retrying in " + Math.round(delay / 1000) + " s", false);
      setTimeout(function () { self.connect(); }, delay);
    };
  };

  Live.prototype.tick = function () {
    if (!document.getElementById(this.id)) { this.close(); return; }  // the page went away
    var silent = Date.now() - this.lastMessage;
    if (this.ws && this.ws.readyState === 1 && silent > 2500 * this.state.heartbeat_s) {
      this.ws.close();  // no heartbeat for 2.5 intervals: the link is dead; onclose reconnects
    }
    if (this.storeDue) {
      this.storeDue = false;
      if (!this.state.storeSet && !this.state.connected) { return; }
      this.state.storeSet = true;
      setProps(this.id + "-store", {data: {
        connected: this.state.connected, machines: this.state.machines,
        alerts: Object.keys(this.state.alerts).map(function (k) { return this.state.alerts[k]; }, this),
        time: Date.now() / 1000}});
    }
  };

  Live.prototype.close = function () {
    this.closed = true;
    clearInterval(this.timer);
    if (this.ws) { this.ws.close(); }
    delete sockets[this.id];
  };

  Live.prototype.handle = function (msg) {
    var st = this.state, self = this;
    switch (msg.type) {
      case "snapshot":
        st.connected = true;
        st.heartbeat_s = msg.heartbeat_s || 15;
        this.retry = 0;
        this.status("live", true);
        (msg.machines || []).forEach(function (m) {
          st.machines[m.machine_id] = {status: m.status, metrics: m.metrics, name: m.name};
        });
        st.alerts = {};
        (msg.alerts || []).forEach(function (a) { st.alerts[a.id] = a; });
        if (msg.tags) {
          st.names = {};
          Object.keys(msg.tags).forEach(function (tid) {
            var t = msg.tags[tid];
            st.names[tid] = t.name;
            if (t.value) { st.tags[tid] = t.value; }
          });
          var initial = {};
          Object.keys(msg.tags).forEach(function (tid) { if (msg.tags[tid].value) { initial[tid] = msg.tags[tid].value; } });
          this.extendGraphs(initial);
        }
        this.storeDue = true;
        break;
      case "tag_update":
        Object.keys(msg.tags).forEach(function (tid) { st.tags[tid] = msg.tags[tid]; });
        this.extendGraphs(msg.tags);
        break;
      case "machine_status":
        (st.machines[msg.machine_id] = st.machines[msg.machine_id] || {}).status = msg;
        this.storeDue = true;
        break;
      case "metrics":
        (st.machines[msg.machine_id] = st.machines[msg.machine_id] || {}).metrics = msg;
        this.storeDue = true;
        break;
      case "alert":
        if (msg.active) { st.alerts[msg.id] = msg; } else { delete st.alerts[msg.id]; }
        this.storeDue = true;
        break;
      default:
        break;
    }
    this.notify(msg);
  };

  Live.prototype.notify = function (msg) {
    var st = this.state, id = this.id;
    this.listeners.forEach(function (fn) {
      try { fn(msg, st); } catch (e) { if (window.console) { console.error(e); } }
    });
    everywhere.forEach(function (fn) {
      try { fn(id, msg, st); } catch (e) { if (window.console) { console.error(e); } }
    });
  };

  // Which tag feeds which trace: a trace's meta.tag_id (a tag id), else meta.tag or its name (a tag name), read from
  // the rendered figure, so a page may change its traces (a tag picker) and the script follows.
  function traceTags(holder, graphId) {
    var gd = holder.querySelector(".js-plotly-plot");
    if (gd && gd.data) {
      return gd.data.map(function (t) {
        var meta = t.meta || {};
        return {id: meta.tag_id !== undefined ? String(meta.tag_id) : null, name: meta.tag || t.name};
      });
    }
    return JSON.parse(holder.getAttribute("data-oee-live-tags") || "[]").map(function (n) {
      return {id: null, name: n};
    });
  }

  // "2026-11-28T06:00:00.000" in the zone tz (naive local time, as the pages' charts use), else UTC ISO.
  var formatters = {};
  function timeText(t, tz) {
    var d = new Date(t * 1000);
    if (!tz) { return d.toISOString(); }
    var f = formatters[tz];
    if (!f) {
      try {
        f = formatters[tz] = new Intl.DateTimeFormat("en-GB", {timeZone: tz, hourCycle: "h23", year: "numeric",
          month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"});
      } catch (e) { return d.toISOString(); }
    }
    var p = {};
    f.formatToParts(d).forEach(function (x) { p[x.type] = x.value; });
    var ms = ("00" + d.getUTCMilliseconds()).slice(-3);
    return p.year + "-" + p.month + "-" + p.day + "T" + p.hour + ":" + p.minute + ":" + p.second + "." + ms;
  }

  Live.prototype.extendGraphs = function (values) {
    var st = this.state;
    graphsOf(this.id).forEach(function (holder) {
      var raw = holder.getAttribute("data-oee-live-graph");
      var graphId = raw.charAt(0) === "{" ? JSON.parse(raw) : raw;  // a dictionary id (All-in-One components)
      var maxPoints = parseInt(holder.getAttribute("data-oee-live-points") || "3000", 10);
      var tz = holder.getAttribute("data-oee-live-tz");
      var xs = [], ys = [], idx = [];
      traceTags(holder, graphId).forEach(function (want, i) {
        var x = [], y = [];
        Object.keys(values).forEach(function (tid) {
          var v = values[tid];
          var match = want.id !== null ? want.id === tid : st.names[tid] === want.name;
          if (match && v && typeof v[1] === "number") {
            x.push(timeText(v[0], tz));
            y.push(v[1]);
          }
        });
        if (x.length) { xs.push(x); ys.push(y); idx.push(i); }
      });
      if (idx.length) {
        setProps(graphId, {extendData: [{x: xs, y: ys}, idx, maxPoints]}, typeof graphId === "string");
      }
    });
  };

  function scan() {
    var seen = {};
    document.querySelectorAll("[data-oee-live-url]").forEach(function (el) {
      var id = el.id, path = el.getAttribute("data-oee-live-url");
      seen[id] = true;
      var s = sockets[id];
      if (s && s.path !== path) { s.close(); s = null; }
      if (!s) { sockets[id] = new Live(id, path); }
    });
    Object.keys(sockets).forEach(function (id) { if (!seen[id]) { sockets[id].close(); } });
  }

  window.oeeLive = {
    sockets: sockets,
    on: function (id, fn) {
      if (sockets[id]) { sockets[id].listeners.push(fn); return true; }
      return false;
    },
    subscribe: function (fn) { everywhere.push(fn); },
    scan: scan
  };

  var pending = null;
  function start() {
    scan();
    // Pages change without a reload: look again after the DOM changed (debounced; graphs redraw often).
    new MutationObserver(function () {
      if (!pending) { pending = setTimeout(function () { pending = null; scan(); }, 200); }
    }).observe(document.body, {childList: true, subtree: true});
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
