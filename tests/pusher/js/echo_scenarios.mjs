// Drives the real laravel-echo + pusher-js against a live server (run by tests/pusher/test_echo.py).
// Env: BASE (http://127.0.0.1:<port>), PUSHER_KEY, PASSWORD, FIRE (JSON argv that fires
// `SystemNotification --tenant acme` through manage.py). Prints one JSON result line and exits.
// The server runs with PUSHER_CLIENT_EVENTS=1 (whispers).
import { execFileSync } from "node:child_process";
import Echo from "laravel-echo";
import Pusher from "pusher-js";

const { BASE, PUSHER_KEY, PASSWORD } = process.env;
const FIRE = JSON.parse(process.env.FIRE);
const url = new URL(BASE);
const results = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(path, { token, method = "GET", body, socketId } = {}) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (socketId) headers["X-Socket-ID"] = socketId;
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

async function login(username) {
  const { access } = await api("/api/auth/token/", {
    method: "POST",
    body: { username, password: PASSWORD },
  });
  const me = await api("/api/users/me/", { token: access });
  return { token: access, me };
}

function echoFor(token) {
  return new Echo({
    broadcaster: "pusher",
    Pusher,
    key: PUSHER_KEY,
    cluster: "mt1",
    wsHost: url.hostname,
    wsPort: Number(url.port),
    forceTLS: false,
    enabledTransports: ["ws"],
    disableStats: true,
    authEndpoint: `${BASE}/broadcasting/auth`,
    auth: { headers: { Authorization: `Bearer ${token}` } },
  });
}

function subscribe(echo, name, received) {
  return new Promise((resolve) => {
    const channel = echo.private(name);
    channel.listen(".SystemNotification", (e) => received.push(["SystemNotification", e]));
    channel.listen(".UserCreated", (e) => received.push(["UserCreated", e]));
    channel.subscribed(() => resolve({ ok: true }));
    channel.error((error) => resolve({ ok: false, error }));
  });
}

async function until(check, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await sleep(50);
  }
  return false;
}

const acme = await login("acme-admin");
const beta = await login("beta-admin");
const tenantA = acme.me.tenant;
const tenantB = beta.me.tenant;

// 1. Echo subscribes to private-tenant.<acme> via /broadcasting/auth with a bearer token.
const a1 = echoFor(acme.token);
const a2 = echoFor(acme.token);
const b1 = echoFor(beta.token);
const gotA1 = [], gotA2 = [], gotB1 = [];
results.subscribeA1 = await subscribe(a1, `tenant.${tenantA}`, gotA1);
results.subscribeA2 = await subscribe(a2, `tenant.${tenantA}`, gotA2);
results.subscribeB1 = await subscribe(b1, `tenant.${tenantB}`, gotB1);
results.socketIdForm = /^\d+\.\d+$/.test(a1.socketId());

// 2. A forbidden channel (another tenant's) fails with a subscription error.
const forbidden = await subscribe(a1, `tenant.${tenantB}`, []);
results.forbidden = { ok: forbidden.ok, status: forbidden.error && forbidden.error.status };

// 3. An event fired by `manage.py fire_event` reaches acme's sockets, not beta's.
execFileSync(FIRE[0], FIRE.slice(1), { stdio: "inherit" });
results.firedReceived = await until(() => gotA1.length > 0 && gotA2.length > 0);
await sleep(500);
results.fired = gotA1.map(([name, e]) => [name, e.channel, e.title]);
results.betaReceived = gotB1.length;

// 4. toOthers: an API write with a1's socket id reaches a2 only.
gotA1.length = 0;
gotA2.length = 0;
const username = `echo-${Date.now()}`;
await api("/api/users/", {
  token: acme.token,
  method: "POST",
  socketId: a1.socketId(),
  body: { username, password: "Echo-test-pw-42!x", role: "staff" },
});
results.toOthersA2 = await until(() => gotA2.some(([n]) => n === "UserCreated"));
await sleep(500);
results.toOthersA1 = gotA1.filter(([n]) => n === "UserCreated").length;
results.toOthersB1 = gotB1.length;
results.userCreatedData = gotA2.filter(([n]) => n === "UserCreated").map(([, e]) => e.data);

// 5. Presence: Echo.join("tenant.<id>") → presence-tenant.<id>; here / joining / leaving.
function join(echo, name, log) {
  return new Promise((resolve) => {
    const channel = echo.join(name);
    channel.here((members) => {
      log.here = members.map((m) => m.username).sort();
      resolve({ ok: true });
    });
    channel.joining((m) => log.joining.push(m.username));
    channel.leaving((m) => log.leaving.push(m.username));
    channel.listenForWhisper("typing", (e) => log.whispers.push(e));
    channel.error((error) => resolve({ ok: false, status: error && error.status }));
  });
}
const newLog = () => ({ here: null, joining: [], leaving: [], whispers: [] });
const staff = await login("acme-staff");
const p1 = echoFor(acme.token), p2 = echoFor(staff.token), p3 = echoFor(acme.token);
const pb = echoFor(beta.token);
const logP1 = newLog(), logP2 = newLog(), logP3 = newLog(), logPB = newLog();
const presence = `tenant.${tenantA}`;
results.joinP1 = await join(p1, presence, logP1);
results.hereP1 = logP1.here;
results.joinPB = await join(pb, `tenant.${tenantB}`, logPB);
results.joinP2 = await join(p2, presence, logP2);
results.hereP2 = logP2.here;
results.joiningP1 = (await until(() => logP1.joining.length > 0)) && logP1.joining.slice();
// A second socket of the same person is not a second member.
results.joinP3 = await join(p3, presence, logP3);
results.hereP3 = logP3.here;
results.forbiddenPresence = await join(p1, `tenant.${tenantB}`, newLog());

// 6. Whisper (client events): reaches the others on the channel, not the sender nor beta.
p2.join(presence).whisper("typing", { name: "acme-staff" });
results.whisperP1 = await until(() => logP1.whispers.length > 0 && logP3.whispers.length > 0);
await sleep(500);
results.whispers = {
  p1: logP1.whispers,
  p2: logP2.whispers.length,
  p3: logP3.whispers.length,
  pb: logPB.whispers.length,
};

// 7. Leaving: the staff member leaves → leaving on the others; the admin's second socket
// leaves → nothing (still online on p1).
p2.leave(presence);
results.leavingP1 = (await until(() => logP1.leaving.length > 0)) && logP1.leaving.slice();
p3.disconnect();
await sleep(500);
results.joiningP1After = logP1.joining.slice();
results.leavingP1After = logP1.leaving.slice();
results.leavingPB = logPB.leaving.length;

for (const echo of [a1, a2, b1, p1, p2, pb]) echo.disconnect();
console.log("RESULT " + JSON.stringify(results));
process.exit(0);
