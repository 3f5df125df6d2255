// Compiled (not run) by `scripts/test.sh` with `tsc --strict`: the ES module's types, imported the
// way a bundler or an import map resolves the package, accept the documented uses.
import { BatonError, connect, CookieProvider, initCookieProviderExtension, type Client, type Mode } from "../../static/baton.mjs";

async function modern(): Promise<void> {
  const baton: Client = connect("https://broker.example.com/iframe.html", { timeout: 3000 });
  const mode: Mode = await baton.mode();
  await baton.set("cart", "[]");
  baton.on("conflict", () => console.log("another session here"));
  await baton.identify("eyJ...");
  await baton.forget();
  try {
    await baton.get("cart");
  } catch (e) {
    if (e instanceof BatonError) console.log(e.code, mode);
  }
  // @ts-expect-error values are strings
  await baton.set("cart", 42);
}

async function genesys(): Promise<void> {
  const provider = new CookieProvider("chat", "https://broker.example.com/iframe.html");
  const loaded: string | null = await provider.loadCookie();
  await provider.forget();
  initCookieProviderExtension("chat", "https://broker.example.com/iframe.html")(null, { registerPlugin: () => ({ subscribe: () => undefined }) });
  console.log(loaded);
}

void modern;
void genesys;
