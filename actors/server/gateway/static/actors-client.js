// actors-client.js: a client of the gateway's WebSocket protocol (docs/protocol.md) for any page,
// as a plain ES module with no dependencies. The API is described in docs/client.md.
//
//   import { ChatClient, fetchToken } from "/static/actors-client.js";
//   const client = new ChatClient({ token: () => fetchToken("ada") });
//   client.on("message", (message) => console.log(message.user_id, message.text));
//   client.on("joined", ({ room }) => client.say(room, "hello"));
//   client.join("lobby"); // kept until connected, and across reconnects
//   await client.connect();
//
// The client keeps the connection up by itself: after any close but a refused token it
// reconnects with exponential backoff and jitter (0.5 s doubling, never more than 10 s), joins
// its rooms again with the position of the last message it has (so the server sends exactly
// what was missed) and says the last notification it got in its `hello`.

/** The first reconnect waits about this long (milliseconds), then each one twice as long. */
export const BACKOFF_FIRST = 500;
/** No wait between two attempts is longer than this (milliseconds), jitter included. */
export const BACKOFF_MAX = 10000;
/** A connection that has not said `welcome` this long (milliseconds) after opening is dropped. */
export const WELCOME_TIMEOUT = 15000;
/** While connected, the client pings this often (milliseconds) ... */
export const PING_EVERY = 25000;
/** ... and drops a connection that has sent nothing for this long (milliseconds) after a ping. */
export const PING_TIMEOUT = 10000;
/** An unasked `left` (the server lost the room) is answered by a `join` this long (ms) after. */
export const REJOIN_DELAY = 1000;
/** A `join` refused as `unavailable` is tried again after this long (milliseconds). */
export const JOIN_RETRY_DELAY = 2000;
/** By default `connect()` waits this long (milliseconds) for a `welcome`. */
export const CONNECT_TIMEOUT = 30000;
/** A token that expires within this long (milliseconds) is replaced before connecting. */
const TOKEN_MARGIN = 30000;

/** The close code of a refused token (docs/protocol.md, "Closing"). */
const CLOSE_UNAUTHORIZED = 4001;

const EVENTS = new Set([
  "state", "welcome", "joined", "left", "message", "ack", "typing", "history", "presence_state",
  "presence_diff", "notification", "update", "error", "pong", "frame", "fatal",
]);

/** A token could not be had: `fatal` when asking again cannot help (a refused name). */
export class TokenError extends Error {
  constructor(message, { fatal = false, status = 0 } = {}) {
    super(message);
    this.name = "TokenError";
    this.fatal = fatal;
    this.status = status;
  }
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first), in milliseconds: 0.5 s
 * doubling per attempt, times a random factor from 0.75 to 1.25 so that the clients a restart
 * dropped do not all come back at once, and never more than BACKOFF_MAX.
 */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** Math.max(0, attempt));
  return Math.min(BACKOFF_MAX, base * (0.75 + random() * 0.5));
}

/**
 * Ask the server for a token for `name` (`POST /token`). Resolves to `{token, userId,
 * expiresAt}`; rejects with a TokenError, fatal when the server refused the name (4xx). This is
 * the one place that knows how a token is had: a deployment with its own login replaces it.
 */
export async function fetchToken(name, { base = "" } = {}) {
  let response;
  try {
    response = await fetch(`${base}/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name }),
      cache: "no-store",
    });
  } catch {
    throw new TokenError("The server can't be reached. Check your connection and try again.");
  }
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (response.ok && body && typeof body.token === "string") {
    const userId = typeof body.user_id === "string" ? body.user_id : name;
    return { token: body.token, userId, expiresAt: Number(body.expires_at) || 0 };
  }
  const error = body && typeof body.error === "string" ? body.error : `The server answered ${response.status}.`;
  const fatal = response.status >= 400 && response.status < 500;
  throw new TokenError(error, { fatal, status: response.status });
}

/** The gateway's WebSocket URL on the page's own server. */
export function defaultUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
}

/** `{epoch, offset}` of a frame, or null. */
export function positionOf(frame) {
  return frame && typeof frame.epoch === "string" && Number.isInteger(frame.offset)
    ? { epoch: frame.epoch, offset: frame.offset }
    : null;
}

/** Whether position `at` is at or before `held` (same epoch): a message had already. */
function isHeld(held, at) {
  return Boolean(at && held && held.epoch === at.epoch && at.offset <= held.offset);
}

/**
 * One user's connection to the gateway, kept up across drops. Events (see `on`): `state`,
 * `fatal`, `frame` (every frame from the server), and one per server frame type.
 */
export class ChatClient {
  /**
   * @param {object} options
   * @param {() => Promise<{token: string, expiresAt?: number}|string>} options.token called
   *   whenever a token is needed (the first connect, an expired one, one the server refused);
   *   the token is opaque to the client.
   * @param {string} [options.url] the WebSocket URL (default: `/ws` on the page's server).
   * @param {() => number} [options.random] the jitter's source (default Math.random).
   * @param {boolean} [options.watchNetwork] reconnect at once when the browser says it is
   *   back online or the page becomes visible (default true).
   */
  constructor({ token, url = null, random = Math.random, watchNetwork = true } = {}) {
    if (typeof token !== "function") throw new TypeError("ChatClient needs a token function");
    this.tokenSource = token;
    this.url = url;
    this.random = random;
    this.handlers = new Map();
    this.state = "idle"; // idle | connecting | connected | reconnecting | offline | closed
    this.attempt = 0; // reconnect attempts since the last welcome
    this.retryAt = null; // when the next attempt starts (Date.now() milliseconds), if waiting
    this.code = null; // the last close code
    this.userId = null;
    this.sessionId = null;
    this.welcome = null; // the last welcome frame
    this.socket = null;
    this.rooms = new Map(); // room -> {position, joined, joinRef}: the rooms wanted
    this.requests = new Map(); // ref -> {kind, room}
    this.notificationsAt = null;
    this.token = null;
    this.tokenExpiresAt = 0;
    this.everConnected = false;
    this.freshTokenTried = false;
    this.nextRef = 1;
    this.timers = { retry: null, welcome: null, ping: null };
    this.pongDeadline = null;
    this.waiters = [];
    this.opening = false; // a token is being fetched for the next socket
    this.unwatch = () => {};
    if (watchNetwork && typeof window !== "undefined") {
      const online = () => this.reconnectNow();
      const offline = () => {
        if (!this.socket && this.state !== "closed" && this.state !== "idle") this.setState("offline");
      };
      const visible = () => {
        if (!document.hidden) this.reconnectNow();
      };
      window.addEventListener("online", online);
      window.addEventListener("offline", offline);
      document.addEventListener("visibilitychange", visible);
      this.unwatch = () => {
        window.removeEventListener("online", online);
        window.removeEventListener("offline", offline);
        document.removeEventListener("visibilitychange", visible);
      };
    }
  }

  /** Call `handler(detail)` on `event`; returns a function that stops it. */
  on(event, handler) {
    if (!EVENTS.has(event)) throw new TypeError(`no such event: ${event}`);
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(handler);
    return () => this.handlers.get(event).delete(handler);
  }

  emit(event, detail) {
    for (const handler of [...(this.handlers.get(event) ?? [])]) {
      try { handler(detail); } catch (error) { console.error(`actors-client: a ${event} handler failed`, error); }
    }
  }

  /**
   * Start connecting (a closed client stays closed: make another). Resolves with the `welcome` frame once connected; rejects
   * with a TokenError if the client gives up (a token refused twice, a name refused), and with
   * an Error named "TimeoutError" after `timeout` milliseconds without a welcome (null: no
   * bound), while the client goes on trying.
   */
  connect({ timeout = CONNECT_TIMEOUT } = {}) {
    if (this.state === "closed") return Promise.reject(new Error("the client is closed; make another"));
    const welcomed = new Promise((resolve, reject) => {
      const waiter = { resolve, reject, timer: null };
      if (timeout !== null) {
        waiter.timer = setTimeout(() => {
          this.waiters = this.waiters.filter((other) => other !== waiter);
          const error = new Error(`no welcome within ${timeout} ms; the client goes on trying`);
          error.name = "TimeoutError";
          reject(error);
        }, timeout);
      }
      this.waiters.push(waiter);
    });
    if (this.state === "idle") {
      this.attempt = 0;
      this.open();
    }
    return welcomed;
  }

  /** Retry now instead of waiting for the backoff (no-op while connected or closed). */
  reconnectNow() {
    if (this.socket || this.state === "idle" || this.state === "closed" || this.state === "connected") return;
    this.attempt = 0;
    this.open();
  }

  /** Close for good (code 1000), first leaving every room if `leaveRooms`. */
  close({ leaveRooms = false } = {}) {
    if (leaveRooms) for (const room of this.rooms.keys()) this.send({ type: "leave", room });
    this.rooms.clear();
    const socket = this.socket;
    this.socket = null;
    this.stopTimers();
    this.unwatch();
    if (socket) { try { socket.close(1000, "closed by the client"); } catch { /* closing */ } }
    this.setState("closed");
    const error = new Error("the client was closed");
    this.settleWaiters((waiter) => waiter.reject(error));
  }

  /**
   * Join `room` now, or as soon as connected; kept across reconnects until `leave`. Returns the
   * request's ref, or null when nothing was sent (not connected, or joined or joining already).
   */
  join(room) {
    const entry = this.rooms.get(room);
    if (!entry) this.rooms.set(room, { position: null, joined: false, joinRef: null });
    else if (entry.joined || entry.joinRef) return null;
    return this.sendJoin(room);
  }

  /** Leave `room` (and stop rejoining it). Returns the request's ref, or null if not sent. */
  leave(room, { ref = this.newRef("l") } = {}) {
    const entry = this.rooms.get(room);
    this.rooms.delete(room);
    if (!entry || (!entry.joined && !entry.joinRef)) return null;
    this.requests.set(ref, { kind: "leave", room });
    return this.send({ type: "leave", room, ref }) === true ? ref : null;
  }

  /**
   * Post `text` in a joined room. Returns `{sent: true, ref}`, or `{sent: false, reason}` with
   * reason `not_connected`, `not_joined` or `too_big` (over the server's frame limit).
   */
  say(room, text, { ref = this.newRef("m") } = {}) {
    if (this.state !== "connected") return { sent: false, reason: "not_connected" };
    if (!this.rooms.get(room)?.joined) return { sent: false, reason: "not_joined" };
    this.requests.set(ref, { kind: "say", room });
    const sent = this.send({ type: "say", room, text, ref });
    if (sent !== true) {
      this.requests.delete(ref);
      return { sent: false, reason: sent === "too_big" ? "too_big" : "not_connected" };
    }
    return { sent: true, ref };
  }

  /** Tell a joined room's other users that this one types (the server passes one a second). */
  typing(room) {
    return this.rooms.get(room)?.joined ? this.send({ type: "typing", room }) === true : false;
  }

  /** Ask for a joined room's last `limit` messages (all kept without one): a `history` event. */
  history(room, limit = null) {
    const frame = { type: "history", room, ref: this.newRef("h") };
    if (limit !== null) frame.limit = limit;
    return this.send(frame) === true ? frame.ref : null;
  }

  /** Whether `room` is joined on the current connection. */
  isJoined(room) {
    return Boolean(this.rooms.get(room)?.joined);
  }

  // --- the connection ----------------------------------------------------------------------

  newRef(prefix) {
    return `${prefix}-${this.nextRef++}`;
  }

  setState(state, detail = {}) {
    this.state = state;
    this.emit("state", { state, attempt: this.attempt, retryAt: this.retryAt, code: this.code, ...detail });
  }

  send(frame) {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN || this.state !== "connected") return false;
    const text = JSON.stringify(frame);
    const limit = this.welcome?.max_frame_bytes ?? 16384;
    if (new TextEncoder().encode(text).length > limit) return "too_big";
    socket.send(text);
    return true;
  }

  sendJoin(room) {
    const entry = this.rooms.get(room);
    if (!entry || this.state !== "connected") return null;
    const ref = this.newRef("j");
    const frame = { type: "join", room, ref };
    // Back after a drop: say where we are, and the server sends exactly what came since.
    if (entry.position) Object.assign(frame, entry.position);
    this.requests.set(ref, { kind: "join", room });
    entry.joinRef = ref;
    return this.send(frame) === true ? ref : null;
  }

  async open() {
    clearTimeout(this.timers.retry);
    this.timers.retry = null;
    this.retryAt = null;
    if (this.socket || this.opening) return;
    if (typeof navigator !== "undefined" && navigator.onLine === false) {
      this.setState("offline");
      return;
    }
    this.setState(this.everConnected ? "reconnecting" : "connecting");
    if (!this.token || (this.tokenExpiresAt && this.tokenExpiresAt * 1000 - Date.now() < TOKEN_MARGIN)) {
      let answer;
      this.opening = true;
      try {
        answer = await this.tokenSource();
      } catch (error) {
        this.opening = false;
        if (this.state === "closed" || this.socket) return;
        if (error instanceof TokenError && error.fatal) this.giveUp(error);
        else this.scheduleReconnect();
        return;
      }
      this.opening = false;
      if (this.state === "closed" || this.socket) return; // closed, or opened, meanwhile
      this.token = typeof answer === "string" ? answer : answer.token;
      this.tokenExpiresAt = typeof answer === "string" ? 0 : Number(answer.expiresAt) || 0;
    }
    this.openSocket();
  }

  openSocket() {
    let socket;
    try {
      socket = new WebSocket(this.url ?? defaultUrl());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.timers.welcome = setTimeout(() => this.drop(socket, 4000), WELCOME_TIMEOUT);
    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      const hello = { type: "hello", token: this.token };
      // Back after a drop: the notifications sent meanwhile come first.
      if (this.notificationsAt) {
        hello.notifications_epoch = this.notificationsAt.epoch;
        hello.notifications_offset = this.notificationsAt.offset;
      }
      socket.send(JSON.stringify(hello));
    });
    socket.addEventListener("message", (event) => {
      if (this.socket !== socket) return;
      this.pongDeadline = null;
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame && typeof frame === "object" && typeof frame.type === "string") this.receive(frame);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket === socket) this.closed(event.code, event.reason);
    });
  }

  /** Give up on a socket now: a dead one may take long to report its close. */
  drop(socket, code) {
    if (this.socket !== socket) return;
    try { socket.close(); } catch { /* already closing */ }
    this.closed(code, "");
  }

  closed(code, reason) {
    this.socket = null;
    this.code = code;
    this.stopTimers();
    for (const entry of this.rooms.values()) {
      entry.joined = false;
      entry.joinRef = null;
    }
    this.requests.clear();
    if (this.state === "closed") return;
    if (code === CLOSE_UNAUTHORIZED) {
      // The token was refused: get a new one, once.
      this.token = null;
      if (this.freshTokenTried) {
        this.giveUp(new TokenError(reason ? `The server refused the session: ${reason}` : "The server refused the session.", { fatal: true }));
        return;
      }
      this.freshTokenTried = true;
      this.open();
      return;
    }
    this.scheduleReconnect(reason);
  }

  scheduleReconnect(reason = "") {
    clearTimeout(this.timers.retry);
    if (typeof navigator !== "undefined" && navigator.onLine === false) {
      this.setState("offline");
      return;
    }
    const delay = backoffDelay(this.attempt, this.random);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.timers.retry = setTimeout(() => this.open(), delay);
    this.setState(this.everConnected ? "reconnecting" : "connecting", { delay, reason });
  }

  giveUp(error) {
    this.rooms.clear();
    this.unwatch();
    this.setState("closed");
    this.emit("fatal", error);
    this.settleWaiters((waiter) => waiter.reject(error));
  }

  settleWaiters(settle) {
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      settle(waiter);
    }
  }

  stopTimers() {
    clearTimeout(this.timers.retry);
    clearTimeout(this.timers.welcome);
    clearInterval(this.timers.ping);
    this.timers = { retry: null, welcome: null, ping: null };
    this.pongDeadline = null;
  }

  startPings(socket) {
    this.timers.ping = setInterval(() => {
      if (this.socket !== socket) return;
      if (this.pongDeadline !== null) {
        if (Date.now() > this.pongDeadline) this.drop(socket, 4004);
        return;
      }
      this.send({ type: "ping", ref: this.newRef("p") });
      this.pongDeadline = Date.now() + PING_TIMEOUT;
      setTimeout(() => {
        if (this.socket === socket && this.pongDeadline !== null && Date.now() > this.pongDeadline) this.drop(socket, 4004);
      }, PING_TIMEOUT + 50);
    }, PING_EVERY);
  }

  // --- frames from the server --------------------------------------------------------------

  receive(frame) {
    this.emit("frame", frame);
    switch (frame.type) {
      case "welcome": return this.onWelcome(frame);
      case "joined": return this.onJoined(frame);
      case "left": return this.onLeft(frame);
      case "message": return this.onMessage(frame);
      case "notification": return this.onNotification(frame);
      case "ack":
        this.requests.delete(frame.ref);
        return this.emit("ack", frame);
      case "error": return this.onError(frame);
      default:
        if (EVENTS.has(frame.type)) this.emit(frame.type, frame);
        return undefined;
    }
  }

  onWelcome(frame) {
    clearTimeout(this.timers.welcome);
    this.everConnected = true;
    this.attempt = 0;
    this.retryAt = null;
    this.freshTokenTried = false;
    this.welcome = frame;
    this.userId = typeof frame.user_id === "string" ? frame.user_id : this.userId;
    this.sessionId = frame.session_id;
    this.setState("connected");
    this.startPings(this.socket);
    for (const room of this.rooms.keys()) this.sendJoin(room); // before the handlers join more
    this.emit("welcome", frame);
    this.settleWaiters((waiter) => waiter.resolve(frame));
  }

  onJoined(frame) {
    const entry = this.rooms.get(frame.room);
    if (!entry) return; // left meanwhile: the `left` follows
    this.requests.delete(entry.joinRef);
    entry.joined = true;
    entry.joinRef = null;
    const history = Array.isArray(frame.history) ? frame.history : [];
    // A resumed join holds only what came after our position; drop anything we have anyway.
    const fresh = frame.resumed === true ? history.filter((m) => !isHeld(entry.position, positionOf(m))) : history;
    entry.position = positionOf(frame) ?? entry.position;
    this.emit("joined", { ...frame, history: fresh });
  }

  onLeft(frame) {
    const entry = this.rooms.get(frame.room);
    if (entry) {
      // Unasked: the server lost the room. We still want it, so join again shortly.
      entry.joined = false;
      entry.joinRef = null;
      const socket = this.socket;
      setTimeout(() => {
        if (this.socket === socket && this.rooms.get(frame.room) === entry && !entry.joined && !entry.joinRef) this.sendJoin(frame.room);
      }, REJOIN_DELAY);
    }
    this.emit("left", { ...frame, asked: !entry });
  }

  onMessage(frame) {
    const entry = this.rooms.get(frame.room);
    if (!entry) return;
    const at = positionOf(frame);
    if (isHeld(entry.position, at)) return; // had it: a resumed join brought it
    if (at) entry.position = at;
    this.emit("message", frame);
  }

  onNotification(frame) {
    const at = positionOf(frame);
    if (at) {
      if (isHeld(this.notificationsAt, at)) return;
      this.notificationsAt = at;
    }
    this.emit("notification", frame);
  }

  onError(frame) {
    const request = frame.ref ? this.requests.get(frame.ref) ?? null : null;
    if (request) this.requests.delete(frame.ref);
    if (request?.kind === "join") {
      const entry = this.rooms.get(request.room);
      if (entry && entry.joinRef === frame.ref) {
        entry.joinRef = null;
        if (frame.code === "unavailable") {
          const socket = this.socket;
          setTimeout(() => {
            if (this.socket === socket && this.rooms.get(request.room) === entry && !entry.joined) this.sendJoin(request.room);
          }, JOIN_RETRY_DELAY);
        } else if (!entry.joined) {
          this.rooms.delete(request.room); // refused for good (a bad name, too many rooms)
        }
      }
    }
    this.emit("error", { ...frame, request });
  }
}

/**
 * Make a client, add `handlers` ({event: handler}), connect; resolves with the client once
 * welcomed, or rejects as `ChatClient.connect` does (`options.timeout`, 30 s by default).
 */
export async function connect(options) {
  const client = new ChatClient(options);
  for (const [event, handler] of Object.entries(options.handlers ?? {})) client.on(event, handler);
  await client.connect({ timeout: options.timeout === undefined ? CONNECT_TIMEOUT : options.timeout });
  return client;
}
