// A third trusted site (help.localhost), third-party cookies blocked: a handoff token names its
// destination. Minted for support, it is refused on help (another trusted site, so the iframe
// there does send it to the broker), the refusal does not spend it, it then works on support,
// and only once.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { call, get, open, partitionSite, startBrowser, startWorld, PART_COOKIE } from "./harness.mjs";

let world;
before(async () => (world = await startWorld({ trusted: ["shop", "support", "help"] })));
after(async () => world?.stop());

/** Runs `fn(b1, b2)` with fresh profiles that block third-party cookies; b2 only starts if asked for. */
async function withBrowsers(fn) {
  const browsers = [];
  const start = async () => {
    const b = await startBrowser({ thirdPartyCookies: "blocked" });
    browsers.push(b);
    return b;
  };
  try {
    await fn(await start(), start);
  } catch (e) {
    e.message += browsers.map((b, i) => `\n--- browser ${i + 1} log ---\n${b.log()}`).join("") + `\n--- broker log ---\n${world.broker.log().slice(-4000)}`;
    throw e;
  } finally {
    for (const b of browsers) await b.stop();
  }
}

/** Records the browser's `/v1` calls to the broker as "METHOD /path STATUS (top-level site)". */
function watch(b) {
  const calls = [];
  b.context.on("response", (res) => {
    const u = new URL(res.url());
    if (!u.host.startsWith("broker.localhost:") || !u.pathname.startsWith("/v1/")) return;
    const top = new URL(res.frame().page().url()).hostname;
    calls.push(`${res.request().method()} ${u.pathname} ${res.status()} (${top})`);
  });
  return calls;
}

/** The partitioned cookie's partition sites in `b`, sorted. */
const partitions = async (b) =>
  (await b.cookies())
    .filter((c) => c.domain === "broker.localhost" && c.name === PART_COOKIE)
    .map(partitionSite)
    .sort();

test("third site: a token minted for support is refused on help, still works on support, then is spent", () =>
  withBrowsers(async (b, another) => {
    const { partners } = world;
    const calls = watch(b);
    const shop = await open(b, partners.url("shop"));
    assert.deepEqual(await call(shop, "mode"), { ok: true, value: "partitioned" }, "third-party cookies are blocked");
    await call(shop, "set", "chat", "c-3rd");
    const { value: forSupport } = await call(shop, "handoffUrl", partners.url("support", "/landing"));
    const m = /#baton=([\w.-]+)$/.exec(forSupport);
    assert.ok(m, `a decorated URL: ${forSupport}`);
    const token = m[1];
    // Control: the library would decorate a link to help too (help is trusted), with another token.
    const { value: forHelp } = await call(shop, "handoffUrl", partners.url("help", "/landing"));
    assert.match(forHelp, /#baton=[\w.-]+$/);
    assert.notEqual(forHelp.split("#baton=")[1], token);

    // Support's token on a help page: the library there takes it out of the address bar and
    // redeems it; the broker refuses it (wrong audience).
    const help = await open(b, partners.url("help", `/landing#baton=${token}`));
    assert.equal(help.url(), partners.url("help", "/landing"), "token removed from help's address bar");
    assert.equal(await get(help, "chat"), null, "help adopted nothing");
    assert.deepEqual(
      await help.evaluate(async () => [await new CookieProvider("chat", IFRAME).loadCookie(), document.cookie]),
      [null, ""],
      "Genesys API on help: nothing to load",
    );
    assert.ok(calls.includes("POST /v1/handoff/redeem 401 (help.localhost)"), calls.join("\n"));
    assert.deepEqual(await partitions(b), ["http://shop.localhost"], "no broker cookie under help");
    assert.match(world.broker.log(), /handoff token refused.*WrongAudience.*help\.localhost/);

    // The same token, on support, where it belongs: adopted.
    const support = await open(b, partners.url("support", `/landing#baton=${token}`));
    assert.equal(support.url(), partners.url("support", "/landing"));
    assert.equal(await get(support, "chat"), "c-3rd", "the wrong-audience attempt did not spend the token");
    assert.ok(calls.includes("POST /v1/handoff/redeem 200 (support.localhost)"), calls.join("\n"));
    assert.deepEqual(await partitions(b), ["http://shop.localhost", "http://support.localhost"]);
    // ... and help still has nothing (the support session did not leak to it).
    const help2 = await open(b, partners.url("help", "/other"));
    assert.equal(await get(help2, "chat"), null);

    // Spent: a second use in a fresh profile (no cookies at all) adopts nothing.
    const b2 = await another();
    const calls2 = watch(b2);
    const again = await open(b2, partners.url("support", `/landing#baton=${token}`));
    assert.equal(again.url(), partners.url("support", "/landing"));
    assert.equal(await get(again, "chat"), null, "a used token adopts nothing");
    assert.ok(calls2.includes("POST /v1/handoff/redeem 401 (support.localhost)"), calls2.join("\n"));
    assert.deepEqual(await partitions(b2), [], "no session was created for it");
  }));

test("third site: a link click from shop to help carries the session to help (help is a full partner)", () =>
  withBrowsers(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop"));
    await call(shop, "set", "chat", "to-help");
    await shop.click("#to-help");
    await shop.waitForURL((u) => u.host.startsWith("help.localhost:"));
    await shop.waitForLoadState("load");
    await shop.evaluate(() => client.ready);
    assert.equal(shop.url(), partners.url("help", "/landing"));
    assert.equal(await get(shop, "chat"), "to-help");
    assert.deepEqual(await partitions(b), ["http://help.localhost", "http://shop.localhost"]);
  }));
