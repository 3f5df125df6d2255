// Types for baton's cookie-provider.js (served at `{broker}/cookie-provider.js`), a classic script
// that defines three globals: `CookieProvider`, `initCookieProviderExtension` (both drop-in
// compatible with Genesys's "Persistent Chat across Different Domains") and `Baton` (the promise
// API). The declarations themselves are those of the ES module (`baton.d.mts`), one source.

import type * as M from "./baton.mjs";

declare global {
  /** The promise API. */
  namespace Baton {
    type Mode = M.Mode;
    type Options = M.Options;
    type Client = M.Client;
    type BatonError = M.BatonError;
    const BatonError: typeof M.BatonError;
    const connect: typeof M.connect;
  }

  type CookieProvider = M.CookieProvider;
  const CookieProvider: typeof M.CookieProvider;
  type CookieProviderCXBus = M.CookieProviderCXBus;
  const initCookieProviderExtension: typeof M.initCookieProviderExtension;

  interface Window {
    Baton: typeof Baton;
    CookieProvider: typeof M.CookieProvider;
    initCookieProviderExtension: typeof M.initCookieProviderExtension;
  }
}

export {};
