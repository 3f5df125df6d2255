// Types for baton's partner library as an ES module (`baton.mjs`, served at `{broker}/baton.mjs`
// and published as the npm package's entry). The same library as the classic script
// `cookie-provider.js`, whose global types (`cookie-provider.d.ts`) are built from these.
// See docs/PROTOCOL.md.

/** Where the broker keeps the session in this browser. */
export type Mode = "unpartitioned" | "partitioned" | "page" | "none";

/**
 * Why a request failed: `timeout`, `iframe_error` (the iframe did not load or does not answer),
 * `bad_request` (a bad key or value, refused by the iframe), `network` (the iframe cannot reach
 * the broker), or the broker's own error code (`too_large`, `store_unavailable`...).
 */
export class BatonError extends Error {
  constructor(code: string, message?: string);
  readonly name: "BatonError";
  readonly code: "timeout" | "iframe_error" | "bad_request" | "network" | (string & {});
}

export interface Options {
  /** Per-request timeout in milliseconds (default 5000). */
  timeout?: number;
}

export interface Client {
  /**
   * Resolves once the iframe answered (and a handoff token in the page's URL was redeemed);
   * rejects with `iframe_error` when the iframe loaded but does not answer.
   */
  readonly ready: Promise<void>;
  /** The value stored under `key` (`[A-Za-z0-9._-]{1,128}`), or null. */
  get(key: string): Promise<string | null>;
  /** Stores `value` under `key`, creating the session when there is none. */
  set(key: string, value: string): Promise<null>;
  delete(key: string): Promise<null>;
  /** Ends the session on every site. */
  end(): Promise<null>;
  mode(): Promise<Mode>;
  /**
   * `url` (absolute or relative to the page) with a single-use handoff token in its fragment
   * (`#baton=TOKEN`), for navigation by script to another trusted site; the plain URL when there
   * is no session, the destination is not trusted, or anything fails. Never rejects.
   */
  handoffUrl(url: string): Promise<string>;
  /**
   * Opens `url` in a new window at once, inside the user's gesture (popup blockers allow it),
   * carrying the session to another trusted site: with a token minted when a link to that site was
   * hovered or focused, or else into a blank window (its `opener` cut) that navigates to the
   * decorated URL when the token comes. Returns what `window.open` returned.
   */
  open(url: string, target?: string): Window | null;
  /**
   * Joins the session of the customer that `assertion` (the partner's signed identity assertion,
   * docs/identity.md) names, on this site. A page carrying `<meta name="baton-identity">` has it
   * done when the library starts. Rejects with the broker's `identity_*` code for a refused
   * assertion, or `session_conflict` when this browser already holds another session with values
   * here (which is kept; a `conflict` event also fires).
   */
  identify(assertion: string): Promise<null>;
  /**
   * Detaches this browser from the session it reaches, on every site (a customer logging out on a
   * shared computer); the customer's other devices keep it. `end()` ends it for everyone.
   */
  forget(): Promise<null>;
  /**
   * Calls `listener` on `change`: another tab of this site changed or ended the session, or the page
   * came back from the back/forward cache (re-read it); on `conflict`: a handoff link or an
   * identity assertion met another session with values in this browser, and this page kept its own
   * (the classic script also dispatches `baton:change` and `baton:conflict` on `window`).
   * Returns a function that unsubscribes.
   */
  on(type: "change" | "conflict", listener: () => void): () => void;
}

/**
 * Connects to the broker iframe at `iframeUrl` (e.g. `https://broker.example.com/iframe.html`).
 * Clients of the same URL on a page share one hidden iframe: the one the page wrote itself, if its
 * `src` resolves to exactly that URL (the fast embed: it loads alongside the library), or one
 * the library adds.
 */
export function connect(iframeUrl: string, options?: Options): Client;

/** Genesys-compatible provider: keeps the page's first-party cookie `name` in step with the broker. */
export class CookieProvider {
  /**
   * Adds the hidden broker iframe to the page, or adopts the one the page wrote with that `src`.
   * @param name the session cookie's name, also the key in the broker
   * @param iframeUrl the broker's iframe URL
   * @param showThirdPartyCookieNotification default callback of `cookieTest`
   */
  constructor(name: string, iframeUrl: string, showThirdPartyCookieNotification?: (enabled: boolean) => void);
  readonly name: string;
  readonly client: Client;
  /**
   * Writes the broker's value into the page's cookie `name`; resolves with it, or null when there
   * is none (then a stale page cookie, from a chat ended on another site, is removed too, unless
   * the broker can keep no state in this browser).
   */
  loadCookie(): Promise<string | null>;
  /** Stores the page's cookie `name` in the broker; resolves with the value, or null (nothing stored) when the page has none. */
  saveCookie(): Promise<string | null>;
  /** Removes the value from the broker (so from every site) and the page's cookie. */
  deleteCookie(): Promise<null>;
  /**
   * Detaches this browser from the identified customer's session on every site (call it on logout)
   * and removes the page's cookie `name`.
   */
  forget(): Promise<null>;
  /** Whether the broker can keep state in this browser; also calls `callback` (or the constructor's) with it. */
  cookieTest(callback?: (enabled: boolean) => void): Promise<boolean>;
}

/** Genesys widgets' CXBus, as far as the extension uses it. */
export interface CookieProviderCXBus {
  registerPlugin(name: string): {
    subscribe(event: string, handler: (e?: unknown) => void): unknown;
    /** When present, the extension publishes `loaded` (bus event `CookieProvider.loaded`) with the restored value. */
    publish?(event: string, data?: unknown): unknown;
  };
}

/**
 * A Genesys widgets extension (`window._genesys.widgets.extensions.CookieProviderExtension`):
 * loads the cookie at start (then publishes `CookieProvider.loaded`), runs `cookieTest(callback)`
 * when a callback is given, saves the cookie on `WebChat.started` and deletes it everywhere on
 * `WebChat.ended`.
 */
export function initCookieProviderExtension(
  name: string,
  iframeUrl: string,
  callback?: (enabled: boolean) => void,
): ($: unknown, CXBus: CookieProviderCXBus, Common?: unknown) => void;
