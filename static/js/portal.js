/* The pay page: follows the payment live over /ws/portal/?token=… (falling back to
   GET /portal/status/<token>/ when the socket is blocked), then signs the device in at the
   router (link-login-only; CHAP-md5 when chap-id is given) and goes on to link-orig. */
(function () {
  "use strict";
  var box = document.getElementById("payment-status");
  if (!box) return;
  var token = box.dataset.token;
  var handoff = JSON.parse(document.getElementById("router-handoff").textContent || "{}");
  var current = JSON.parse(document.getElementById("payment-initial").textContent || "{}");
  var polling = null;
  var socket = null;
  var signedIn = false;

  // Times in the hotspot's own zone (the page's data-time-zone), whatever the phone's setting.
  function localTime(iso) {
    var at = new Date(iso);
    var zone = document.body.dataset.timeZone || undefined;
    try {
      return at.toLocaleString(undefined, { timeZone: zone, dateStyle: "medium", timeStyle: "short" });
    } catch (e) {
      return at.toLocaleString();
    }
  }

  function show(id, on) { document.getElementById(id).hidden = !on; }

  function render(state) {
    if (!state || !state.state) return;
    current = state;
    box.dataset.state = state.state;
    // Our own sentences come in every language (`messages`): the page's own (<html lang>).
    var lang = (document.documentElement.lang || "en").toLowerCase();
    var message = (state.messages && (state.messages[lang] || state.messages[lang.split("-")[0]])) || state.message || "";
    document.getElementById("payment-message").textContent = message;
    show("payment-pending", state.state === "pending");
    show("payment-completed", state.state === "completed");
    show("payment-failed", state.state === "failed");
    if (state.state === "failed") {
      document.getElementById("payment-error").textContent = message || state.reason || "";
    }
    if (state.state === "completed" && state.credentials) {
      document.getElementById("hotspot-username").textContent = state.credentials.username;
      document.getElementById("hotspot-password").textContent = state.credentials.password;
      var expiry = document.getElementById("hotspot-expiry");
      expiry.dataset.expires = state.credentials.expires_at;
      expiry.textContent = localTime(state.credentials.expires_at);
      signIn(state.credentials);
    }
    if (state.state !== "pending") stop();
  }

  function stop() {
    if (polling) { clearInterval(polling); polling = null; }
    if (socket) { var s = socket; socket = null; try { s.close(1000); } catch (e) { /* gone */ } }
  }

  function poll() {
    fetch("/portal/status/" + encodeURIComponent(token) + "/", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) { if (state) render(state); })
      .catch(function () { /* try again on the next tick */ });
  }

  function fallBack() {
    if (polling || current.state !== "pending") return;
    window.portalFallback = true;
    poll();
    polling = setInterval(poll, 3000);
  }

  function connect() {
    if (window.portalForcePolling) { fallBack(); return; }
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var opened = false;
    try {
      socket = new WebSocket(scheme + location.host + "/ws/portal/?token=" + encodeURIComponent(token));
    } catch (e) { fallBack(); return; }
    var timer = setTimeout(function () { if (!opened) fallBack(); }, 5000);
    socket.onopen = function () { opened = true; clearTimeout(timer); window.portalSocketOpen = true; };
    socket.onmessage = function (msg) {
      var frame;
      try { frame = JSON.parse(msg.data); } catch (e) { return; }
      if (frame.type === "payment") render(frame);
    };
    socket.onclose = function () {
      clearTimeout(timer);
      if (socket !== null) { socket = null; fallBack(); }
    };
  }

  function signIn(credentials) {
    var target = handoff["link-login-only"];
    if (signedIn || !target) return;
    signedIn = true;
    var password = credentials.password;
    if (handoff["chap-id"]) {
      var m = window.portalMd5;
      password = m.md5Bytes(
        m.hexToBytes(handoff["chap-id"])
          .concat(m.utf8Bytes(credentials.password))
          .concat(m.hexToBytes(handoff["chap-challenge"] || ""))
      );
    }
    var form = document.createElement("form");
    form.method = "post";
    form.action = target;
    form.id = "router-login";
    form.hidden = true;
    var fields = { username: credentials.username, password: password,
      dst: handoff["link-orig"] || "", popup: "true" };
    Object.keys(fields).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = fields[name];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    show("signin-note", true);
    // A moment to read the login first; it also stays on the router's status page.
    setTimeout(function () { form.submit(); }, 2500);
  }

  render(current);
  if (current.state === "pending") connect();
})();
