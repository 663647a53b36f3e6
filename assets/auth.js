/* Embed links (auth/embed.py): a page opened with ?embed_token=... hands the token on to its own requests,
 * which browsers would otherwise make without it: Dash's fetches (layout, callbacks) get the X-Embed-Token header,
 * same-origin WebSockets get ?embed_token=. Nothing happens on pages opened without one. Cookies are not used for
 * this, so an embed link works inside a Grafana iframe on another site, where browsers hold cookies back. */
(function () {
  "use strict";
  var token = new URLSearchParams(window.location.search).get("embed_token");
  if (!token) { return; }
  var origin = window.location.origin;

  function sameOrigin(url) {
    try { return new URL(url, window.location.href).origin === origin; } catch (e) { return false; }
  }

  var nativeFetch = window.fetch.bind(window);
  window.fetch = function (input, init) {
    var url = typeof input === "string" ? input : (input && input.url) || "";
    if (!sameOrigin(url)) { return nativeFetch(input, init); }
    init = Object.assign({}, init || {});
    var headers = new Headers(init.headers || (typeof input === "object" && input.headers) || {});
    headers.set("X-Embed-Token", token);
    init.headers = headers;
    return nativeFetch(input, init);
  };

  var NativeWebSocket = window.WebSocket;
  function EmbedWebSocket(url, protocols) {
    var u = new URL(url, window.location.href);
    if (u.host === window.location.host && !u.searchParams.has("embed_token")) {
      u.searchParams.set("embed_token", token);
    }
    return protocols === undefined ? new NativeWebSocket(u.toString()) : new NativeWebSocket(u.toString(), protocols);
  }
  EmbedWebSocket.prototype = NativeWebSocket.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach(function (k) { EmbedWebSocket[k] = NativeWebSocket[k]; });
  window.WebSocket = EmbedWebSocket;
})();
