// The live parts shared by the portal's pages and the support console: a WebSocket that reconnects and
// resumes with ?since=, times shown in the reader's zone and as "5 minutes ago", a polite announcer.

const SOCKET_BASE = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;

export function announce(text) {
  const announcer = document.getElementById("announcer");
  if (!announcer) return;
  announcer.textContent = "";
  window.setTimeout(() => { announcer.textContent = text; }, 50);
}

// --- Times: the reader's own zone, and how long ago --------------------------------------------------

const absoluteFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const UNITS = [["day", 86400], ["hour", 3600], ["minute", 60]];

function relative(date) {
  const seconds = (date.getTime() - Date.now()) / 1000;
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return relativeFormat.format(Math.round(seconds / size), unit);
  }
  return relativeFormat.format(0, "minute");
}

export function renderTimes(root = document) {
  for (const element of root.querySelectorAll("time[datetime]")) {
    const date = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) continue;
    element.title = absoluteFormat.format(date);
    element.textContent = element.hasAttribute("data-relative") ? relative(date) : absoluteFormat.format(date);
  }
}

// --- A WebSocket that reconnects, resuming with ?since= -------------------------------------------------

export class LiveSocket {
  constructor(path, { onMessage, sinceOf, status = document.getElementById("live-status") }) {
    this.path = path;
    this.onMessage = onMessage;
    this.sinceOf = sinceOf;
    this.delay = 500;
    this.status = status;
    this.connect();
  }

  setState(state, text) {
    if (!this.status) return;
    this.status.dataset.state = state;
    this.status.textContent = text;
  }

  connect() {
    const since = this.sinceOf ? this.sinceOf() : null;
    const url = `${SOCKET_BASE}${this.path}${since !== null && since !== undefined ? `?since=${since}` : ""}`;
    this.socket = new WebSocket(url);
    this.socket.addEventListener("open", () => {
      this.delay = 500;
      this.setState("live", "Live");
    });
    this.socket.addEventListener("message", (message) => {
      let data;
      try { data = JSON.parse(message.data); } catch { return; }
      this.onMessage(data);
    });
    this.socket.addEventListener("close", (event) => {
      if (event.code >= 4400 && event.code < 4500) {
        // Not signed in any more, or no longer allowed: the next page load says why.
        this.setState("lost", "Not live: reload the page");
        return;
      }
      this.setState("lost", "Connection lost — reconnecting…");
      window.setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    });
  }

  send(payload) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(payload));
  }
}
