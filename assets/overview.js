/* / (pages/overview.py): the machine tiles, drawn and updated by this script from the page's dcc.Stores.
 *
 * Why not Dash components: the Dash 4 renderer notifies every component on each store update, so 50 tiles of
 * ~20 components each, updated through 150 pattern-matching outputs, cost the browser seconds per refresh. Here
 * the server sends plain data (every text already formatted in Python, components/format.py) and this script
 * only builds the tiles once per plant and then sets texts and classes that changed.
 *
 * update(plant, numbers, status) is called by the page's clientside callback whenever one of the three stores
 * changes. A tile is an <a href> to its machine: a plain click navigates inside the app like dcc.Link (pushState
 * and the event dcc.Location listens to); ctrl/shift/middle clicks open a tab as links do.
 */
(function () {
  "use strict";
  var O = {plantKey: null, tiles: {}, lines: {}, stats: {draws: 0, updates: 0}};

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }

  function setText(e, text) {
    text = text === undefined || text === null ? "" : String(text);
    if (e.textContent !== text) { e.textContent = text; }
  }

  function setAttr(e, name, value) {
    if (value === undefined || value === null) {
      if (e.hasAttribute(name)) { e.removeAttribute(name); }
    } else if (e.getAttribute(name) !== String(value)) {
      e.setAttribute(name, String(value));
    }
  }

  function navigate(event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey ||
        event.altKey) { return; }
    var href = event.currentTarget.getAttribute("href");
    if (!href || event.currentTarget.target) { return; }
    event.preventDefault();
    window.history.pushState({}, "", href);
    window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
    window.scrollTo(0, 0);
  }

  function link(href, cls, text) {
    var a = el("a", cls, text);
    a.setAttribute("href", href);
    a.addEventListener("click", navigate);
    return a;
  }

  function tile(m) {
    var a = link(m.href, "tile-link");
    var card = el("div", "card machine-tile state-unknown");
    card.id = "overview-tile-" + m.machine_id;
    var body = el("div", "card-body");
    var head = el("div", "tile-head");
    head.appendChild(el("span", "tile-id", m.machine_id));
    head.appendChild(el("span", "tile-name", m.name));
    var status = el("div", "tile-status");
    var oee = el("div", "tile-oee");
    body.appendChild(head);
    body.appendChild(status);
    body.appendChild(oee);
    card.appendChild(body);
    a.appendChild(card);
    return {link: a, card: card, status: status, oee: oee, statusKey: null, oeeKey: null};
  }

  function draw(holder, plant) {
    holder.textContent = "";
    O.tiles = {};
    O.lines = {};
    plant.forEach(function (area) {
      var group = el("div", "machine-group");
      group.appendChild(el("h5", "group-title", area.name));
      var blocks = el("div", "line-blocks");
      area.lines.forEach(function (line) {
        var block = el("div", "line-block");
        var title = el("h6", "line-title");
        title.appendChild(line.href ? link(line.href, "", line.name) : el("span", "", line.name));
        var total = el("span", "group-oee");
        total.setAttribute("data-line", line.key);
        title.appendChild(total);
        O.lines[line.key] = total;
        block.appendChild(title);
        var row = el("div", "tile-row");
        line.machines.forEach(function (m) {
          var t = tile(m);
          O.tiles[m.machine_id] = t;
          row.appendChild(t.link);
        });
        block.appendChild(row);
        blocks.appendChild(block);
      });
      group.appendChild(blocks);
      holder.appendChild(group);
    });
    O.stats.draws += 1;
  }

  function showNumbers(numbers) {
    Object.keys(O.tiles).forEach(function (mid) {
      var t = O.tiles[mid];
      var n = (numbers.tiles || {})[mid] || null;
      var key = JSON.stringify(n);
      if (key === t.oeeKey) { return; }
      t.oeeKey = key;
      t.oee.textContent = "";
      setAttr(t.oee, "title", n && n.title);
      if (!n) { return; }
      if (n.value === undefined) {
        t.oee.appendChild(el("div", "text-muted small", n.text));
        return;
      }
      var value = el("div", "tile-oee-value", n.value);
      value.id = "overview-oee-" + mid;
      value.setAttribute("data-start", n.start);
      value.setAttribute("data-end", n.end);
      if (n.warn) {  // a factor above 100 %: a mark, its likely cause in the tooltip
        var warn = el("span", "factor-warning", "\u26a0");
        warn.id = "overview-oee-warning-" + mid;
        warn.title = n.warn;
        warn.setAttribute("aria-label", n.warn);
        value.appendChild(warn);
      }
      var label = el("div");
      label.appendChild(el("span", "tile-oee-label", n.label));
      label.appendChild(el("span", "tile-rate", n.rate));
      t.oee.appendChild(value);
      t.oee.appendChild(label);
    });
    Object.keys(O.lines).forEach(function (key) { setText(O.lines[key], (numbers.lines || {})[key]); });
  }

  function showStatus(status) {
    Object.keys(O.tiles).forEach(function (mid) {
      var t = O.tiles[mid];
      var s = (status.tiles || {})[mid];
      if (!s) { s = {state: "unknown", pill: "", why: "Removed from the configuration."}; }
      var cls = "card machine-tile state-" + s.state;
      if (t.card.className !== cls) { t.card.className = cls; }
      var key = JSON.stringify(s);
      if (key === t.statusKey) { return; }
      t.statusKey = key;
      t.status.textContent = "";
      var first = el("div");
      if (s.pill) {
        var pill = el("span", "state-pill", s.pill);
        pill.style.backgroundColor = s.color;
        pill.style.color = s.text || "#fff";
        first.appendChild(pill);
      }
      first.appendChild(el("span", "state-for", s.since ? " " + s.since : ""));
      t.status.appendChild(first);
      if (s.fault) { t.status.appendChild(el("div", "tile-fault", s.fault)); }
      if (s.info) { t.status.appendChild(el("div", "tile-info", s.info)); }
      if (s.why) { t.status.appendChild(el("div", "tile-why", s.why)); }
    });
  }

  function update(plant, numbers, status) {
    var holder = document.getElementById("overview-tiles");
    if (!holder || !plant) { return; }
    var key = JSON.stringify(plant);
    if (key !== O.plantKey || !holder.firstChild) {
      draw(holder, plant);
      O.plantKey = key;
    }
    if (numbers) { showNumbers(numbers); }
    if (status) { showStatus(status); }
    O.stats.updates += 1;
  }

  window.oeeOverview = {update: update, stats: O.stats};
})();
