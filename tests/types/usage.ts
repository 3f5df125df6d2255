// Compiled (not run) by `scripts/test.sh` with `tsc --strict`: the shipped types accept the
// documented uses and reject misuse (`@ts-expect-error` fails the build if the line compiles).
/// <reference path="../../static/cookie-provider.d.ts" />

async function modern(): Promise<void> {
  const baton: Baton.Client = Baton.connect("https://broker.example.com/iframe.html", { timeout: 3000 });
  await baton.ready;
  const v: string | null = await baton.get("cart");
  await baton.set("cart", v ?? "[]");
  const mode: Baton.Mode = await baton.mode();
  const off: () => void = baton.on("change", () => {});
  off();
  const url: string = await baton.handoffUrl("https://support.example.org/");
  const win: Window | null = baton.open("https://support.example.org/", "_blank");
  void win;
  await baton.delete("cart");
  await baton.end();
  try {
    await baton.get("x");
  } catch (e) {
    if (e instanceof Baton.BatonError) console.log(e.code, mode, url);
  }
  // @ts-expect-error values are strings
  await baton.set("cart", 42);
  // @ts-expect-error only "change" events exist
  baton.on("other", () => {});
}

async function genesys(): Promise<void> {
  const cookieProvider = new CookieProvider("customer-defined-session-cookie", "https://broker.example.com/iframe.html", (ok) => {
    if (!ok) alert("please enable your third-party cookies");
  });
  const loaded: string | null = await cookieProvider.loadCookie();
  const saved: string | null = await cookieProvider.saveCookie();
  const enabled: boolean = await cookieProvider.cookieTest();
  await cookieProvider.cookieTest((isEnabled: boolean) => console.log(isEnabled));
  const ext = initCookieProviderExtension("customer-defined-session-cookie", "https://broker.example.com/iframe.html");
  ext(null, { registerPlugin: () => ({ subscribe: () => undefined }) }, {});
  console.log(loaded, saved, enabled, window.Baton === Baton);
}

void modern;
void genesys;
