/**
 * baton demo: what a Genesys page would run on the demo partner sites (`baton demo`).
 *
 * - `CXBus`: a small stand-in for the Genesys Widgets bus (plugins publish and subscribe to
 *   events and register commands), so the page can wire the library the way the Genesys guide
 *   "Persistent Chat across Different Domains" shows;
 * - a chat widget with an echo agent. The chat (id and last messages) lives in the first-party
 *   cookie `demo-chat-session`, as a Genesys chat's session does;
 * - the `CookieProviderExtension` from cookie-provider.js: it restores that cookie from the broker
 *   on load, saves it when the chat starts (`WebChat.started`) and deletes it everywhere when the
 *   chat ends (`WebChat.ended`). After every message the widget saves it again through a
 *   `CookieProvider` of its own (the library shares one iframe between them).
 *
 * No dependencies, no inline script (the pages' CSP allows only this file and the broker's).
 */
(() => {
  "use strict";

  const NAME = "demo-chat-session";
  /** Which demo site this page belongs to: "shop" or "support" (the body's class). */
  const SITE = document.body.className;
  const IFRAME_URL = document.body.dataset.iframeUrl || "";
  const MAX_MESSAGES = 20;
  const MAX_TEXT = 200;
  /** Browsers keep at most ~4 KiB per cookie; stay well below by dropping the oldest messages. */
  const MAX_COOKIE = 3000;
  const ECHO_DELAY_MS = 300;

  /** @typedef {{event: string, data: unknown}} BusEvent */
  /**
   * @typedef {object} Plugin
   * @property {(event: string, fn: (e: BusEvent) => void) => void} subscribe full event name, e.g. "WebChat.started"
   * @property {(event: string, data?: unknown) => void} publish short name: "started" from plugin "WebChat" is "WebChat.started"
   * @property {(command: string, fn: (data: unknown) => unknown) => void} registerCommand
   */

  /** @type {Map<string, Array<(e: BusEvent) => void>>} */
  const subscribers = new Map();
  /** @type {Map<string, (data: unknown) => unknown>} */
  const commands = new Map();

  const CXBus = {
    /**
     * @param {string} name
     * @returns {Plugin}
     */
    registerPlugin(name) {
      return {
        subscribe(event, fn) {
          subscribers.set(event, [...(subscribers.get(event) || []), fn]);
        },
        publish(event, data) {
          const full = name + "." + event;
          for (const fn of subscribers.get(full) || []) {
            // One failing subscriber must not keep the others from hearing the event.
            try {
              fn({ event: full, data });
            } catch (e) {
              console.error(e);
            }
          }
        },
        registerCommand(command, fn) {
          commands.set(name + "." + command, fn);
        },
      };
    },
    /**
     * Runs a registered command, e.g. `CXBus.command("WebChat.open")`.
     * @param {string} command
     * @param {unknown} [data]
     * @returns {Promise<unknown>}
     */
    command(command, data) {
      const fn = commands.get(command);
      return fn ? Promise.resolve(data).then(fn) : Promise.reject(new Error("unknown command " + command));
    },
  };

  const g = (window._genesys = window._genesys || {});
  g.widgets = g.widgets || {};
  g.widgets.bus = CXBus;
  g.widgets.extensions = g.widgets.extensions || {};
  window.CXBus = CXBus;

  // ---- The chat's first-party cookie ----

  /** @typedef {{from: "you" | "agent", text: string}} Message */
  /** @typedef {{id: string, messages: Message[], site?: string, origin?: string}} Chat */

  /** @returns {Chat | null} the chat in this page's cookie, when there is a well-formed one */
  const readChat = () => {
    const pair = document.cookie.split("; ").find((c) => c.startsWith(NAME + "="));
    if (!pair) return null;
    try {
      const chat = JSON.parse(decodeURIComponent(pair.slice(NAME.length + 1)));
      if (!chat || typeof chat.id !== "string" || !Array.isArray(chat.messages)) return null;
      chat.messages = chat.messages.filter(
        (m) => m && (m.from === "you" || m.from === "agent") && typeof m.text === "string",
      );
      return chat;
    } catch {
      return null;
    }
  };

  /** @param {Chat} chat written to the cookie, oldest messages dropped to keep it small */
  const writeChat = (chat) => {
    chat.messages = chat.messages.slice(-MAX_MESSAGES);
    let value = encodeURIComponent(JSON.stringify(chat));
    while (value.length > MAX_COOKIE && chat.messages.length > 1) {
      chat.messages.shift();
      value = encodeURIComponent(JSON.stringify(chat));
    }
    document.cookie = NAME + "=" + value + "; path=/; SameSite=Lax";
  };

  const clearChat = () => {
    document.cookie = NAME + "=; path=/; max-age=0";
  };

  // ---- The widget ----

  /**
   * @param {string} tag
   * @param {object} [props]
   * @param {...(Node | string)} children
   * @returns {HTMLElement}
   */
  const el = (tag, props = {}, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children);
    return node;
  };

  const launch = el("button", { type: "button", className: "chat-launch", textContent: "Chat with us", hidden: true });
  const log = el("ol", { className: "chat-log" });
  log.setAttribute("aria-live", "polite");
  const input = /** @type {HTMLInputElement} */ (
    el("input", { name: "message", placeholder: "Type a message…", autocomplete: "off", maxLength: MAX_TEXT, required: true })
  );
  input.setAttribute("aria-label", "Message");
  const form = el("form", { className: "chat-form" }, input, el("button", { textContent: "Send" }));
  const endButton = el("button", { type: "button", className: "chat-end", textContent: "End chat" });
  const sync = el("p", { className: "chat-sync" });
  /** Where the chat came from, when it started on the other site. */
  const carried = el("p", { className: "chat-carried", hidden: true });
  const panel = el(
    "section",
    { className: "chat-panel", hidden: true },
    el("header", {}, el("span", { textContent: "Chat with Kettle & Co." }), endButton),
    carried,
    log,
    form,
    sync,
  );
  const widget = el("aside", { className: "chat" }, launch, panel);
  widget.setAttribute("aria-label", "Chat");
  document.body.append(widget);

  const chatPlugin = CXBus.registerPlugin("WebChat");
  /** @type {Chat | null} */
  let chat = null;

  const render = () => {
    launch.hidden = !!chat;
    panel.hidden = !chat;
    log.replaceChildren(
      ...(chat ? chat.messages : []).map((m) =>
        el("li", { className: m.from }, el("b", { textContent: m.from === "you" ? "You:" : "Agent Echo:" }), " " + m.text),
      ),
    );
    log.scrollTop = log.scrollHeight;
  };

  /**
   * @param {"saving" | "saved" | "failed" | ""} state
   * @param {string} text
   */
  const showSync = (state, text) => {
    sync.dataset.state = state;
    sync.textContent = text;
  };

  // Saves run one after another, so that an older value never lands after a newer one. Each
  // reads the cookie when it runs, so a save queued behind others sends the latest chat.
  let saving = Promise.resolve();
  let queued = 0;
  /** @param {"saved" | "failed"} state @param {string} text shown once the last queued save is done */
  const settle = (state, text) => {
    if (--queued === 0) showSync(state, text);
  };
  const save = () => {
    queued++;
    showSync("saving", "Saving to the broker…");
    saving = saving
      .then(() => Promise.all([provider.saveCookie(), mode]))
      .then(
        // Only where the broker keeps something does the other site get to see the chat.
        ([, m]) =>
          m === "none"
            ? settle("failed", "Not carried: this browser lets the broker keep nothing, so the chat stays on this page.")
            : settle("saved", "Saved: the other site will see this chat."),
        (e) => settle("failed", "Not saved (" + (e && e.code ? e.code : e) + "): the chat stays on this site."),
      );
  };

  /** @param {Message["from"]} from @param {string} text */
  const add = (from, text) => {
    if (!chat) return;
    chat.messages.push({ from, text });
    writeChat(chat);
    render();
    save();
  };

  const start = () => {
    if (chat) return;
    chat = {
      id: "chat-" + crypto.randomUUID().slice(0, 8),
      messages: [{ from: "agent", text: "Hello! I repeat what you write. Then visit the other site: I will still be here." }],
      site: SITE,
      origin: location.origin,
    };
    writeChat(chat);
    render();
    // The Genesys chat announces itself; the CookieProvider extension saves the cookie on this.
    chatPlugin.publish("started", { id: chat.id });
    input.focus();
  };

  /** @param {string} raw */
  const send = (raw) => {
    const text = raw.trim().slice(0, MAX_TEXT);
    if (!chat || !text) return;
    const id = chat.id;
    add("you", text);
    setTimeout(() => chat && chat.id === id && add("agent", text), ECHO_DELAY_MS);
  };

  const end = () => {
    if (!chat) return;
    chat = null;
    clearChat();
    render();
    showSync("", "");
    // After the queued saves (which now find no cookie and send nothing), so that none of them
    // lands after the deletion. The extension deletes the value in the broker, for every site.
    saving = saving.then(() => chatPlugin.publish("ended", {}));
  };

  chatPlugin.registerCommand("open", start);
  chatPlugin.registerCommand("end", end);
  launch.addEventListener("click", () => CXBus.command("WebChat.open"));
  endButton.addEventListener("click", () => CXBus.command("WebChat.end"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    send(input.value);
    input.value = "";
  });

  // ---- The persistence mode, for the newcomer ----

  const bar = /** @type {HTMLElement} */ (document.getElementById("demo-mode"));
  /** @type {Record<string, string>} */
  const MODES = {
    unpartitioned: "third-party cookies are allowed: the broker's own cookie follows you from site to site.",
    partitioned:
      "third-party cookies are blocked: the broker keeps one cookie per site, and links to the other site carry a one-time handoff token (#baton=…).",
    page: "this browser keeps no cookie for the broker at all: each site keeps a key of its own in its storage, and links to the other site carry a one-time handoff token (#baton=…).",
    none: "this browser keeps no state for the broker: the chat stays on this page.",
  };
  /** @param {string} mode */
  const showMode = (mode) => {
    bar.dataset.mode = mode;
    bar.replaceChildren("baton demo · persistence: ", el("strong", { textContent: mode }), " · " + (MODES[mode] || ""));
  };

  /** The Genesys guide's `showThirdPartyCookieNotification`, as a hint instead of an alert. */
  const showThirdPartyCookieNotification = (/** @type {boolean} */ enabled) => {
    if (!enabled) bar.classList.add("warn");
  };

  // ---- Wiring, as in the Genesys guide ----

  // Without the library there is no chat to offer: the widget stays hidden.
  if (typeof window.initCookieProviderExtension !== "function") {
    showMode("none");
    bar.append(" (cookie-provider.js did not load from the broker)");
    return;
  }
  g.widgets.extensions.CookieProviderExtension = window.initCookieProviderExtension(NAME, IFRAME_URL, showThirdPartyCookieNotification);
  // What widgets-core does with each extension: call it with jQuery, the bus and its Common
  // utilities. The extension uses only the bus.
  for (const extension of Object.values(g.widgets.extensions)) extension(null, CXBus, {});

  const provider = new window.CookieProvider(NAME, IFRAME_URL);
  const mode = window.Baton.connect(IFRAME_URL)
    .mode()
    .catch(() => "none");
  mode.then(showMode);

  // The extension's own loadCookie tells nobody when it is done; this one (same iframe, same
  // value) tells the widget when the broker's copy is in the cookie.
  Promise.all([provider.loadCookie().catch(() => undefined), mode]).then(([value, m]) => {
    // Where the broker keeps state it is the source of truth: no value there means the chat was
    // ended, perhaps on the other site, and a leftover cookie on this one must not revive it.
    if (value === null && m !== "none") clearChat();
    chat = readChat();
    render();
    if (chat) {
      chatPlugin.publish("restored", { id: chat.id });
      if (typeof value === "string") showSync("saved", "Restored from the broker.");
      // In plain words, for the newcomer: this is the same chat, and this is where it started.
      if (chat.site && chat.site !== SITE) {
        const there = chat.site === "shop" ? "the shop" : "the support site";
        carried.textContent = `This chat started on ${there} (${chat.origin}) and was carried here, to another site, by baton.`;
        carried.hidden = false;
      }
    }
  });
})();
