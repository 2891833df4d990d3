// The one browser module: one WebSocket per signed-in tab, toasts, live page hooks.
// No build step. Wire protocol: docs/protocol.md (issue 3). Debug: localStorage.debugNotifications = 1
"use strict";

const CONFIG_EL = document.getElementById("notifications-config");
const config = CONFIG_EL ? JSON.parse(CONFIG_EL.textContent) : { live: false };
const LEVELS = config.levels || { success: 5000, info: 5000, warning: 6000, error: 7000 };
const EVENTS = config.events || {};
const MAX_VISIBLE = config.max_visible || 5;
// The page's own words in its language (notifications/context_processors.py, Django's i18n).
const STRINGS = config.strings || {};
const t = (key, fallback, params = {}) =>
  (STRINGS[key] || fallback).replace(/\{(\w+)\}/g, (all, name) => (name in params ? String(params[name]) : all));
// An event frame carries its title and message in every language (`titles` / `messages`,
// docs/protocol.md); the page shows the one of <html lang>, else the default (`title`).
const LANG = (document.documentElement.lang || "en").toLowerCase();
function localized(frame, field) {
  const all = frame[`${field}s`];
  return (all && (all[LANG] || all[LANG.split("-")[0]])) || frame[field];
}
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30000;
const PING_EVERY_MS = 25000;
const STABLE_AFTER_MS = 5000;
// Close codes after which reconnecting cannot help (signed out, suspended, refused).
const FINAL_CLOSE_CODES = new Set([4401, 4403]);

const debug = () => {
  try {
    return window.localStorage.getItem("debugNotifications") === "1";
  } catch {
    return false;
  }
};
const log = (...args) => {
  if (debug()) console.debug("[notifications]", ...args);
};

// ---------------------------------------------------------------- toasts

// Times are shown in the tenant's zone (the page's <body data-time-zone>, set by the server from
// the signed-in user's tenant; system admins get TIME_ZONE), not in the browser's own zone.
const TIME_ZONE =
  (document.body && document.body.dataset.timeZone) || config.time_zone || undefined;
const CLOCK = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }; // 23:30, as the pages
let timeFormat = null;
function formatTime(iso) {
  const at = iso ? new Date(iso) : new Date();
  if (!timeFormat) {
    try {
      timeFormat = new Intl.DateTimeFormat(LANG, { timeZone: TIME_ZONE, ...CLOCK });
    } catch {
      timeFormat = new Intl.DateTimeFormat(LANG, CLOCK); // a zone this browser does not know
    }
  }
  return timeFormat.format(at);
}

const stack = document.getElementById("toast-stack");

function durationFor(eventName, level) {
  const entry = EVENTS[eventName];
  if (entry && entry.duration_ms) return entry.duration_ms;
  return LEVELS[level] || LEVELS.info || 5000;
}

function dismiss(toast) {
  if (!toast.isConnected) return;
  window.clearTimeout(toast._timer);
  withoutScrollAnchoring(() => {
    toast.remove();
    collapseStack();
  });
}

// The stack grows and shrinks the sticky header. On a scrolled page the browser's scroll
// anchoring would keep the content still and let the taller header cover its top; without it,
// the content moves down with the header and everything in view stays in view.
let anchoringPaused = 0;
function withoutScrollAnchoring(change) {
  const root = document.documentElement;
  anchoringPaused += 1;
  root.style.overflowAnchor = "none";
  try {
    change();
    void root.offsetHeight; // lay out now, while anchoring is off
  } finally {
    window.requestAnimationFrame(() =>
      window.requestAnimationFrame(() => {
        anchoringPaused -= 1;
        if (anchoringPaused === 0) root.style.overflowAnchor = "";
      }),
    );
  }
}

// The stack is a strip of the sticky header (it never covers the page's buttons and forms):
// it shows the newest SHOWN toasts (one on a phone); older ones collapse behind a "+N more" button that
// expands them until the stack empties.
const SHOWN = 3;
const SHOWN_ON_A_PHONE = 1;
const phone = window.matchMedia ? window.matchMedia("(max-width: 575.98px)") : null;
let expanded = false;
function collapseStack() {
  if (!stack) return;
  const toasts = [...stack.querySelectorAll(".app-toast")];
  if (toasts.length === 0) expanded = false;
  const shown = phone && phone.matches ? SHOWN_ON_A_PHONE : SHOWN;
  const hidden = expanded ? 0 : Math.max(0, toasts.length - shown);
  toasts.forEach((toast, i) => toast.classList.toggle("toast-collapsed", i < hidden));
  let more = document.getElementById("toast-more");
  if (hidden === 0) {
    if (more) more.remove();
    return;
  }
  if (!more) {
    more = document.createElement("button");
    more.type = "button";
    more.id = "toast-more";
    more.className = "btn btn-sm btn-outline-secondary toast-more";
    more.addEventListener("click", () => {
      expanded = true;
      withoutScrollAnchoring(collapseStack);
    });
  }
  more.textContent = t("more", "+{count} more", { count: hidden });
  more.setAttribute("aria-label", t("show_more", "Show {count} more notifications", { count: hidden }));
  stack.prepend(more);
}

const LEVEL_ICONS = {
  success: "bi-check-circle-fill text-success",
  info: "bi-info-circle-fill text-info",
  warning: "bi-exclamation-triangle-fill text-warning",
  error: "bi-x-octagon-fill text-danger",
};

// Auto-dismiss with a timer that pauses while the pointer is over the toast.
function arm(toast, ms) {
  let remaining = ms;
  let startedAt = 0;
  const start = () => {
    startedAt = Date.now();
    toast._timer = window.setTimeout(() => dismiss(toast), remaining);
  };
  toast.addEventListener("mouseenter", () => {
    window.clearTimeout(toast._timer);
    remaining = Math.max(500, remaining - (Date.now() - startedAt));
    toast.dataset.paused = "1";
  });
  toast.addEventListener("mouseleave", () => {
    delete toast.dataset.paused;
    start();
  });
  toast.addEventListener("click", () => dismiss(toast));
  start();
}

function trimStack() {
  if (!stack) return;
  const toasts = stack.querySelectorAll(".app-toast");
  for (let i = 0; i < toasts.length - MAX_VISIBLE; i += 1) dismiss(toasts[i]);
  collapseStack();
}

/** Show a toast; title and message are always set as text, never parsed as HTML. */
function showToast({ event = "message", level = "info", title = "", message = "", at = null }) {
  if (!stack) return null;
  const toast = document.createElement("div");
  toast.className = "toast show app-toast";
  // An error is announced at once (assertive); everything else waits its turn (polite).
  if (level === "error") {
    toast.setAttribute("role", "alert");
    toast.setAttribute("aria-live", "assertive");
  } else {
    toast.setAttribute("role", "status");
  }
  toast.dataset.event = event;
  toast.dataset.level = level;
  const header = document.createElement("div");
  header.className = "toast-header";
  const icon = document.createElement("i");
  icon.className = `bi ${LEVEL_ICONS[level] || LEVEL_ICONS.info} me-2 toast-icon`;
  icon.setAttribute("aria-hidden", "true");
  header.append(icon);
  const strong = document.createElement("strong");
  strong.className = "me-auto toast-title";
  strong.textContent = title || event;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "btn-close";
  close.setAttribute("aria-label", t("dismiss", "Dismiss"));
  const when = document.createElement("time");
  when.className = "small text-body-secondary toast-time me-2";
  if (at) when.dateTime = at;
  when.textContent = formatTime(at);
  header.append(strong, when, close);
  const body = document.createElement("div");
  body.className = "toast-body toast-message";
  body.textContent = message;
  toast.append(header, body);
  withoutScrollAnchoring(() => {
    stack.append(toast);
    arm(toast, durationFor(event, level));
    trimStack();
  });
  return toast;
}

// Flash messages rendered by the server into the stack get the same behaviour.
if (stack) {
  stack.querySelectorAll(".app-toast").forEach((toast) => {
    arm(toast, durationFor(toast.dataset.event, toast.dataset.level));
  });
  trimStack();
}

// ---------------------------------------------------------------- the socket

const state = {
  socket: null,
  socketId: null,
  channels: [],
  extra: new Set(), // channels this page subscribed to itself; re-sent after a reconnect
  connected: false,
  attempt: 0,
  timer: null,
  pinger: null,
  stableTimer: null,
  stopped: false,
  // Event ids already shown (dedupe across groups, reconnects and replay). A page starts with
  // the ids its lists already hold that a replay from config.last_id may serve again
  // (config.seen_ids; see notifications/replay.py).
  seen: new Set(Array.isArray(config.seen_ids) ? config.seen_ids.filter(Number.isInteger) : []),
  // The last event id received; on a page load, the newest event when the page was rendered
  // (so what happens before the socket opens is replayed, see "resume" in docs/protocol.md).
  lastId: Number.isInteger(config.last_id) ? config.last_id : null,
  previousSocketId: null, // this tab's socket id before the current one (see resume)
};

const indicator = document.getElementById("connection-indicator");
function setIndicator(value) {
  if (!indicator) return;
  indicator.dataset.state = value;
  const label = indicator.querySelector(".label");
  const text = {
    online: t("live", "Live"),
    connecting: t("connecting", "Connecting…"),
    offline: t("down", "Offline"),
  }[value];
  if (label) label.textContent = text;
  indicator.title = t("live_updates", "Live updates: {state}", { state: text });
}

// This tab's last socket id survives a page load (sessionStorage is per tab).
const SOCKET_KEY = "notifications.socketId";
function previousSocketId() {
  if (state.previousSocketId) return state.previousSocketId;
  try {
    return window.sessionStorage.getItem(SOCKET_KEY);
  } catch {
    return null;
  }
}
function rememberSocketId(socketId) {
  state.previousSocketId = socketId;
  try {
    window.sessionStorage.setItem(SOCKET_KEY, socketId);
  } catch {
    // storage disabled: a replay after a form post may show the tab its own event
  }
}

function send(frame) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    const text = JSON.stringify(frame);
    log("send", text);
    state.socket.send(text);
    return true;
  }
  return false;
}

// Page hooks keyed on frame type ("welcome", "presence", "viewers", ...): called after the
// module's own handling, so a page can react to frames without a second socket. A "welcome"
// hook runs after every (re)connect: the place to re-send a page's actions.
const hooks = new Map();
function on(type, handler) {
  if (!hooks.has(type)) hooks.set(type, []);
  hooks.get(type).push(handler);
}
function runHooks(frame) {
  (hooks.get(frame.type) || []).forEach((handler) => {
    try {
      handler(frame);
    } catch (error) {
      console.warn("[notifications] hook failed", frame.type, error);
    }
  });
}

function backoffDelay(attempt) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2)); // "equal jitter"
}

function scheduleReconnect() {
  if (state.stopped || state.timer) return;
  const delay = backoffDelay(state.attempt);
  state.attempt += 1;
  log(`reconnecting in ${delay} ms (attempt ${state.attempt})`);
  state.timer = window.setTimeout(() => {
    state.timer = null;
    connect();
  }, delay);
}

function onFrame(frame) {
  switch (frame.type) {
    case "welcome":
      state.socketId = frame.socket_id;
      state.channels = Array.isArray(frame.channels) ? frame.channels.slice() : [];
      state.connected = true;
      // The back-off starts over only once a connection has proved stable (a server that
      // accepts and at once closes again must not be hammered).
      window.clearTimeout(state.stableTimer);
      state.stableTimer = window.setTimeout(() => {
        if (state.connected) state.attempt = 0;
      }, STABLE_AFTER_MS);
      setIndicator("online");
      state.extra.forEach((channel) => send({ action: "subscribe", channel }));
      // Ask for what was missed while disconnected (or since the page was rendered), except
      // what this tab caused itself with its previous socket (toOthers across a form post).
      if (state.lastId != null) {
        const resume = { action: "resume", last_id: state.lastId };
        const previous = previousSocketId();
        if (previous) resume.previous_socket_id = previous;
        send(resume);
      }
      rememberSocketId(frame.socket_id);
      document.dispatchEvent(new CustomEvent("notifications:connected", { detail: frame }));
      break;
    case "resumed":
      log("replay done");
      document.dispatchEvent(new CustomEvent("notifications:resumed", { detail: frame }));
      break;
    case "resync":
      // The gap is too old or too large to replay: the page reloads its lists instead.
      log("resync");
      document.dispatchEvent(new CustomEvent("notifications:resync", { detail: frame }));
      break;
    case "event":
      // Read state changed in one of this user's tabs: update the bell and lists, no toast.
      if (frame.event === "NotificationRead") {
        document.dispatchEvent(new CustomEvent("notifications:read", { detail: frame.data || {} }));
        break;
      }
      // A socket in several of an event's groups gets one frame per group: show it once.
      if (frame.id != null) {
        if (state.seen.has(frame.id)) return;
        state.seen.add(frame.id);
        if (state.seen.size > 500) state.seen.delete(state.seen.values().next().value);
        state.lastId = frame.id;
      }
      // Every listener (toasts, live feeds, page code) sees the page's language.
      frame.title = localized(frame, "title");
      frame.message = localized(frame, "message");
      showToast({
        event: frame.event,
        level: frame.level,
        title: frame.title,
        message: frame.message,
        at: frame.occurred_at,
      });
      document.dispatchEvent(new CustomEvent("notifications:event", { detail: frame }));
      break;
    case "subscribed":
      if (!state.channels.includes(frame.channel)) state.channels.push(frame.channel);
      break;
    case "unsubscribed":
      state.channels = state.channels.filter((c) => c !== frame.channel);
      break;
    case "error":
      if (frame.channel) state.extra.delete(frame.channel);
      console.warn("[notifications] server error", frame);
      break;
    default:
      break;
  }
  runHooks(frame);
}

function connect() {
  if (state.stopped) return;
  if (state.socket && state.socket.readyState <= WebSocket.OPEN) return; // exactly one per tab
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${window.location.host}${config.ws_path || "/ws/notifications/"}`;
  setIndicator("connecting");
  log("connect", url);
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.addEventListener("message", (message) => {
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      console.warn("[notifications] unparsable frame", message.data);
      return;
    }
    log("recv", message.data);
    onFrame(frame);
  });
  socket.addEventListener("close", (closeEvent) => {
    log("closed", closeEvent.code, closeEvent.reason);
    if (state.socket !== socket) return;
    state.socket = null;
    state.connected = false;
    state.socketId = null;
    setIndicator(FINAL_CLOSE_CODES.has(closeEvent.code) ? "offline" : "connecting");
    if (FINAL_CLOSE_CODES.has(closeEvent.code)) {
      state.stopped = true;
      sessionEnded(closeEvent.reason);
      return;
    }
    scheduleReconnect();
  });
}

// The socket was closed for good (signed out, suspended, deleted). Say why on the page the
// person is on: close frames carry a short reason at best (123 bytes; daphne sends none), so
// ask the API, which refuses a blocked session with the full reason the admin gave
// (`account_blocked`), and keep it on the page (#session-ended) until they leave it.
const SESSION_ENDED_DEFAULT = t("session_ended", "Your session ended. Reload the page to sign in again.");
async function blockedReason() {
  try {
    const response = await window.fetch("/api/notifications/unread-count/", {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (response.status !== 401 && response.status !== 403) return null;
    const body = await response.json();
    const error = body && body.error;
    return error && error.code === "account_blocked" && error.message ? error.message : null;
  } catch (error) {
    log("could not ask why the session ended", error);
    return null;
  }
}

async function sessionEnded(closeReason) {
  const reason = (await blockedReason()) || closeReason || SESSION_ENDED_DEFAULT;
  showToast({ event: "Disconnected", level: "error", title: t("stopped", "Live updates stopped"), message: reason });
  let banner = document.getElementById("session-ended");
  if (!banner) {
    banner = document.createElement("div");
    banner.id = "session-ended";
    banner.className = "alert alert-danger d-flex flex-wrap align-items-center gap-2";
    banner.setAttribute("role", "alert");
    const icon = document.createElement("i");
    icon.className = "bi bi-slash-circle";
    icon.setAttribute("aria-hidden", "true");
    const text = document.createElement("span");
    text.id = "session-ended-reason";
    text.className = "me-auto";
    const again = document.createElement("a");
    again.className = "btn btn-sm btn-outline-danger";
    again.href = `/accounts/login/?next=${encodeURIComponent(window.location.pathname)}`;
    again.textContent = t("sign_in_again", "Sign in again");
    banner.append(icon, text, again);
    const main = document.querySelector("main") || document.body;
    main.prepend(banner);
  }
  banner.querySelector("#session-ended-reason").textContent = reason;
}

// The network came back: try at once instead of waiting out the back-off.
window.addEventListener("online", () => {
  if (state.stopped || state.connected || !config.live) return;
  window.clearTimeout(state.timer);
  state.timer = null;
  state.attempt = 0;
  connect();
});

// Keep idle connections open through proxies, and notice dead ones.
function startPinger() {
  state.pinger = window.setInterval(() => send({ action: "ping" }), PING_EVERY_MS);
}

// ---------------------------------------------------------------- toOthers on own requests

// The acting tab gets its flash message; the server leaves this socket out of the events the
// request causes. Plain forms carry a hidden `socket_id`; fetches carry the X-Socket-ID header.
document.addEventListener(
  "submit",
  (submitEvent) => {
    const form = submitEvent.target;
    if (!(form instanceof HTMLFormElement)) return;
    if ((form.getAttribute("method") || "get").toLowerCase() === "post" && state.socketId) {
      let input = form.querySelector('input[name="socket_id"]');
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = "socket_id";
        form.append(input);
      }
      input.value = state.socketId;
    }
    if (submitEvent.defaultPrevented) return;
    // No double submit: the buttons go busy once the browser has taken the form data.
    if (form.dataset.submitting === "1") {
      submitEvent.preventDefault();
      return;
    }
    form.dataset.submitting = "1";
    form.setAttribute("aria-busy", "true");
    window.setTimeout(() => {
      form.querySelectorAll('button[type="submit"], input[type="submit"]').forEach((button) => {
        button.disabled = true;
        if (button.dataset.busyLabel) {
          button.dataset.idleLabel = button.textContent;
          const spinner = document.createElement("span");
          spinner.className = "spinner-border spinner-border-sm me-2";
          spinner.setAttribute("aria-hidden", "true");
          button.textContent = button.dataset.busyLabel;
          button.prepend(spinner);
        }
      });
      form.querySelectorAll("[data-busy-show]").forEach((el) => el.classList.remove("d-none"));
    }, 0);
  },
  true,
);

// Coming back with the Back button restores a page from the cache: make its forms usable again.
window.addEventListener("pageshow", (pageEvent) => {
  if (!pageEvent.persisted) return;
  document.querySelectorAll("form[data-submitting]").forEach((form) => {
    delete form.dataset.submitting;
    form.removeAttribute("aria-busy");
    form.querySelectorAll("button[disabled]").forEach((button) => {
      button.disabled = false;
      if (button.dataset.idleLabel) button.textContent = button.dataset.idleLabel;
    });
  });
});

/** fetch() that marks the request as this tab's own (X-Socket-ID). */
function ownFetch(input, init = {}) {
  const headers = new Headers(init.headers || {});
  if (state.socketId) headers.set("X-Socket-ID", state.socketId);
  headers.set("X-Requested-With", "XMLHttpRequest");
  return window.fetch(input, { credentials: "same-origin", ...init, headers });
}

// ---------------------------------------------------------------- live page hooks

// Elements with data-live-stats="<url>" hold [data-stat="<key>"] children refreshed from that
// JSON url when an event of one of the categories in data-live-categories arrives. Figures that
// go out of date with no event (the dashboard's "today" at the tenant's midnight) come with
// data-refresh-in="<seconds>" (and the JSON's refresh_in): the box re-reads them then, a
// second late so the server is past it. Seconds, not a time: the device's clock may be wrong.
function wireLiveStats() {
  document.querySelectorAll("[data-live-stats]").forEach((box) => {
    const categories = (box.dataset.liveCategories || "").split(/\s+/).filter(Boolean);
    let pending = null;
    let due = null; // Date.now() of the re-read refresh_in asked for (null: none asked)
    let timer = null;
    const refreshIn = (seconds) => {
      const value = Number(seconds);
      if (seconds == null || seconds === "" || !Number.isFinite(value) || value < 0) return;
      const delay = Math.min(value * 1000 + 1000, 2 ** 31 - 1); // (setTimeout's limit)
      window.clearTimeout(timer);
      due = Date.now() + delay;
      timer = window.setTimeout(refresh, delay);
    };
    const refresh = () => {
      pending = null;
      // a re-read at `due` that fails is tried again in a minute (the server away at midnight)
      const retry = () => { if (due !== null && Date.now() >= due) refreshIn(60); };
      ownFetch(box.dataset.liveStats, { headers: { Accept: "application/json" } })
        .then((response) => (response.ok ? response.json() : null))
        .then((stats) => {
          if (!stats) return retry();
          Object.entries(stats).forEach(([key, value]) => {
            box.querySelectorAll(`[data-stat="${key}"]`).forEach((el) => {
              el.textContent = String(value);
              el.dataset.value = String(value);
            });
          });
          box.dataset.refreshedAt = String(Date.now());
          refreshIn(stats.refresh_in);
        })
        .catch((error) => {
          log("stats refresh failed", error);
          retry();
        });
    };
    refreshIn(box.dataset.refreshIn);
    // A hidden tab's timers may run late or not at all: on its return, catch up.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && due !== null && Date.now() >= due) refresh();
    });
    document.addEventListener("notifications:event", ({ detail }) => {
      if (categories.length && !categories.includes(detail.category)) return;
      if (!pending) pending = window.setTimeout(refresh, 150);
    });
    document.addEventListener("notifications:resync", () => {
      if (!pending) pending = window.setTimeout(refresh, 150);
    });
  });
}

// Lists with data-live-feed get one <li> per event (text only), newest first.
function wireLiveFeeds() {
  document.querySelectorAll("[data-live-feed]").forEach((list) => {
    const channel = list.dataset.liveFeed;
    const limit = Number(list.dataset.limit || 50);
    document.addEventListener("notifications:event", ({ detail }) => {
      if (channel && channel !== "*" && detail.channel !== channel) return;
      if (detail.id != null && list.querySelector(`[data-event-id="${CSS.escape(String(detail.id))}"]`)) return;
      const item = document.createElement("li");
      item.className = "list-group-item";
      item.dataset.event = detail.event;
      item.dataset.level = detail.level || "info";
      if (detail.id != null) item.dataset.eventId = String(detail.id);
      const head = document.createElement("div");
      head.className = "d-flex justify-content-between gap-2";
      const title = document.createElement("strong");
      title.textContent = detail.title || detail.event;
      const when = document.createElement("small");
      when.className = "text-body-secondary text-nowrap";
      when.textContent = formatTime(detail.occurred_at);
      head.append(title, when);
      const text = document.createElement("div");
      text.className = "small";
      text.textContent = detail.message || "";
      item.append(head, text);
      list.querySelectorAll("[data-empty]").forEach((el) => el.remove());
      list.prepend(item);
      while (list.children.length > limit) list.lastElementChild.remove();
    });
    // Too much was missed to replay: say so at the top of the feed, with a reload link.
    document.addEventListener("notifications:resync", () => {
      if (list.querySelector("[data-resync]")) return;
      const item = document.createElement("li");
      item.className = "list-group-item list-group-item-warning small";
      item.dataset.resync = "1";
      const link = document.createElement("a");
      link.href = window.location.href;
      link.textContent = t("reload", "Reload");
      item.append(t("missed", "Some updates were missed while offline."), " ", link);
      list.prepend(item);
    });
  });
}

// Live lists, one mechanism for every table: a <tbody data-live-rows="payment_id"> holds
// server-rendered rows (<tr data-row-id="<id>">). An event whose payload names one of its
// objects (that field; data-live-events narrows the event names) re-fetches that row from the
// page's own URL with ?row=<id>, i.e. the same view, permissions and filter: 200 answers the
// row's HTML (escaped by Django's templates), which replaces the row in place (or, new and on
// the first page only, data-live-new="1", goes on top); 204 means the filter no longer shows
// it, and it leaves. What the user typed or focused in a row survives its refresh.
function parseRow(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  const row = template.content.firstElementChild;
  return row && row.matches("tr[data-row-id]") ? row : null;
}

function carryInput(from, to) {
  from.querySelectorAll("input[name], textarea[name], select[name]").forEach((field) => {
    if (["hidden", "checkbox", "radio", "submit", "button", "file"].includes(field.type)) return;
    const twin = to.querySelector(`[name="${CSS.escape(field.name)}"]`);
    if (!twin) return;
    if (field.value !== field.defaultValue || field === document.activeElement) {
      twin.value = field.value;
    }
  });
  const focused = document.activeElement;
  if (focused && from.contains(focused) && focused.name) {
    const twin = to.querySelector(`[name="${CSS.escape(focused.name)}"]`);
    if (twin && typeof focused.selectionStart === "number") {
      const [start, end] = [focused.selectionStart, focused.selectionEnd];
      return { el: twin, caret: () => twin.setSelectionRange(start, end) };
    }
    return twin ? { el: twin, caret: () => {} } : null;
  }
  return null;
}

// The list's count ("1–25 of 312 payments", partials/pagination.html) follows its rows: every
// row answer carries the filtered list's total (X-List-Total); the range is the rows shown.
function setListCount(body, total) {
  const scope = body.closest("main") || document;
  const counter = scope.querySelector("[data-page-count]");
  if (!counter || !/^\d+$/.test(total)) return;
  const count = Number(total);
  const shown = body.querySelectorAll("tr[data-row-id]").length;
  const start = Number(counter.dataset.start) || 1;
  const noun = counter.dataset.noun || "rows";
  counter.dataset.total = String(count);
  counter.textContent =
    count === 0 || shown === 0
      ? `${count} ${noun}`
      : `${t("list_range", "{start}–{end} of {count}", { start, end: start + shown - 1, count })} ${noun}`;
}

function wireLiveRows() {
  document.querySelectorAll("tbody[data-live-rows]").forEach((body) => {
    const key = body.dataset.liveRows;
    const names = new Set((body.dataset.liveEvents || "").split(/\s+/).filter(Boolean));
    const mayAdd = body.dataset.liveNew === "1";
    const limit = Number(body.dataset.liveLimit || 0);
    const latest = new Map(); // row id → sequence of its newest request (older answers lose)
    let sequence = 0;
    let countedBy = 0; // the request whose total the count shows (an older answer never wins)
    const rowOf = (id) => body.querySelector(`tr[data-row-id="${CSS.escape(id)}"]`);
    const refresh = (id) => {
      const url = new URL(window.location.href);
      url.searchParams.delete("page");
      url.searchParams.set("row", id);
      sequence += 1;
      const mine = sequence;
      latest.set(id, mine);
      ownFetch(url.pathname + url.search, { headers: { Accept: "text/html" } })
        .then(async (response) => {
          // How many row answers came back (tests wait on it rather than on time).
          body.dataset.answered = String(Number(body.dataset.answered || 0) + 1);
          const total = response.headers.get("X-List-Total");
          const count = () => {
            if (total === null || mine < countedBy) return;
            countedBy = mine;
            setListCount(body, total);
          };
          if (latest.get(id) !== mine) return count();
          const current = rowOf(id);
          if (response.status === 204) {
            if (current) current.remove();
            return count();
          }
          if (!response.ok) return;
          const fresh = parseRow(await response.text());
          if (!fresh || fresh.dataset.rowId !== id || latest.get(id) !== mine) return count();
          if (current) {
            const focusTo = carryInput(current, fresh);
            current.replaceWith(fresh);
            if (focusTo) {
              focusTo.el.focus({ preventScroll: true });
              focusTo.caret();
            }
          } else if (mayAdd) {
            body.querySelectorAll("tr[data-empty]").forEach((el) => el.remove());
            body.prepend(fresh);
            if (limit) {
              const rows = body.querySelectorAll("tr[data-row-id]");
              for (let i = limit; i < rows.length; i += 1) rows[i].remove();
            }
          } else {
            return count();
          }
          count();
          fresh.dataset.refreshedAt = String(Date.now());
          body.dataset.refreshedAt = String(Date.now());
        })
        .catch((error) => log("row refresh failed", id, error));
    };
    document.addEventListener("notifications:event", ({ detail }) => {
      if (names.size && !names.has(detail.event)) return;
      const value = detail.data ? detail.data[key] : null;
      if (value == null || !/^\d+$/.test(String(value))) return;
      refresh(String(value));
    });
    // Too much was missed to replay: re-read the rows on the page.
    document.addEventListener("notifications:resync", () => {
      body.querySelectorAll("tr[data-row-id]").forEach((row) => refresh(row.dataset.rowId));
    });
  });
}

// Buttons with data-reveal="<selector>" and data-reveal-url: a click reads the secret from that
// JSON url (field data-reveal-field) and shows it, as text, in the element; a second click hides
// it again (the masked text the page rendered comes back).
function wireReveal() {
  document.querySelectorAll("button[data-reveal][data-reveal-url]").forEach((button) => {
    const target = document.querySelector(button.dataset.reveal);
    if (!target) return;
    const masked = target.textContent;
    const label = button.textContent;
    button.setAttribute("aria-controls", target.id || "");
    button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", () => {
      if (target.dataset.masked !== "1") {
        target.textContent = masked;
        target.dataset.masked = "1";
        button.textContent = label;
        button.setAttribute("aria-expanded", "false");
        return;
      }
      button.disabled = true;
      ownFetch(button.dataset.revealUrl, { headers: { Accept: "application/json" } })
        .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
        .then((body) => {
          target.textContent = String(body[button.dataset.revealField || "value"] ?? "");
          target.dataset.masked = "0";
          button.textContent = "Hide";
          button.setAttribute("aria-expanded", "true");
        })
        .catch((error) => {
          log("reveal failed", error);
          showToast({ level: "error", title: "Not shown", message: "The secret could not be read." });
        })
        .finally(() => {
          button.disabled = false;
        });
    });
  });
}

// The bell: the unread count, +1 per new event, set by NotificationRead (any tab of this user).
function wireBell() {
  const badge = document.getElementById("notification-unread");
  const setCount = (value) => {
    if (!badge) return;
    const count = Math.max(0, Number(value) || 0);
    badge.textContent = String(count);
    badge.dataset.count = String(count);
    badge.classList.toggle("d-none", count === 0);
  };
  document.addEventListener("notifications:event", () => {
    if (badge) setCount(Number(badge.dataset.count || 0) + 1);
  });
  document.addEventListener("notifications:read", ({ detail }) => {
    if (Number.isInteger(detail.unread)) setCount(detail.unread);
    const ids = new Set((detail.ids || []).map(String));
    document.querySelectorAll("#inbox-list [data-event-id]").forEach((item) => {
      if (detail.all || ids.has(item.dataset.eventId)) {
        item.dataset.read = "1"; // app.css styles read and unread items by data-read
        item.classList.remove("fw-semibold");
      }
    });
  });
  document.addEventListener("notifications:resync", () => {
    ownFetch("/api/notifications/unread-count/", { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((body) => body && setCount(body.unread))
      .catch((error) => log("unread count refresh failed", error));
  });
}

// ---------------------------------------------------------------- presence (who is online)

// Roles' labels by value ("tenant_admin" → "Tenant admin"), from the server (#online-now).
let roleLabelCache = null;
function roleLabels() {
  if (roleLabelCache === null) {
    const source = document.querySelector("[data-role-labels]");
    try {
      roleLabelCache = JSON.parse(source?.dataset.roleLabels || "{}");
    } catch {
      roleLabelCache = {};
    }
  }
  return roleLabelCache;
}

// One person of a presence list: name (text only), "(you)", and the role (its label).
function memberItem(member, me) {
  const item = document.createElement("li");
  item.className = "list-group-item d-flex justify-content-between align-items-center gap-2";
  item.dataset.userId = String(member.id);
  const who = document.createElement("span");
  const name = document.createElement("span");
  name.className = "member-name";
  name.textContent = member.name || member.username || "";
  who.append(name);
  if (String(member.id) === me) {
    const you = document.createElement("small");
    you.className = "text-body-secondary";
    you.textContent = t("you", "(you)");
    who.append(" ", you);
  }
  const role = document.createElement("small");
  role.className = "text-body-secondary member-role";
  role.textContent = roleLabels()[member.role] || member.role || "";
  item.append(who, role);
  return item;
}

// #online-now (the tenant dashboard): the list from the "presence" frame, then member_added /
// member_removed; #online-count follows the frames' `online`.
function wireOnlineList() {
  const list = document.getElementById("online-now");
  if (!list || !list.dataset.presenceChannel) return;
  const channel = list.dataset.presenceChannel;
  const me = list.dataset.me || "";
  const badge = document.getElementById("online-count");
  const setCount = (value) => {
    if (!badge || !Number.isInteger(value)) return;
    badge.textContent = String(value);
    badge.dataset.count = String(value);
  };
  const sortList = () => {
    const items = Array.from(list.children);
    items.sort((a, b) => {
      const an = (a.querySelector(".member-name") || a).textContent.toLowerCase();
      const bn = (b.querySelector(".member-name") || b).textContent.toLowerCase();
      return an < bn ? -1 : an > bn ? 1 : Number(a.dataset.userId) - Number(b.dataset.userId);
    });
    list.append(...items);
  };
  const find = (id) => list.querySelector(`[data-user-id="${CSS.escape(String(id))}"]`);
  on("welcome", () => send({ action: "presence", channel }));
  on("presence", (frame) => {
    if (frame.channel !== channel || !Array.isArray(frame.members)) return;
    list.replaceChildren(...frame.members.map((member) => memberItem(member, me)));
    setCount(frame.online);
    list.dataset.refreshedAt = String(Date.now());
  });
  on("member_added", (frame) => {
    if (frame.channel !== channel || !frame.member) return;
    const item = memberItem(frame.member, me);
    const old = find(frame.member.id);
    if (old) old.replaceWith(item);
    else list.append(item);
    sortList();
    setCount(frame.online);
  });
  on("member_removed", (frame) => {
    if (frame.channel !== channel || !frame.member) return;
    const old = find(frame.member.id);
    if (old) old.remove();
    setCount(frame.online);
  });
}

// [data-online-tenant] cells (system admins' tenant list): counts per tenant, kept live.
function wireOnlineCounts() {
  const box = document.querySelector('[data-presence-channel="system.admin"]');
  if (!box) return;
  const setCell = (tenant, value) => {
    if (!Number.isInteger(value)) return;
    box.querySelectorAll(`[data-online-tenant="${CSS.escape(String(tenant))}"]`).forEach((cell) => {
      cell.textContent = String(value);
      cell.dataset.count = String(value);
    });
  };
  on("welcome", () => send({ action: "presence", channel: "system.admin" }));
  on("presence_counts", (frame) => {
    if (frame.channel !== "system.admin" || !frame.counts) return;
    Object.entries(frame.counts).forEach(([tenant, value]) => setCell(tenant, value));
  });
  on("presence_count", (frame) => setCell(frame.tenant, frame.online));
}

/** "A", "A and B", "A, B and C" */
function joinNames(names) {
  if (names.length <= 1) return names.join("");
  return t("names", "{first} and {last}", { first: names.slice(0, -1).join(", "), last: names[names.length - 1] });
}

// #viewers-notice (a record's edit page): who else has the same record open, from "viewers".
function wireViewersNotice() {
  const notice = document.getElementById("viewers-notice");
  if (!notice || !notice.dataset.viewRecord) return;
  const record = notice.dataset.viewRecord;
  const kind = record.split(".")[0] || "record";
  const noun = t(`noun_${kind}`, kind);
  on("welcome", () => send({ action: "view", record }));
  on("viewers", (frame) => {
    if (frame.record !== record || !Array.isArray(frame.viewers)) return;
    const names = frame.viewers.map((viewer) => {
      const name = viewer.name || viewer.username || t("someone", "Someone");
      return viewer.username && viewer.username !== name ? `${name} (${viewer.username})` : name;
    });
    notice.textContent = names.length
      ? t(
          names.length === 1 ? "editing_one" : "editing_many",
          names.length === 1 ? "{names} is also editing this {noun}." : "{names} are also editing this {noun}.",
          { names: joinNames(names), noun },
        )
      : "";
    notice.dataset.viewers = frame.viewers.map((viewer) => String(viewer.id)).join(" ");
    notice.hidden = names.length === 0;
  });
}

wireLiveStats();
wireLiveFeeds();
wireLiveRows();
wireReveal();
wireBell();
wireOnlineList();
wireOnlineCounts();
wireViewersNotice();

// ---------------------------------------------------------------- console API

const api = {
  isConnected: () => state.connected,
  get channels() {
    return state.channels.slice();
  },
  get socketId() {
    return state.socketId;
  },
  get lastEventId() {
    return state.lastId;
  },
  subscribe(channel) {
    state.extra.add(channel);
    send({ action: "subscribe", channel });
  },
  unsubscribe(channel) {
    state.extra.delete(channel);
    send({ action: "unsubscribe", channel });
  },
  toast: showToast,
  fetch: ownFetch,
  /** on(frameType, handler): run handler(frame) for every frame of that type. */
  on,
  /** send(frame): send a frame on the tab's socket now; false when it is not open. */
  send,
};

if (!window.notifications) {
  window.notifications = api;
  if (config.live && "WebSocket" in window) {
    connect();
    startPinger();
  } else {
    setIndicator("offline");
  }
}

export default api;
