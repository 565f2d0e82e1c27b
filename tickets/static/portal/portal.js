// VirtEngine Support portal: the one hand-written script. It keeps pages live over the WebSocket API,
// shows times in the reader's zone, uploads dropped files, and signs in with a Keplr or Leap wallet.
// Everything else is server-rendered HTML and htmx; without this script the pages still work on reload.

import { fileSize } from "./humanise.js";
import { LiveSocket, announce, renderTimes } from "./live.js";

const TYPING_SEND_MS = 2000;
const TYPING_SHOW_MS = 4000;
const REFRESH_DEBOUNCE_MS = 150;
const PRESENCE_EVERY_MS = 20000;
const PRESENCE_FORGET_MS = 60000;

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// --- The ticket list: rows follow every event of the tickets the reader may see

const ROW_EVENTS = new Set([
  "ticket_created", "status_change", "priority_change", "assignment_change", "new_comment",
  "attachment_added", "deployment_linked", "deployment_unlinked", "sla_warning", "sla_breach",
  "sla_breached", "ticket_edited",
]);

function liveList(section) {
  // The list's filters as they are now: htmx pushes each new search or filter into the address bar.
  function currentFilters() {
    const filters = new URLSearchParams(window.location.search);
    filters.delete("cursor");
    return filters;
  }
  const rowUrl = (ticketId, filters) => `${section.dataset.rowUrl.replace("TICKET", ticketId)}?${filters}`;

  async function refreshRow(message) {
    const filters = currentFilters();
    const searching = Boolean(filters.get("q"));
    const response = await fetch(rowUrl(message.ticket_id, filters), { headers: { "HX-Request": "true" } });
    const existing = document.getElementById(`ticket-${message.ticket_id}`);
    if (response.status === 204) {
      if (existing) existing.remove();
      return;
    }
    if (!response.ok) return;
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    const row = template.content.firstElementChild;
    if (!row) return;
    row.classList.add("is-fresh");
    if (existing) {
      existing.replaceWith(row);
    } else if (message.type === "ticket_created" || searching) {
      // A new ticket, or (in a search) one that a change made match: it goes on top.
      const body = document.getElementById("ticket-rows");
      if (!body) return;
      body.closest("table").hidden = false;
      document.querySelector("#ticket-table .empty-state")?.remove();
      body.prepend(row);
      const title = row.querySelector(".tickets__title a")?.textContent.trim() ?? "";
      announce(`${message.type === "ticket_created" ? "New ticket" : "New match"}: ${title}`);
    } else {
      return;
    }
    renderTimes(row);
    if (window.htmx) window.htmx.process(row);
  }

  new LiveSocket("/api/v1/updates", {
    onMessage: (message) => { if (ROW_EVENTS.has(message.type)) refreshRow(message); },
  });
  sortFollowsSearch(section.querySelector(".filters"));
}

// --- A ticket's page: the thread, header and timeline follow events; typing shows; gaps replay

function liveTicket(article) {
  let lastSeq = Number(article.dataset.lastSeq || 0);
  let refreshTimer = null;
  let typingTimer = null;
  const typing = document.getElementById("typing");

  function refresh() {
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(() => {
      if (window.htmx) window.htmx.ajax("GET", article.dataset.liveUrl, { swap: "none" });
    }, REFRESH_DEBOUNCE_MS);
  }

  // Collision detection (provider and support only: customers get no presence): who else has the ticket
  // open, and a reply someone else sent after this page was opened.
  const viewers = new Map();
  const presence = document.getElementById("presence");
  const newer = document.getElementById("newer-replies");

  function showViewers() {
    if (!presence) return;
    const now = Date.now();
    for (const [id, viewer] of viewers) if (now - viewer.seen > PRESENCE_FORGET_MS) viewers.delete(id);
    const names = [...new Set([...viewers.values()].map((viewer) => viewer.user))];
    presence.hidden = names.length === 0;
    presence.textContent = names.length ? `Also on this ticket: ${names.join(", ")}` : "";
  }

  const socket = new LiveSocket(`/api/v1/tickets/${article.dataset.ticketId}/updates`, {
    sinceOf: () => lastSeq,
    onMessage: (message) => {
      if (message.type === "presence") {
        const { viewer, user, state } = message.data;
        if (state === "left") viewers.delete(viewer);
        else viewers.set(viewer, { user, seen: Date.now() });
        if (state === "joined") socket.send({ type: "presence" });
        showViewers();
        return;
      }
      if (message.type === "typing") {
        if (!typing) return;
        typing.textContent = `${message.data.user} is typing…`;
        window.clearTimeout(typingTimer);
        typingTimer = window.setTimeout(() => { typing.textContent = ""; }, TYPING_SHOW_MS);
        return;
      }
      if (message.type === "error" || typeof message.seq !== "number") return;
      if (message.seq <= lastSeq) return; // replayed twice, or already on the page
      lastSeq = message.seq;
      if (message.type === "new_comment") {
        if (typing) typing.textContent = "";
        if (newer && message.actor !== article.dataset.me) {
          newer.textContent = `${message.actor} replied after you opened this ticket: read it before you send yours.`;
          newer.hidden = false;
        }
        announce(`${message.data.is_internal ? "New internal note" : "New reply"} from ${message.data.author}`);
      }
      refresh();
    },
  });

  if (article.hasAttribute("data-staff")) {
    window.setInterval(() => { socket.send({ type: "presence" }); showViewers(); }, PRESENCE_EVERY_MS);
  }

  let lastTypingSent = 0;
  document.addEventListener("input", (event) => {
    if (!event.target.closest("[data-reply]") || event.target.name !== "content") return;
    const now = Date.now();
    if (now - lastTypingSent < TYPING_SEND_MS) return;
    lastTypingSent = now;
    const internal = event.target.form.querySelector("[name=is_internal]");
    socket.send({ type: "typing", internal: Boolean(internal && internal.checked) });
  });

}

// --- The list's sort: "Best match" only while searching

function sortFollowsSearch(form) {
  const { q, ordering: sort } = form.elements;
  const newest = sort.querySelector('[value="-created_at"]') ?? new Option("Newest first", "-created_at");
  const follow = () => {
    const searching = q.value.trim() !== "";
    sort.options[0].text = searching ? "Best match" : "Newest first";
    if (!searching && newest.selected) sort.selectedIndex = 0;
    if (searching) sort.options[0].after(newest); else newest.remove();
  };
  q.addEventListener("input", follow);
  follow();
}

// --- Uploads: dropped or chosen files go to the API at once; the form sends their ids

function once(element, name) {
  // htmx announces swapped-in content (and, once, the whole page): bind each element a single time.
  if (element.dataset[name]) return false;
  element.dataset[name] = "bound";
  return true;
}

function dropzone(zone) {
  if (!once(zone, "dropzoneBound")) return;
  const input = zone.querySelector("input[type=file]");
  const list = zone.querySelector("[data-uploads]");
  const error = zone.querySelector("[data-upload-error]");
  if (!input || !list) return;

  function showError(text) {
    error.textContent = text;
    error.hidden = !text;
  }

  async function upload(file) {
    const item = document.createElement("li");
    item.className = "upload";
    item.textContent = `Uploading ${file.name}…`;
    list.append(item);
    const body = new FormData();
    body.append("file", file);
    const response = await fetch(zone.dataset.uploadUrl, {
      method: "POST", body, headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      item.remove();
      showError(`${file.name}: ${data.error || "the upload failed"}`);
      return;
    }
    item.textContent = "";
    const hidden = Object.assign(document.createElement("input"), { type: "hidden", name: "attachment_ids", value: data.id });
    const name = Object.assign(document.createElement("span"), { textContent: data.filename });
    const size = Object.assign(document.createElement("span"), { className: "muted", textContent: fileSize(data.size) });
    const remove = Object.assign(document.createElement("button"), { type: "button", className: "button button--quiet", textContent: "Remove" });
    remove.dataset.removeUpload = "";
    item.append(hidden, name, " ", size, " ", remove);
  }

  async function take(files) {
    showError("");
    for (const file of files) await upload(file);
    input.value = ""; // sent already: the form carries their ids, not the files again
  }

  input.addEventListener("change", () => take([...input.files]));
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("is-over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("is-over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("is-over");
    take([...event.dataTransfer.files]);
  });
  zone.addEventListener("click", (event) => {
    if (event.target.matches("[data-remove-upload]")) event.target.closest("li").remove();
  });
}

// --- Forms sent once

function sendOnce(form) {
  if (!once(form, "onceBound")) return;
  form.addEventListener("submit", () => {
    for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = true;
  });
  form.addEventListener("htmx:afterRequest", (event) => {
    for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = false;
    if (event.detail.successful && form.matches("[data-reply]")) {
      form.reset();
      form.querySelector("[data-uploads]")?.replaceChildren();
    }
  });
}

// --- Sign-in with a wallet: Keplr and Leap share the API

const WALLET_NAMES = { keplr: "Keplr", leap: "Leap" };

// The wallet's own error text varies by wallet and version: say it in words.
function walletProblem(name, problem, chainId) {
  const text = String(problem?.message || problem || "");
  if (/reject|denied|declined|cancel/i.test(text) || problem?.code === 4001) {
    return `You declined the request in ${name}. Nothing was signed; try again when you are ready.`;
  }
  if (/chain info|no chain|not supported|unknown chain/i.test(text)) {
    return `${name} could not add the VirtEngine chain (${chainId}). Update ${name}, then try again.`;
  }
  return `${name} could not sign you in. Unlock ${name} and try again.`;
}

function walletSignIn(panel) {
  const error = document.getElementById("wallet-error");
  const problemText = error.querySelector("[data-wallet-problem]");
  const missing = error.querySelector("[data-wallet-missing]");
  const chain = JSON.parse(panel.dataset.chain || "{}");
  const fail = (text, { notInstalled = false } = {}) => {
    problemText.textContent = text;
    missing.hidden = !notInstalled;
    error.hidden = false;
  };

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw Object.assign(new Error(data.error || `The server refused (${response.status}).`), { server: true });
    return data;
  }

  for (const button of panel.querySelectorAll("[data-wallet]")) {
    button.addEventListener("click", async () => {
      error.hidden = true;
      const key = button.dataset.wallet;
      const name = WALLET_NAMES[key] || key;
      const wallet = window[key];
      if (!wallet) {
        fail(`${name} is not installed in this browser.`, { notInstalled: true });
        return;
      }
      button.disabled = true;
      const chainId = panel.dataset.chainId || chain.chainId || "virtengine-1";
      try {
        // Suggested first, so that `enable` cannot fail for want of the chain (a no-op if it knows it).
        if (typeof wallet.experimentalSuggestChain === "function") await wallet.experimentalSuggestChain(chain);
        await wallet.enable(chainId);
        const walletKey = await wallet.getKey(chainId);
        const address = walletKey.bech32Address;
        const challenge = await post(panel.dataset.challengeUrl, { address });
        const signed = await wallet.signArbitrary(challenge.chain_id, address, challenge.text);
        const done = await post(panel.dataset.verifyUrl, {
          token: challenge.token,
          address,
          signature: signed.signature,
          pub_key: signed.pub_key.value,
          mode: "arbitrary",
          next: panel.dataset.next,
        });
        location.assign(done.redirect);
      } catch (problem) {
        fail(problem?.server ? problem.message : walletProblem(name, problem, chainId));
        button.disabled = false;
      }
    });
  }
}

// --- Copy buttons (a lease ID), shown only with this script

function copyButton(button) {
  if (!once(button, "copyBound")) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const text = button.dataset.copy;
    await navigator.clipboard.writeText(text);
    button.dataset.copied = "";
    announce("Lease ID copied.");
    window.setTimeout(() => delete button.dataset.copied, 2000);
  });
}

// --- Start

renderTimes();
window.setInterval(() => renderTimes(), 30000);
// Swapped-in parts (out-of-band ones included) show their times like the rest of the page.
document.body.addEventListener("htmx:afterSettle", () => renderTimes());
function bind(root) {
  for (const form of root.querySelectorAll("form[data-once]")) sendOnce(form);
  for (const zone of root.querySelectorAll("[data-dropzone]")) dropzone(zone);
  for (const button of root.querySelectorAll("[data-copy]")) copyButton(button);
}
bind(document);
document.body.addEventListener("htmx:load", (event) => { if (event.detail.elt.querySelectorAll) bind(event.detail.elt); });
const walletPanel = document.querySelector("[data-wallet-sign-in]");
if (walletPanel) walletSignIn(walletPanel);
const listSection = document.querySelector("[data-live-list]");
if (listSection) liveList(listSection);
const ticketArticle = document.getElementById("ticket");
if (ticketArticle) liveTicket(ticketArticle);
