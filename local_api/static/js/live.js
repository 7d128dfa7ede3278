// One shared EventSource on /api/v1/live: every page subscribes to `health` snapshots through it.

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30000;

class Live {
  constructor() {
    this.state = "idle"; // idle | connecting | live | reconnecting
    this.last = null;
    this._subs = new Set();
    this._stateSubs = new Set();
    this._source = null;
    this._timer = null;
    this._backoff = MIN_BACKOFF_MS;
    this.onRefused = null; // called when the server refused or ended the stream with an HTTP error
    // A phone wakes with a dead socket: reconnect at once instead of waiting for the backoff.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.state === "reconnecting") this._open();
    });
    window.addEventListener("online", () => {
      if (this.state === "reconnecting") this._open();
    });
    // The phone knows it lost its network before the stream does (a dead TCP connection can stay
    // "open" for minutes): say so now, and reconnect the moment the network is back.
    window.addEventListener("offline", () => {
      if (this.state === "idle") return;
      if (this._source) this._source.close();
      this._source = null;
      clearTimeout(this._timer);
      this._timer = null;
      this._setState("reconnecting");
    });
  }

  /** Call fn with each snapshot (the last one at once); returns the unsubscribe function. */
  subscribe(fn) {
    this._subs.add(fn);
    if (this.last) fn(this.last);
    return () => this._subs.delete(fn);
  }

  /** Call fn(state) on every connection state change (and now); returns the unsubscribe function. */
  onState(fn) {
    this._stateSubs.add(fn);
    fn(this.state);
    return () => this._stateSubs.delete(fn);
  }

  /** Open the stream (idempotent). */
  start() {
    if (this._source || this._timer) return;
    this._open();
  }

  /** Close the stream and forget the last snapshot (on logout). */
  stop() {
    clearTimeout(this._timer);
    this._timer = null;
    if (this._source) this._source.close();
    this._source = null;
    this.last = null;
    this._setState("idle");
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    for (const fn of this._stateSubs) fn(state);
  }

  _open() {
    clearTimeout(this._timer);
    this._timer = null;
    if (this._source) this._source.close();
    this._setState(this.last ? "reconnecting" : "connecting");
    const source = new EventSource("/api/v1/live");
    this._source = source;
    source.addEventListener("health", (event) => {
      let snapshot;
      try {
        snapshot = JSON.parse(event.data);
      } catch (err) {
        console.warn("siteedge: unreadable live event", err);
        return;
      }
      this._backoff = MIN_BACKOFF_MS;
      this.last = snapshot;
      this._setState("live");
      for (const fn of [...this._subs]) {
        try {
          fn(snapshot);
        } catch (err) {
          console.error("siteedge: live subscriber failed", err);
        }
      }
    });
    source.addEventListener("error", () => {
      if (this._source !== source) return;
      // The data on screen may now be old: say so. While CONNECTING the browser retries by itself;
      // CLOSED (an HTTP error such as 401 or 503) means we must start a new stream ourselves.
      this._setState("reconnecting");
      if (source.readyState === EventSource.CLOSED) {
        if (this.onRefused) this.onRefused(); // e.g. the session expired: the shell checks and asks for login
        source.close();
        this._source = null;
        this._timer = setTimeout(() => this._open(), this._backoff);
        this._backoff = Math.min(this._backoff * 2, MAX_BACKOFF_MS);
      }
    });
  }
}

export const live = new Live();
