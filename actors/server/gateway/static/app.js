// The chat page: sign-in, rooms, messages, presence, typing and live updates over the
// gateway's WebSocket protocol (docs/protocol.md). Plain ES module, no dependencies.
//
// Every piece of user data reaches the DOM as text (textContent / text nodes), never as HTML.

// The one rule of user ids and room names (actors.messages.IDENTIFIER_PATTERN); a test checks
// that both say the same.
const IDENTIFIER_RULE = /^[A-Za-z0-9_.-]{1,64}$/;
const NAME_RULE = IDENTIFIER_RULE;
const ROOM_RULE = IDENTIFIER_RULE;
// The server's mention rule (actors/server/gateway/_session.py), without a look-behind.
const MENTION = /(^|[^A-Za-z0-9_@])@([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)/g;
const URL_RE = /\bhttps?:\/\/[^\s<>"']+/g;

const TYPING_SEND_INTERVAL = 2000; // send `typing` at most this often
const TYPING_SHOW_FOR = 4000; // a user's indicator lasts this long after their last frame
const BACKOFF_FIRST = 500;
const BACKOFF_MAX = 10000;
const STATS_STALE = 15000;
const GROUP_WINDOW = 5 * 60; // seconds: messages of one author this close share a header
const MAX_MESSAGES_PER_ROOM = 500;
const PING_EVERY = 25000;
const PING_TIMEOUT = 10000;
const WELCOME_TIMEOUT = 15000;
const TOAST_MS = 6000;

const STORE = "actors-chat";
const store = {
  get(key) {
    try { return localStorage.getItem(`${STORE}.${key}`); } catch { return null; }
  },
  set(key, value) {
    try { localStorage.setItem(`${STORE}.${key}`, value); } catch { /* private mode */ }
  },
  remove(key) {
    try { localStorage.removeItem(`${STORE}.${key}`); } catch { /* private mode */ }
  },
};

// --- DOM helpers -------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";

/** h("div", {class: "x", dataset: {testid: "y"}}, child, "text") — text children are text nodes. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

function icon(name, cls) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("aria-hidden", "true");
  if (cls) svg.setAttribute("class", cls);
  const use = document.createElementNS(SVG_NS, "use");
  use.setAttribute("href", `#i-${name}`);
  svg.append(use);
  return svg;
}

function hueOf(name) {
  let hash = 0;
  for (let i = 0; i < name.length; i++) hash = (hash * 31 + name.charCodeAt(i)) >>> 0;
  return hash % 360;
}

function avatar(name, cls = "avatar") {
  const el = h("span", { class: cls, "aria-hidden": "true" }, (name[0] || "?").toUpperCase());
  el.style.setProperty("--hue", String(hueOf(name)));
  return el;
}

const pad = (n) => String(n).padStart(2, "0");
const clock = (seconds) => {
  const d = new Date(seconds * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
const dayKey = (seconds) => {
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
};
function dayLabel(seconds) {
  const d = new Date(seconds * 1000);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(seconds) === dayKey(today.getTime() / 1000)) return "Today";
  if (dayKey(seconds) === dayKey(yesterday.getTime() / 1000)) return "Yesterday";
  return d.toLocaleDateString(undefined, {
    weekday: "long", month: "long", day: "numeric",
    year: d.getFullYear() === today.getFullYear() ? undefined : "numeric",
  });
}
const fullTime = (seconds) => new Date(seconds * 1000).toLocaleString();
const chars = (text) => Array.from(text).length; // code points, as the server counts

function listNames(names) {
  if (names.length <= 1) return names.join("");
  if (names.length === 2) return `${names[0]} and ${names[1]}`;
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

// --- state -------------------------------------------------------------------------------

const state = {
  userId: null, // the signed-in name
  token: null,
  tokenExpiresAt: 0,
  ws: null,
  conn: "offline", // connected | connecting | reconnecting | offline
  everConnected: false, // a welcome was seen since sign-in
  attempt: 0, // reconnect attempts since the last welcome
  reconnectAt: 0,
  reconnectTimer: null,
  freshTokenTried: false,
  sessionId: null,
  suggested: [], // welcome.rooms
  maxTextLength: 2000,
  maxFrameBytes: 16384,
  rooms: new Map(), // name -> Room
  order: [], // room names as listed in the sidebar
  active: null,
  online: new Set(),
  onlineKnown: false,
  stats: new Map(), // server -> {event, at}
  refs: new Map(), // ref -> {kind, room, pendingId?}
  pending: [], // own messages on their way: {id, ref, room, text, status, error}
  notificationsAt: null, // {epoch, offset} of the last notification: said in hello on a reconnect
  nextRef: 1,
  lastTypingSent: new Map(), // room -> ms
  hiddenUnread: 0,
};

function room(name) {
  let r = state.rooms.get(name);
  if (!r) {
    r = {
      name,
      wanted: false, // the user wants to be in it (joined, or to rejoin)
      joined: false, // the server said `joined` on this connection
      joining: false,
      leaving: false,
      loaded: false, // history received at least once
      position: null, // {epoch, offset} of the last message held: sent on a rejoin
      messages: [],
      unread: 0,
      mentions: 0,
      lastReadAt: 0,
      members: new Set(),
      membersKnown: false,
      typing: new Map(), // user -> timeout id
    };
    state.rooms.set(name, r);
  }
  if (!state.order.includes(name)) state.order.push(name);
  return r;
}

const newRef = (prefix) => `${prefix}-${state.nextRef++}`;

function persistRooms() {
  if (!state.userId) return;
  const wanted = state.order.filter((n) => state.rooms.get(n)?.wanted);
  store.set(`rooms.${state.userId}`, JSON.stringify(wanted));
  if (state.active) store.set(`active.${state.userId}`, state.active);
}

function savedRooms(user) {
  try {
    const value = JSON.parse(store.get(`rooms.${user}`));
    return Array.isArray(value) ? value.filter((n) => typeof n === "string" && ROOM_RULE.test(n)) : null;
  } catch {
    return null;
  }
}

// --- the socket --------------------------------------------------------------------------

let pingTimer = null;
let pongDeadline = null;
let welcomeTimer = null;

function socketUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
}

function send(frame) {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  const text = JSON.stringify(frame);
  if (new TextEncoder().encode(text).length > state.maxFrameBytes) return "too_big";
  ws.send(text);
  return true;
}

async function fetchToken(name) {
  // Returns {ok, token...} | {ok: false, status, error}
  let response;
  try {
    response = await fetch("/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name }),
      cache: "no-store",
    });
  } catch {
    return { ok: false, status: 0, error: "The server can't be reached. Check your connection and try again." };
  }
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (response.ok && body && typeof body.token === "string") {
    return { ok: true, token: body.token, userId: body.user_id, expiresAt: Number(body.expires_at) || 0 };
  }
  const error = body && typeof body.error === "string" ? body.error : `The server answered ${response.status}.`;
  return { ok: false, status: response.status, error };
}

function tokenUsable() {
  return state.token && (!state.tokenExpiresAt || state.tokenExpiresAt * 1000 - Date.now() > 30000);
}

async function connect() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  if (!state.userId || state.ws) return;
  if (navigator.onLine === false) {
    setConn("offline");
    return;
  }
  setConn(state.everConnected ? "reconnecting" : "connecting");
  const user = state.userId;
  if (!tokenUsable()) {
    const answer = await fetchToken(user);
    if (state.userId !== user || state.ws) return; // signed out meanwhile
    if (!answer.ok) {
      if (answer.status >= 400 && answer.status < 500) {
        backToSignIn(answer.error);
      } else {
        scheduleReconnect();
      }
      return;
    }
    state.token = answer.token;
    state.tokenExpiresAt = answer.expiresAt;
  }
  openSocket();
}

function openSocket() {
  let ws;
  try {
    ws = new WebSocket(socketUrl());
  } catch {
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  window.__chat.socket = ws;
  clearTimeout(welcomeTimer);
  welcomeTimer = setTimeout(() => {
    if (state.ws === ws && state.conn !== "connected") dropSocket(ws, 4000);
  }, WELCOME_TIMEOUT);
  ws.addEventListener("open", () => {
    if (state.ws !== ws) return;
    const hello = { type: "hello", token: state.token };
    // Back after a drop: the notifications sent meanwhile come first.
    if (state.notificationsAt) {
      hello.notifications_epoch = state.notificationsAt.epoch;
      hello.notifications_offset = state.notificationsAt.offset;
    }
    ws.send(JSON.stringify(hello));
  });
  ws.addEventListener("message", (event) => {
    if (state.ws !== ws) return;
    pongDeadline = null;
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame && typeof frame === "object") handleFrame(frame);
  });
  ws.addEventListener("close", (event) => {
    if (state.ws !== ws) return;
    onSocketClosed(event.code, event.reason);
  });
}

/** Give up on a socket now (a dead one may take long to report its close). */
function dropSocket(ws, code) {
  if (state.ws !== ws) return;
  try { ws.close(); } catch { /* already closing */ }
  onSocketClosed(code, "");
}

function onSocketClosed(code, reason) {
  state.ws = null;
  clearTimeout(welcomeTimer);
  clearInterval(pingTimer);
  pingTimer = null;
  for (const r of state.rooms.values()) {
    r.joined = false;
    r.joining = false;
    for (const timer of r.typing.values()) clearTimeout(timer);
    r.typing.clear();
  }
  for (const p of state.pending) {
    if (p.status === "sending") {
      p.status = "failed";
      p.error = "Not sent: the connection was lost.";
    }
  }
  state.refs.clear();
  for (const r of [...state.rooms.values()]) if (r.leaving) forgetRoom(r.name); // left with the socket
  renderAll();
  if (!state.userId) return; // signed out
  if (code === 4001) {
    // The token was refused: get a new one, once.
    state.token = null;
    if (!state.freshTokenTried) {
      state.freshTokenTried = true;
      connect();
    } else {
      backToSignIn(reason ? `The server refused the session: ${reason}` : "The server refused the session. Please sign in again.");
    }
    return;
  }
  scheduleReconnect();
}

function scheduleReconnect() {
  clearTimeout(state.reconnectTimer);
  if (!state.userId) return;
  if (navigator.onLine === false) {
    setConn("offline");
    return;
  }
  const base = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** state.attempt);
  const delay = Math.min(BACKOFF_MAX, base * (0.75 + Math.random() * 0.5));
  state.attempt += 1;
  state.reconnectAt = Date.now() + delay;
  state.reconnectTimer = setTimeout(connect, delay);
  setConn(state.everConnected ? "reconnecting" : "connecting");
}

function reconnectNow() {
  if (!state.userId || state.ws) return;
  state.attempt = 0;
  connect();
}

function startPings() {
  clearInterval(pingTimer);
  pingTimer = setInterval(() => {
    const ws = state.ws;
    if (!ws || state.conn !== "connected") return;
    if (pongDeadline && Date.now() > pongDeadline) {
      dropSocket(ws, 4004);
      return;
    }
    if (!pongDeadline) {
      send({ type: "ping", ref: newRef("p") });
      pongDeadline = Date.now() + PING_TIMEOUT;
      setTimeout(() => {
        if (state.ws === ws && pongDeadline && Date.now() > pongDeadline) dropSocket(ws, 4004);
      }, PING_TIMEOUT + 50);
    }
  }, PING_EVERY);
}

// --- frames from the server --------------------------------------------------------------

function handleFrame(frame) {
  switch (frame.type) {
    case "welcome": return onWelcome(frame);
    case "joined": return onJoined(frame.room, frame.history, false, frame);
    case "history": return onJoined(frame.room, frame.messages, true);
    case "left": return onLeft(frame.room);
    case "message": return onMessage(frame);
    case "ack": return onAck(frame);
    case "typing": return onTyping(frame.room, frame.user_id);
    case "presence_state": return onPresence(frame.scope, frame.users, null, true);
    case "presence_diff": return onPresence(frame.scope, frame.joined, frame.left, false);
    case "notification": return onNotification(frame);
    case "update": return onUpdate(frame.event);
    case "error": return onError(frame);
    case "pong": return undefined;
    default: return undefined;
  }
}

function onWelcome(frame) {
  clearTimeout(welcomeTimer);
  const first = !state.everConnected;
  state.everConnected = true;
  state.attempt = 0;
  state.freshTokenTried = false;
  state.sessionId = frame.session_id;
  if (typeof frame.user_id === "string") state.userId = frame.user_id;
  if (Number.isInteger(frame.max_text_length)) state.maxTextLength = frame.max_text_length;
  if (Number.isInteger(frame.max_frame_bytes)) state.maxFrameBytes = frame.max_frame_bytes;
  state.suggested = Array.isArray(frame.rooms) ? frame.rooms.filter((n) => ROOM_RULE.test(n)) : [];
  for (const name of state.suggested) room(name);
  // Suggested rooms first, in the server's order, then the others as they came.
  state.order = [...state.suggested, ...state.order.filter((n) => !state.suggested.includes(n))];

  if (first) {
    const saved = savedRooms(state.userId);
    const wanted = saved ?? (state.suggested.length ? [state.suggested[0]] : []);
    for (const name of wanted) room(name).wanted = true;
    const active = store.get(`active.${state.userId}`);
    state.active = wanted.includes(active) ? active : (wanted[0] ?? null);
  }
  setConn("connected");
  startPings();
  for (const name of state.order) {
    const r = state.rooms.get(name);
    if (r.wanted) sendJoin(name);
  }
  persistRooms();
  renderAll();
}

function sendJoin(name) {
  const r = room(name);
  r.wanted = true;
  r.leaving = false;
  r.joining = true;
  const ref = newRef("j");
  state.refs.set(ref, { kind: "join", room: name });
  const frame = { type: "join", room: name, ref };
  // Rejoining: say where we are, and the server sends exactly what came since.
  if (r.loaded && r.position) Object.assign(frame, r.position);
  if (!send(frame)) r.joining = false;
}

/** A position from a frame ({epoch, offset}), or null. */
function positionOf(frame) {
  return frame && typeof frame.epoch === "string" && Number.isInteger(frame.offset)
    ? { epoch: frame.epoch, offset: frame.offset }
    : null;
}

/** Whether a message at `at` is one the room holds already (same epoch, not past it). */
function heldAlready(r, at) {
  return Boolean(at && r.position && r.position.epoch === at.epoch && at.offset <= r.position.offset);
}

function onJoined(name, history, isHistoryAnswer = false, frame = null) {
  if (typeof name !== "string") return;
  const existing = state.rooms.get(name);
  if (!isHistoryAnswer && existing && existing.leaving) {
    existing.joined = true; // a leave is on its way: its `left` will follow
    existing.joining = false;
    return;
  }
  if (!existing && isHistoryAnswer) return;
  const r = room(name);
  if (!isHistoryAnswer) {
    r.joined = true;
    r.joining = false;
    r.wanted = true;
    r.membersKnown = false;
  }
  const messages = Array.isArray(history) ? history.filter(validMessage) : [];
  const hadLoaded = r.loaded;
  if (frame && frame.resumed === true && hadLoaded) {
    // What came while we were away, after what we hold: appended, each once.
    for (const m of messages) {
      const at = positionOf(m);
      if (heldAlready(r, at)) continue;
      insertMessage(r, { room: name, user_id: m.user_id, text: m.text, sent_at: m.sent_at });
      if (at) r.position = at;
    }
  } else {
    r.messages = messages.slice(-MAX_MESSAGES_PER_ROOM);
  }
  if (frame) r.position = positionOf(frame) ?? r.position;
  r.loaded = true;
  const last = r.messages[r.messages.length - 1];
  if (!hadLoaded || name === state.active) {
    r.lastReadAt = last ? last.sent_at : 0;
    r.unread = 0;
  } else {
    // Back after a reconnect: what came meanwhile is unread.
    r.unread = r.messages.filter((m) => m.sent_at > r.lastReadAt && m.user_id !== state.userId).length;
  }
  // Messages echoed in the history are no longer pending.
  for (const m of r.messages) settlePending(m);
  if (!state.active) state.active = name;
  persistRooms();
  renderRooms();
  if (name === state.active) renderRoom({ keepScroll: false });
  renderTitle();
}

function validMessage(m) {
  return m && typeof m.user_id === "string" && typeof m.text === "string" && typeof m.sent_at === "number";
}

function onLeft(name) {
  const r = state.rooms.get(name);
  if (!r) return;
  r.joined = false;
  r.joining = false;
  if (r.leaving || !r.wanted) {
    forgetRoom(name);
  } else if (state.conn === "connected") {
    // The server dropped us from the room (its hub ended): we still want it.
    setTimeout(() => { if (r.wanted && !r.joined && !r.joining && state.conn === "connected") sendJoin(name); }, 1000);
  }
  renderAll();
}

function forgetRoom(name) {
  const r = state.rooms.get(name);
  if (!r) return;
  r.wanted = false;
  r.leaving = false;
  r.joined = false;
  r.loaded = false;
  r.messages = [];
  r.unread = 0;
  r.mentions = 0;
  r.members.clear();
  r.membersKnown = false;
  for (const timer of r.typing.values()) clearTimeout(timer);
  r.typing.clear();
  state.pending = state.pending.filter((p) => p.room !== name);
  if (!state.suggested.includes(name)) {
    state.rooms.delete(name);
    state.order = state.order.filter((n) => n !== name);
  }
  if (state.active === name) {
    state.active = state.order.find((n) => state.rooms.get(n)?.wanted) ?? null;
  }
  persistRooms();
}

function onMessage(m) {
  if (!validMessage(m) || typeof m.room !== "string") return;
  const r = state.rooms.get(m.room);
  if (!r || !r.wanted) return;
  const at = positionOf(m);
  if (heldAlready(r, at)) return;
  if (at) r.position = at;
  // Already there (an ack may have put it in first)?
  const tail = r.messages.slice(-30);
  if (tail.some((x) => x.sent_at === m.sent_at && x.user_id === m.user_id && x.text === m.text)) return;
  const msg = { room: m.room, user_id: m.user_id, text: m.text, sent_at: m.sent_at };
  insertMessage(r, msg);
  settlePending(msg);
  clearTyping(r, m.user_id);
  const own = m.user_id === state.userId;
  if (m.room === state.active && !document.hidden) {
    r.lastReadAt = Math.max(r.lastReadAt, m.sent_at);
  } else if (!own) {
    if (m.room === state.active) state.hiddenUnread += 1;
    else {
      r.unread += 1;
      if (mentionsMe(m.text)) r.mentions += 1;
    }
  }
  if (m.room === state.active) appendToView(r, msg, own);
  renderRooms();
  renderTitle();
}

function insertMessage(r, msg) {
  const list = r.messages;
  let i = list.length;
  while (i > 0 && list[i - 1].sent_at > msg.sent_at) i -= 1;
  list.splice(i, 0, msg);
  if (list.length > MAX_MESSAGES_PER_ROOM) list.splice(0, list.length - MAX_MESSAGES_PER_ROOM);
  return i === list.length - 1;
}

/** A message of ours came back: the matching pending one is done. */
function settlePending(msg) {
  if (msg.user_id !== state.userId) return;
  const index = state.pending.findIndex((p) => p.room === msg.room && p.text === msg.text && p.status !== "failed");
  if (index >= 0) {
    const [p] = state.pending.splice(index, 1);
    if (p.ref) state.refs.delete(p.ref);
    if (msg.room === state.active) renderPending();
  }
}

function onAck(frame) {
  const entry = state.refs.get(frame.ref);
  if (!entry) return;
  state.refs.delete(frame.ref);
  if (entry.kind !== "say") return;
  const p = state.pending.find((x) => x.id === entry.pendingId);
  if (!p) return;
  // Published: show it as sent now; the echoed `message` will be recognised by sent_at.
  const r = state.rooms.get(p.room);
  state.pending = state.pending.filter((x) => x !== p);
  if (r && typeof frame.sent_at === "number") {
    onMessage({ room: p.room, user_id: state.userId, text: p.text, sent_at: frame.sent_at });
  }
  if (p.room === state.active) renderPending();
}

function onTyping(name, user) {
  if (typeof user !== "string" || user === state.userId) return;
  const r = state.rooms.get(name);
  if (!r || !r.joined) return;
  clearTimeout(r.typing.get(user));
  r.typing.set(user, setTimeout(() => {
    r.typing.delete(user);
    if (name === state.active) renderTyping();
  }, TYPING_SHOW_FOR));
  if (name === state.active) renderTyping();
}

function clearTyping(r, user) {
  if (!r.typing.has(user)) return;
  clearTimeout(r.typing.get(user));
  r.typing.delete(user);
  if (r.name === state.active) renderTyping();
}

function onPresence(scope, joined, left, isState) {
  if (typeof scope !== "string") return;
  const users = Array.isArray(joined) ? joined.filter((u) => typeof u === "string") : [];
  const gone = Array.isArray(left) ? left.filter((u) => typeof u === "string") : [];
  // Note: "global" is the global scope; a room of that name cannot be told apart (see report).
  let set;
  if (scope === "global") {
    if (isState) { state.online = new Set(); state.onlineKnown = true; }
    set = state.online;
  } else {
    const r = state.rooms.get(scope);
    if (!r) return;
    if (isState) { r.members = new Set(); r.membersKnown = true; }
    set = r.members;
  }
  for (const u of users) set.add(u);
  for (const u of gone) set.delete(u);
  if (scope === "global") renderOnline();
  else if (scope === state.active) renderMembers();
}

function onNotification(n) {
  const at = positionOf(n);
  if (at) {
    const last = state.notificationsAt;
    if (last && last.epoch === at.epoch && at.offset <= last.offset) return; // had it
    state.notificationsAt = at;
  }
  const mention = n.kind === "mention";
  const data = n.data && typeof n.data === "object" ? n.data : null;
  const target = data && typeof data.room === "string" ? data.room : null;
  toast({
    kind: mention ? "mention" : "info",
    title: typeof n.title === "string" ? n.title : "Notification",
    body: typeof n.body === "string" ? n.body : "",
    duration: mention ? 8000 : TOAST_MS,
    onClick: target && state.rooms.get(target)?.wanted ? () => activate(target) : null,
  });
}

function onUpdate(event) {
  if (!event || typeof event !== "object") return;
  if (event.type === "server_stats" && typeof event.server === "string") {
    state.stats.set(event.server, { event, at: Date.now() });
    renderStats();
  }
}

const ERROR_TEXT = {
  rate_limited: "You're sending messages too fast. Wait a moment and try again.",
  invalid_text: "That message can't be sent.",
  not_joined: "You're not in that room.",
  invalid_room: "That room name isn't allowed.",
  too_many_rooms: "You're in too many rooms. Leave one first.",
  unavailable: "The server couldn't do that right now. Try again.",
};

function onError(frame) {
  const code = String(frame.code || "error");
  const message = typeof frame.message === "string" ? frame.message : "";
  const entry = frame.ref ? state.refs.get(frame.ref) : null;
  if (entry) state.refs.delete(frame.ref);
  if (entry?.kind === "say") {
    const p = state.pending.find((x) => x.id === entry.pendingId);
    const why = code === "rate_limited" || code === "unavailable" ? ERROR_TEXT[code] : (message || ERROR_TEXT[code] || code);
    if (p) {
      p.status = "failed";
      p.error = code === "rate_limited" ? "Not sent: too fast." : "Not sent.";
      p.detail = why;
      if (p.room === state.active) renderPending();
    }
    toast({ kind: "error", title: code === "rate_limited" ? "Slow down" : "Message not sent", body: why, code });
    return;
  }
  if (entry?.kind === "join") {
    const r = state.rooms.get(entry.room);
    if (r) {
      r.joining = false;
      if (code === "unavailable" && r.wanted) {
        setTimeout(() => { if (r.wanted && !r.joined && state.conn === "connected") sendJoin(r.name); }, 2000);
      } else if (!r.joined) {
        forgetRoom(entry.room);
      }
    }
    toast({ kind: "error", title: `Couldn't join #${entry.room}`, body: ERROR_TEXT[code] || message, code });
    renderAll();
    return;
  }
  if (entry?.kind === "leave") {
    forgetRoom(entry.room);
    renderAll();
    return;
  }
  if (code === "not_joined" && !frame.ref) return; // a typing notice racing a leave
  toast({ kind: "error", title: "Refused by the server", body: message || code, code });
}

// --- user actions ------------------------------------------------------------------------

function activate(name) {
  const r = state.rooms.get(name);
  if (!r) return;
  if (!r.wanted) {
    if (state.conn !== "connected") {
      toast({ kind: "error", title: "Not connected", body: "Rooms can be joined once the connection is back." });
      return;
    }
    sendJoin(name);
  }
  state.active = name;
  r.unread = 0;
  r.mentions = 0;
  const last = r.messages[r.messages.length - 1];
  if (last) r.lastReadAt = Math.max(r.lastReadAt, last.sent_at);
  persistRooms();
  closeDrawer();
  renderAll();
  $("composer").focus({ preventScroll: true });
}

function joinByName(raw) {
  const name = raw.trim().replace(/^#/, "");
  const error = $("room-error");
  if (!ROOM_RULE.test(name)) {
    error.textContent = name.length > 64
      ? "A room name is at most 64 characters."
      : "Use 1–64 letters, digits, - _ or . (no spaces).";
    error.hidden = false;
    return false;
  }
  error.hidden = true;
  if (state.conn !== "connected" && !state.rooms.get(name)?.wanted) {
    error.textContent = "Not connected: try again in a moment.";
    error.hidden = false;
    return false;
  }
  room(name);
  activate(name);
  return true;
}

function leaveRoom(name) {
  const r = state.rooms.get(name);
  if (!r || !r.wanted) return;
  r.leaving = true;
  if ((r.joined || r.joining) && state.conn === "connected") {
    const ref = newRef("l");
    state.refs.set(ref, { kind: "leave", room: name });
    send({ type: "leave", room: name, ref });
    // Stop showing it right away; `left` finishes the job.
    r.wanted = false;
    if (state.active === name) state.active = state.order.find((n) => state.rooms.get(n)?.wanted) ?? null;
    persistRooms();
  } else {
    forgetRoom(name);
  }
  renderAll();
}

let pendingSeq = 1;
function sendMessage(textArg, existing) {
  const name = existing ? existing.room : state.active;
  const r = name && state.rooms.get(name);
  if (!r || !r.joined || state.conn !== "connected") return false;
  const text = textArg.replace(/^\s*\n/, "").replace(/\s+$/, "");
  if (!text.trim() || chars(text) > state.maxTextLength) return false;
  const ref = newRef("m");
  const p = existing || { id: pendingSeq++, room: name, text };
  p.ref = ref;
  p.status = "sending";
  p.error = null;
  p.detail = null;
  if (!existing) state.pending.push(p);
  state.refs.set(ref, { kind: "say", room: name, pendingId: p.id });
  const sent = send({ type: "say", room: name, text, ref });
  if (sent !== true) {
    p.status = "failed";
    p.error = sent === "too_big" ? "Too long to send in one frame." : "Not sent: not connected.";
    state.refs.delete(ref);
  }
  clearTimeout(typingTrail);
  typingTrail = null;
  if (name === state.active) {
    renderPending();
    scrollToBottom();
  }
  return true;
}

let typingTrail = null;
/** Tell the room we type: at most once every 2 s, and once more at the end of a window typed in. */
function maybeSendTyping() {
  const name = state.active;
  const r = name && state.rooms.get(name);
  if (!r || !r.joined || state.conn !== "connected") return;
  if (!$("composer").value.trim()) return;
  const now = Date.now();
  const elapsed = now - (state.lastTypingSent.get(name) || 0);
  if (elapsed >= TYPING_SEND_INTERVAL) {
    state.lastTypingSent.set(name, now);
    send({ type: "typing", room: name });
  } else if (!typingTrail) {
    typingTrail = setTimeout(() => {
      typingTrail = null;
      if (state.active === name) maybeSendTyping();
    }, TYPING_SEND_INTERVAL - elapsed + 20);
  }
}

// --- sign-in / sign-out ------------------------------------------------------------------

function showSignIn(error) {
  $("app").hidden = true;
  $("signin").hidden = false;
  const input = $("name-input");
  if (!input.value) input.value = store.get("last-name") || "";
  showNameError(error || "");
  setConn("offline");
  document.title = "Chat — sign in";
  input.focus();
}

function showNameError(text) {
  const el = $("name-error");
  el.textContent = text;
  el.hidden = !text;
  $("name-input").setAttribute("aria-invalid", text ? "true" : "false");
}

function nameProblem(name) {
  if (!name) return "Enter a name.";
  if (name.length > 64) return "A name is at most 64 characters.";
  if (!NAME_RULE.test(name)) return "Use only letters, digits, - _ and . (no spaces).";
  return "";
}

async function signIn(name) {
  const problem = nameProblem(name);
  if (problem) {
    showNameError(problem);
    $("name-input").focus();
    return;
  }
  showNameError("");
  const button = $("sign-in");
  button.disabled = true;
  button.textContent = "Signing in…";
  const answer = await fetchToken(name);
  button.disabled = false;
  button.textContent = "Sign in";
  if (!answer.ok) {
    showNameError(answer.error);
    $("name-input").focus();
    return;
  }
  start(answer.userId || name, answer);
}

/** Enter the chat as `name` (with a token if we have one) and connect. */
function start(name, token) {
  resetSession();
  state.userId = name;
  if (token) {
    state.token = token.token;
    state.tokenExpiresAt = token.expiresAt;
  }
  store.set("name", name);
  store.set("last-name", name);
  $("signin").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = name;
  $("me-avatar").replaceWith(Object.assign(avatar(name, "avatar"), { id: "me-avatar" }));
  renderAll();
  connect();
}

function resetSession() {
  const ws = state.ws;
  state.ws = null;
  if (ws) { try { ws.close(1000, "signed out"); } catch { /* closing */ } }
  clearTimeout(state.reconnectTimer);
  clearTimeout(welcomeTimer);
  clearInterval(pingTimer);
  for (const r of state.rooms.values()) for (const t of r.typing.values()) clearTimeout(t);
  Object.assign(state, {
    userId: null, token: null, tokenExpiresAt: 0, everConnected: false, attempt: 0,
    reconnectTimer: null, freshTokenTried: false, sessionId: null, suggested: [],
    rooms: new Map(), order: [], active: null, online: new Set(), onlineKnown: false,
    refs: new Map(), pending: [], lastTypingSent: new Map(), hiddenUnread: 0,
    notificationsAt: null,
  });
  state.stats.clear();
}

function signOut() {
  // Signing out is a leave the user asks for: every room drops us at once, with no grace
  // window (a closed tab keeps one, in case it comes back). The socket sends these frames
  // before its close frame.
  for (const [name, r] of state.rooms) {
    if (r.joined || r.joining) send({ type: "leave", room: name });
  }
  resetSession();
  store.remove("name");
  $("composer").value = "";
  showSignIn("");
}

function backToSignIn(error) {
  resetSession();
  store.remove("name");
  showSignIn(error);
}

// --- rendering ---------------------------------------------------------------------------

const CONN_TEXT = {
  connected: "",
  connecting: "",
  reconnecting: "",
  offline: "",
};

function setConn(value) {
  state.conn = value;
  renderConn();
  renderComposer();
}

function renderConn() {
  const conn = $("conn");
  conn.dataset.state = state.conn;
  $("connection-state").textContent = state.conn;
  let detail = CONN_TEXT[state.conn];
  let banner = "";
  const waiting = state.reconnectTimer && state.reconnectAt > Date.now();
  const secs = Math.max(1, Math.ceil((state.reconnectAt - Date.now()) / 1000));
  if (state.conn === "reconnecting" || state.conn === "connecting") {
    if (waiting) {
      detail = `in ${secs} s`;
      banner = state.everConnected
        ? `Connection lost. Reconnecting in ${secs} s…`
        : `Can't reach the server. Retrying in ${secs} s…`;
    } else {
      detail = "…";
      banner = state.everConnected ? "Connection lost. Reconnecting…" : "";
    }
  } else if (state.conn === "offline" && state.userId) {
    detail = "";
    banner = "You're offline. We'll reconnect when the network is back.";
  }
  $("conn-detail").textContent = detail;
  $("banner").hidden = !banner;
  $("banner-text").textContent = banner;
  $("retry-now").hidden = !waiting;
  conn.title = `Connection: ${state.conn}${detail && detail !== "…" ? ` (${detail})` : ""}`;
}

function renderAll() {
  renderConn();
  renderRooms();
  renderOnline();
  renderRoom({ keepScroll: false });
  renderStats();
  renderTitle();
}

function renderRooms() {
  const list = $("room-list");
  const items = [];
  for (const name of state.order) {
    const r = state.rooms.get(name);
    if (!r) continue;
    if (!r.wanted && !state.suggested.includes(name)) continue;
    const active = name === state.active;
    const badge = !active && r.wanted && r.unread > 0
      ? h("span", { class: `badge${r.mentions ? " badge-mention" : ""}`, "aria-label": `${r.unread} unread` }, r.unread > 99 ? "99+" : String(r.unread))
      : null;
    const button = h("button", {
      type: "button",
      class: "room",
      "data-testid": `room-${name}`,
      "data-joined": r.joined ? "true" : "false",
      "data-wanted": r.wanted ? "true" : "false",
      "data-unread": String(r.wanted ? r.unread : 0),
      "aria-current": active ? "true" : null,
      title: r.wanted ? `#${name}` : `Join #${name}`,
      onclick: () => activate(name),
    },
    h("span", { class: "room-hash", "aria-hidden": "true" }, "#"),
    h("span", { class: "room-name" }, name),
    r.joining ? h("span", { class: "room-spinner", "aria-label": "joining" }) : null,
    badge,
    !r.wanted ? h("span", { class: "room-join-hint", "aria-hidden": "true" }, "Join") : null);
    const leave = r.wanted
      ? h("button", {
        type: "button", class: "room-leave", title: `Leave #${name}`, "aria-label": `Leave #${name}`,
        "data-testid": `leave-${name}`, onclick: (e) => { e.stopPropagation(); leaveRoom(name); },
      }, icon("x"))
      : null;
    items.push(h("li", { class: `room-item${active ? " is-active" : ""}${r.wanted ? " is-joined" : ""}${r.unread && !active ? " is-unread" : ""}` }, button, leave));
  }
  list.replaceChildren(...items);
  const unread = state.order.reduce((sum, n) => {
    const r = state.rooms.get(n);
    return sum + (r && r.wanted && n !== state.active ? r.unread : 0);
  }, 0);
  $("menu-badge").hidden = unread === 0;
  $("menu-badge").textContent = unread ? String(unread) : "";
}

function personItem(user, testid) {
  const me = user === state.userId;
  return h("li", { class: `person${me ? " is-me" : ""}` },
    avatar(user, "avatar avatar-small"),
    h("span", { class: "person-name", "data-testid": testid, title: me ? `${user} (you)` : user }, user));
}

function sortedPeople(set) {
  return [...set].sort((a, b) => {
    if (a === state.userId) return -1;
    if (b === state.userId) return 1;
    return a.localeCompare(b, undefined, { sensitivity: "base" });
  });
}

function renderOnline() {
  const users = sortedPeople(state.online);
  $("online-users").replaceChildren(...users.map((u) => personItem(u, "online-user")));
  $("online-users").classList.toggle("is-stale", state.conn !== "connected");
  $("online-count").textContent = String(users.length);
}

function renderMembers() {
  const r = state.active && state.rooms.get(state.active);
  const users = r && r.wanted ? sortedPeople(r.members) : [];
  $("room-members").replaceChildren(...users.map((u) => personItem(u, "room-member")));
  $("room-members").classList.toggle("is-stale", Boolean(r && !r.joined));
  $("member-count").textContent = String(users.length);
  const btn = $("members-btn");
  btn.hidden = !r || !r.wanted || !r.loaded;
  $("members-label").textContent = `${users.length} here`;
  btn.title = users.length ? `In #${state.active}: ${users.join(", ")}` : "";
  $("member-faces").replaceChildren(...users.slice(0, 3).map((u) => avatar(u, "avatar avatar-tiny")));
}

function renderTitle() {
  let unread = state.hiddenUnread;
  for (const [n, r] of state.rooms) if (r.wanted && n !== state.active) unread += r.unread;
  const where = state.active ? `#${state.active}` : "Chat";
  document.title = `${unread ? `(${unread}) ` : ""}${where} — Chat`;
}

function renderComposer() {
  const r = state.active && state.rooms.get(state.active);
  const ready = Boolean(r && r.joined && state.conn === "connected");
  const input = $("composer");
  input.disabled = !ready;
  input.placeholder = !state.active ? "Join a room to chat"
    : state.conn !== "connected" ? (state.conn === "offline" ? "Offline" : "Reconnecting…")
      : !r.joined ? "Joining…" : `Message #${state.active}`;
  updateCounter();
}

function updateCounter() {
  const input = $("composer");
  const text = input.value.replace(/\s+$/, "");
  const length = chars(text);
  const max = state.maxTextLength;
  const counter = $("counter");
  const near = length >= max - Math.max(50, Math.round(max * 0.1));
  counter.hidden = !near;
  counter.textContent = String(max - length);
  counter.classList.toggle("is-over", length > max);
  counter.title = `${length} of ${max} characters`;
  $("send").disabled = input.disabled || !text.trim() || length > max;
}

function autoGrow() {
  const input = $("composer");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

function renderStats() {
  const now = Date.now();
  for (const [server, entry] of state.stats) if (now - entry.at > STATS_STALE) state.stats.delete(server);
  const el = $("server-stats");
  if (!state.stats.size) {
    el.hidden = true;
    return;
  }
  let sessions = 0;
  const lines = [];
  for (const [server, { event }] of [...state.stats].sort()) {
    const s = Number(event.sessions) || 0;
    sessions += s;
    lines.push(`${server}: ${s} sessions, ${Number(event.rooms) || 0} rooms, ${Number(event.users) || 0} users`);
  }
  const servers = state.stats.size;
  el.textContent = `${servers} ${servers === 1 ? "server" : "servers"} · ${sessions} ${sessions === 1 ? "session" : "sessions"}`;
  el.title = lines.join("\n");
  el.hidden = false;
}

// --- the message view --------------------------------------------------------------------

function isAtBottom() {
  const s = $("scroller");
  return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
}

function scrollToBottom() {
  const s = $("scroller");
  s.scrollTop = s.scrollHeight;
  $("jump").hidden = true;
}

function mentionsMe(text) {
  if (!state.userId) return false;
  for (const match of text.matchAll(MENTION)) if (match[2] === state.userId) return true;
  return false;
}

/** The text of a message as nodes: links and @mentions marked, everything else plain text. */
function richText(text) {
  const out = [];
  const pushMentions = (part) => {
    let last = 0;
    for (const match of part.matchAll(MENTION)) {
      const start = match.index + match[1].length;
      if (start > last) out.push(document.createTextNode(part.slice(last, start)));
      const user = match[2];
      const me = user === state.userId;
      out.push(h("span", { class: `mention${me ? " mention-me" : ""}`, title: me ? "You" : user }, `@${user}`));
      last = start + 1 + user.length;
    }
    if (last < part.length) out.push(document.createTextNode(part.slice(last)));
  };
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0];
    const trimmed = url.replace(/[.,;:!?)\]}]+$/, "");
    url = trimmed;
    if (match.index > last) pushMentions(text.slice(last, match.index));
    out.push(h("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow" }, url));
    last = match.index + url.length;
  }
  if (last < text.length) pushMentions(text.slice(last));
  return out;
}

function startsGroup(msg, prev) {
  return !prev || prev.user_id !== msg.user_id || msg.sent_at - prev.sent_at > GROUP_WINDOW ||
    dayKey(prev.sent_at) !== dayKey(msg.sent_at);
}

function messageItem(msg, prev, next) {
  const own = msg.user_id === state.userId;
  const first = startsGroup(msg, prev);
  const last = !next || startsGroup(next, msg);
  const classes = ["msg", own ? "is-own" : "is-other", first ? "is-first" : "is-cont", last ? "is-last" : ""];
  if (!own && mentionsMe(msg.text)) classes.push("is-mention");
  const li = h("li", { class: classes.join(" "), "data-testid": "message", "data-author": msg.user_id, "data-sent-at": String(msg.sent_at) },
    own ? null : (first ? avatar(msg.user_id, "avatar msg-avatar") : h("span", { class: "msg-avatar-gap", "aria-hidden": "true" })),
    h("div", { class: "msg-body" },
      h("div", { class: `msg-meta${first && !own ? "" : " sr-only"}` },
        h("span", { class: "msg-author", "data-testid": "message-author" }, msg.user_id)),
      h("div", { class: "msg-bubble" },
        h("span", { class: "msg-text", "data-testid": "message-text" }, ...richText(msg.text)),
        h("span", { class: "msg-spacer", "aria-hidden": "true" }),
        h("time", { class: "msg-time", datetime: new Date(msg.sent_at * 1000).toISOString(), title: fullTime(msg.sent_at) }, clock(msg.sent_at)))));
  li.style.setProperty("--hue", String(hueOf(msg.user_id)));
  return li;
}

function dayDivider(sentAt) {
  return h("li", { class: "day", "data-day": dayKey(sentAt) }, h("span", null, dayLabel(sentAt)));
}

function renderRoom({ keepScroll }) {
  const name = state.active;
  const r = name && state.rooms.get(name);
  $("room-title").textContent = name || "";
  $("leave-btn").hidden = !r || !r.wanted;
  const nodes = [];
  if (r) {
    let prev = null;
    r.messages.forEach((msg, i) => {
      if (!prev || dayKey(prev.sent_at) !== dayKey(msg.sent_at)) nodes.push(dayDivider(msg.sent_at));
      nodes.push(messageItem(msg, prev, r.messages[i + 1]));
      prev = msg;
    });
  }
  const atBottom = isAtBottom();
  $("messages").replaceChildren(...nodes);
  const empty = $("empty");
  if (!r) {
    empty.hidden = false;
    $("empty-title").textContent = state.conn === "connected" || state.everConnected ? "No room open" : "Connecting…";
    $("empty-text").textContent = state.conn === "connected" ? "Pick a room on the left, or create one with the field under the list." : "";
  } else if (!r.loaded) {
    empty.hidden = false;
    $("empty-title").textContent = `Joining #${name}…`;
    $("empty-text").textContent = "";
  } else if (!r.messages.length) {
    empty.hidden = false;
    $("empty-title").textContent = `Welcome to #${name}`;
    $("empty-text").textContent = "No messages yet. Say hello!";
  } else {
    empty.hidden = true;
  }
  renderPending();
  renderMembers();
  renderTyping();
  renderComposer();
  if (!keepScroll || atBottom) scrollToBottom();
}

function appendToView(r, msg, own) {
  const atBottom = isAtBottom();
  const list = $("messages");
  const index = r.messages.indexOf(msg);
  if (index !== r.messages.length - 1) {
    renderRoom({ keepScroll: true }); // arrived out of order: draw it all again
    return;
  }
  const prev = r.messages[index - 1];
  if (!prev || dayKey(prev.sent_at) !== dayKey(msg.sent_at)) list.append(dayDivider(msg.sent_at));
  // The previous message may stop being the last of its group.
  if (prev && !startsGroup(msg, prev)) {
    const lastEl = list.lastElementChild;
    if (lastEl && lastEl.dataset.testid === "message") lastEl.classList.remove("is-last");
  }
  list.append(messageItem(msg, prev, null));
  $("empty").hidden = true;
  if (atBottom || own) scrollToBottom();
  else $("jump").hidden = false;
}

function renderPending() {
  const items = state.pending.filter((p) => p.room === state.active).map((p) => {
    const failed = p.status === "failed";
    return h("li", { class: `msg is-own is-first is-last is-pending${failed ? " is-failed" : ""}`, "data-testid": failed ? "message-failed" : "message-pending" },
      h("div", { class: "msg-body" },
        h("div", { class: "msg-bubble" },
          h("span", { class: "msg-text" }, ...richText(p.text)),
          h("span", { class: "msg-spacer", "aria-hidden": "true" }),
          h("span", { class: "msg-time" }, failed ? "!" : "…")),
        failed
          ? h("div", { class: "msg-failure" },
            h("span", { class: "msg-failure-text", title: p.detail || p.error || "" }, p.error || "Not sent."),
            h("button", { type: "button", class: "link-btn", onclick: () => retryPending(p) }, "Retry"),
            h("button", { type: "button", class: "link-btn", onclick: () => discardPending(p) }, "Discard"))
          : h("div", { class: "msg-sending" }, "Sending…")));
  });
  const atBottom = isAtBottom();
  $("pending").replaceChildren(...items);
  if (atBottom) scrollToBottom();
}

function retryPending(p) {
  if (state.conn !== "connected") {
    toast({ kind: "error", title: "Not connected", body: "Wait for the connection to come back, then retry." });
    return;
  }
  sendMessage(p.text, p);
}

function discardPending(p) {
  state.pending = state.pending.filter((x) => x !== p);
  renderPending();
}

function renderTyping() {
  const r = state.active && state.rooms.get(state.active);
  const names = r ? [...r.typing.keys()].sort() : [];
  const el = $("typing");
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length > 1 && names.length <= 3) text = `${listNames(names)} are typing…`;
  else if (names.length > 3) text = "Several people are typing…";
  el.textContent = text;
  el.classList.toggle("is-active", Boolean(text));
}

// --- toasts ------------------------------------------------------------------------------

function toast({ kind = "info", title, body = "", duration = TOAST_MS, onClick = null, code = null }) {
  const box = $("toasts");
  for (const old of box.children) {
    if (old.dataset.key === `${kind}|${title}|${body}` && !old.classList.contains("is-leaving")) {
      old.dispatchEvent(new Event("renew"));
      return;
    }
  }
  const glyph = kind === "mention" ? "at" : kind === "error" ? "alert" : "bell";
  let timer = null;
  const close = () => {
    clearTimeout(timer);
    el.classList.add("is-leaving");
    setTimeout(() => el.remove(), 180);
  };
  const el = h("div", {
    class: `toast toast-${kind}${onClick ? " is-clickable" : ""}`,
    "data-testid": "toast",
    "data-kind": kind,
    "data-code": code,
    role: kind === "error" ? "alert" : "status",
  },
  h("span", { class: "toast-icon" }, icon(glyph)),
  h("div", { class: "toast-text" },
    h("p", { class: "toast-title" }, title),
    body ? h("p", { class: "toast-body" }, body) : null),
  h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss", onclick: (e) => { e.stopPropagation(); close(); } }, icon("x")));
  if (onClick) el.addEventListener("click", () => { onClick(); close(); });
  el.dataset.key = `${kind}|${title}|${body}`;
  const arm = () => { clearTimeout(timer); timer = setTimeout(close, duration); };
  el.addEventListener("renew", () => {
    arm();
    el.classList.remove("is-bump");
    void el.offsetWidth; // restart the animation
    el.classList.add("is-bump");
  });
  el.addEventListener("mouseenter", () => clearTimeout(timer));
  el.addEventListener("mouseleave", arm);
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  arm();
}

// --- drawer (phones) ---------------------------------------------------------------------

function openDrawer() {
  $("app").classList.add("drawer-open");
  $("backdrop").hidden = false;
}
function closeDrawer() {
  $("app").classList.remove("drawer-open", "members-open");
  $("backdrop").hidden = true;
}
function toggleMembers() {
  const app = $("app");
  if (window.matchMedia("(min-width: 1100px)").matches) {
    app.classList.toggle("members-hidden");
    $("members-btn").setAttribute("aria-expanded", String(!app.classList.contains("members-hidden")));
    return;
  }
  const open = !app.classList.contains("members-open");
  app.classList.toggle("members-open", open);
  $("backdrop").hidden = !open || !window.matchMedia("(max-width: 1099px)").matches;
}

// --- wiring ------------------------------------------------------------------------------

function wire() {
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("name-input").value.trim());
  });
  $("name-input").addEventListener("input", () => {
    if (!$("name-error").hidden) showNameError("");
  });
  $("sign-out").addEventListener("click", signOut);
  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (joinByName($("room-input").value)) $("room-input").value = "";
  });
  $("room-input").addEventListener("input", () => { $("room-error").hidden = true; });
  $("leave-btn").addEventListener("click", () => state.active && leaveRoom(state.active));
  $("retry-now").addEventListener("click", reconnectNow);
  $("menu-btn").addEventListener("click", openDrawer);
  $("backdrop").addEventListener("click", closeDrawer);
  $("members-btn").addEventListener("click", toggleMembers);
  $("members-close").addEventListener("click", closeDrawer);
  $("jump").addEventListener("click", scrollToBottom);
  $("scroller").addEventListener("scroll", () => { if (isAtBottom()) $("jump").hidden = true; }, { passive: true });

  const composer = $("composer");
  composer.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer-form").requestSubmit();
    }
  });
  composer.addEventListener("input", () => {
    autoGrow();
    updateCounter();
    maybeSendTyping();
  });
  $("composer-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = composer.value;
    if (chars(text.replace(/\s+$/, "")) > state.maxTextLength) {
      toast({ kind: "error", title: "Message too long", body: `At most ${state.maxTextLength} characters.` });
      return;
    }
    if (sendMessage(text)) {
      composer.value = "";
      autoGrow();
      updateCounter();
    }
    composer.focus();
  });

  window.addEventListener("online", () => { if (state.userId && !state.ws) reconnectNow(); });
  window.addEventListener("offline", () => {
    if (state.userId && !state.ws) {
      clearTimeout(state.reconnectTimer);
      state.reconnectTimer = null;
      setConn("offline");
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      state.hiddenUnread = 0;
      const r = state.active && state.rooms.get(state.active);
      const last = r && r.messages[r.messages.length - 1];
      if (last) r.lastReadAt = Math.max(r.lastReadAt, last.sent_at);
      renderTitle();
      if (state.userId && !state.ws && state.conn !== "connected") reconnectNow();
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeDrawer();
  });
  // Once a second: the reconnect countdown and stale server stats.
  setInterval(() => {
    if (state.conn === "reconnecting" || state.conn === "connecting") renderConn();
    if (state.stats.size) renderStats();
  }, 1000);
}

window.__chat = {
  state: () => ({
    user: state.userId,
    connection: state.conn,
    session: state.sessionId,
    active: state.active,
    rooms: state.order.filter((n) => state.rooms.get(n)?.wanted),
    joined: state.order.filter((n) => state.rooms.get(n)?.joined),
    online: [...state.online],
    pending: state.pending.map((p) => ({ room: p.room, text: p.text, status: p.status, error: p.detail || p.error })),
  }),
  socket: null,
};

wire();
const remembered = store.get("name");
if (remembered && NAME_RULE.test(remembered)) start(remembered, null);
else showSignIn("");
