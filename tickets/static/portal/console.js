// The support console's escalation queue, live: every change to a ticket support may see refreshes the
// table in place (the page itself is the source: the queue's order and filters are the server's).

import { LiveSocket, announce, renderTimes } from "./live.js";

const REFRESH_DEBOUNCE_MS = 300;
const QUEUE_EVENTS = new Set([
  "ticket_created", "status_change", "priority_change", "assignment_change", "new_comment",
  "sla_warning", "sla_breach", "sla_breached", "ticket_edited",
]);

function liveQueue(root) {
  const status = document.getElementById("queue-status");
  const fallback = document.getElementById("queue-refresh");
  let timer = null;

  async function refresh() {
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) {
      fallback.hidden = false; // cannot refresh in place: at least say that something changed
      return;
    }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.querySelector("#queue tbody");
    const current = root.querySelector("#queue tbody");
    if (!fresh || !current) return;
    current.replaceWith(fresh);
    renderTimes(fresh);
    announce("The queue was updated.");
  }

  new LiveSocket("/api/v1/updates", {
    status,
    onMessage: (message) => {
      if (!QUEUE_EVENTS.has(message.type)) return;
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, REFRESH_DEBOUNCE_MS);
    },
  });
}

renderTimes();
window.setInterval(() => renderTimes(), 30000);
const queue = document.querySelector("[data-live-queue]");
if (queue) liveQueue(queue);

// --- The page to work one ticket, live: events refresh the header and the timeline in place (the forms
// and what is being typed stay), others' typing shows, other agents on the ticket are listed, and a reply
// someone else sent after the page opened is pointed out before ours goes.

const PRESENCE_EVERY_MS = 20000;
const PRESENCE_FORGET_MS = 60000;
const TYPING_SHOWN_MS = 4000;
const TYPING_SENT_EVERY_MS = 2000;

function liveWorkPage(root) {
  const ticketId = root.dataset.ticketId;
  const me = root.dataset.me;
  let lastSeq = Number(root.dataset.lastSeq || 0);
  let refreshTimer = null;
  let typingTimer = null;
  let lastTypingSent = 0;
  const viewers = new Map();
  const presence = document.getElementById("presence");
  const typing = document.getElementById("typing");
  const newer = document.getElementById("newer-replies");
  const reply = document.getElementById("id_content");
  const internal = document.getElementById("id_is_internal");

  async function refresh() {
    const response = await fetch(location.pathname, { credentials: "same-origin" });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const id of ["ticket-head", "ticket-timeline"]) {
      const fresh = page.getElementById(id);
      const current = document.getElementById(id);
      if (fresh && current) {
        current.replaceWith(fresh);
        renderTimes(fresh);
      }
    }
  }

  function showViewers() {
    const now = Date.now();
    for (const [id, viewer] of viewers) if (now - viewer.seen > PRESENCE_FORGET_MS) viewers.delete(id);
    const names = [...new Set([...viewers.values()].map((v) => v.user))];
    presence.hidden = names.length === 0;
    presence.textContent = names.length ? `Also on this ticket: ${names.join(", ")}` : "";
  }

  function onPresence(message) {
    const { viewer, user, state } = message.data;
    if (state === "left") viewers.delete(viewer);
    else viewers.set(viewer, { user, seen: Date.now() });
    if (state === "joined") socket.send({ type: "presence" }); // so that the newcomer learns of us
    showViewers();
  }

  function onTyping(message) {
    const what = message.data.internal ? "an internal note" : "a reply";
    typing.textContent = `${message.data.user} is typing ${what}…`;
    typing.hidden = false;
    window.clearTimeout(typingTimer);
    typingTimer = window.setTimeout(() => { typing.hidden = true; }, TYPING_SHOWN_MS);
  }

  function onEvent(message) {
    if (typeof message.seq === "number") lastSeq = Math.max(lastSeq, message.seq);
    if (message.type === "new_comment" && message.actor !== me && newer) {
      newer.textContent = `${message.actor} replied after you opened this ticket: read it before you send yours.`;
      newer.hidden = false;
      announce(newer.textContent);
    }
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(refresh, REFRESH_DEBOUNCE_MS);
  }

  const socket = new LiveSocket(`/api/v1/tickets/${ticketId}/updates`, {
    status: document.getElementById("ticket-live-status"),
    sinceOf: () => lastSeq,
    onMessage: (message) => {
      if (message.type === "presence") onPresence(message);
      else if (message.type === "typing") onTyping(message);
      else if (message.type !== "error") onEvent(message);
    },
  });
  window.setInterval(() => { socket.send({ type: "presence" }); showViewers(); }, PRESENCE_EVERY_MS);
  if (reply) {
    reply.addEventListener("input", () => {
      const now = Date.now();
      if (now - lastTypingSent < TYPING_SENT_EVERY_MS) return;
      lastTypingSent = now;
      socket.send({ type: "typing", internal: Boolean(internal && internal.checked) });
    });
  }
}

const workPage = document.querySelector("[data-live-work-page]");
if (workPage) liveWorkPage(workPage);

// --- Keyboard shortcuts, listed by "?": next and previous ticket, reply, internal note, take, search -------

const SHORTCUTS = [
  ["j", "Next ticket in the support queue (on a ticket) or next row (in a list)"],
  ["k", "Previous ticket in the support queue (on a ticket) or previous row (in a list)"],
  ["r", "Write a reply to the customer"],
  ["n", "Write an internal note"],
  ["t", "Take the ticket (assign it to me)"],
  ["/", "Search tickets"],
  ["?", "Show these shortcuts"],
];

function shortcutsDialog() {
  let dialog = document.getElementById("shortcuts");
  if (dialog) return dialog;
  dialog = document.createElement("dialog");
  dialog.id = "shortcuts";
  dialog.className = "console-shortcuts";
  dialog.setAttribute("aria-labelledby", "shortcuts-title");
  const title = document.createElement("h2");
  title.id = "shortcuts-title";
  title.textContent = "Keyboard shortcuts";
  const list = document.createElement("dl");
  for (const [key, what] of SHORTCUTS) {
    const term = document.createElement("dt");
    const kbd = document.createElement("kbd");
    kbd.textContent = key;
    term.append(kbd);
    const description = document.createElement("dd");
    description.textContent = what;
    list.append(term, description);
  }
  const close = document.createElement("button");
  close.type = "button";
  close.className = "button";
  close.textContent = "Close";
  close.addEventListener("click", () => dialog.close());
  dialog.append(title, list, close);
  document.body.append(dialog);
  return dialog;
}

function moveInList(step) {
  const links = [...document.querySelectorAll("#result_list tbody tr th a, #queue tbody tr a")];
  if (!links.length) return false;
  const at = links.indexOf(document.activeElement);
  const next = links[Math.min(links.length - 1, Math.max(0, at === -1 ? 0 : at + step))];
  next.focus();
  return true;
}

function writeReply(internal) {
  const content = document.getElementById("id_content");
  const box = document.getElementById("id_is_internal");
  if (!content) return;
  if (box) box.checked = internal;
  content.focus();
}

function onShortcut(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest("input, textarea, select, [contenteditable]")) return;
  const page = document.querySelector("[data-live-work-page]");
  const go = (url) => { if (url) window.location.assign(url); };
  switch (event.key) {
    case "?":
      shortcutsDialog().showModal();
      break;
    case "j":
      if (page) go(page.dataset.nextUrl); else if (!moveInList(1)) return;
      break;
    case "k":
      if (page) go(page.dataset.previousUrl); else if (!moveInList(-1)) return;
      break;
    case "r":
      writeReply(false);
      break;
    case "n":
      writeReply(true);
      break;
    case "t":
      document.getElementById("take-form")?.requestSubmit();
      break;
    case "/": {
      const search = document.getElementById("searchbar");
      if (search) search.focus(); else go("/admin/tickets/ticket/?q=");
      break;
    }
    default:
      return;
  }
  event.preventDefault();
}

document.addEventListener("keydown", onShortcut);
document.documentElement.dataset.shortcuts = "on"; // the keys work from here on
