// Third-party cookies blocked (Chromium's default here): the partitioned cookie keeps the session
// per top-level site, and handoff tokens carry it across sites.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { call, get, open, partitionSite, startBrowser, startWorld, until, withBrowser as harnessWithBrowser, PART_COOKIE, PLAIN_COOKIE } from "./harness.mjs";

let world;
before(async () => (world = await startWorld()));
after(async () => world?.stop());

/** Runs `fn(browser)` in a fresh profile (see harness `withBrowser`). */
const withBrowser = (fn) => harnessWithBrowser(world, "blocked", fn);

/** Waits until `page` is on `site` and its client is ready (after a cross-site navigation). */
async function arrived(page, site) {
  await page.waitForURL((u) => u.host.startsWith(`${site}.localhost:`));
  await page.waitForLoadState("load");
  await page.waitForFunction(() => window.client).catch(() => {});
  await page.evaluate(() => window.client && window.client.ready);
}

test("3PC blocked: the value stays on shop (reload, other pages, after visiting support), not on support", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop"));
    assert.deepEqual(await call(shop, "mode"), { ok: true, value: "partitioned" });
    assert.equal(await shop.evaluate(() => new CookieProvider("c", IFRAME).cookieTest()), true);
    assert.deepEqual(await call(shop, "set", "k", "v1"), { ok: true, value: null });

    await shop.reload();
    await shop.evaluate(() => client.ready);
    assert.equal(await get(shop, "k"), "v1", "after reload");
    await shop.goto(partners.url("shop", "/other"));
    await shop.evaluate(() => client.ready);
    assert.equal(await get(shop, "k"), "v1", "on another page of shop");

    await shop.goto(partners.url("support"));
    await shop.evaluate(() => client.ready);
    assert.equal(await get(shop, "k"), null, "support has no session before a handoff");
    assert.deepEqual(await call(shop, "mode"), { ok: true, value: "partitioned" });

    await shop.goto(partners.url("shop"));
    await shop.evaluate(() => client.ready);
    assert.equal(await get(shop, "k"), "v1", "back on shop");

    const cookies = (await b.cookies()).filter((c) => c.domain === "broker.localhost");
    assert.equal(cookies.find((c) => c.name === PLAIN_COOKIE), undefined, `no unpartitioned cookie: ${JSON.stringify(cookies)}`);
    const part = cookies.filter((c) => c.name === PART_COOKIE);
    assert.deepEqual(part.map(partitionSite), ["http://shop.localhost"], JSON.stringify(cookies));
    assert.ok(part[0].httpOnly && part[0].secure && part[0].sameSite === "None", JSON.stringify(part[0]));
  }));

test("3PC blocked: Genesys API keeps the cookie per site (saved on shop, absent on support)", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop", "/bare"));
    assert.equal(
      await shop.evaluate(() => {
        document.cookie = "chat-session=abc; path=/";
        return new CookieProvider("chat-session", IFRAME).saveCookie();
      }),
      "abc",
    );
    const support = await open(b, partners.url("support", "/bare"));
    assert.deepEqual(await support.evaluate(async () => [await new CookieProvider("chat-session", IFRAME).loadCookie(), document.cookie]), [null, ""]);
    const shop2 = await open(b, partners.url("shop", "/other"));
    await shop2.evaluate(() => (document.cookie = "chat-session=; max-age=0; path=/"));
    assert.deepEqual(await shop2.evaluate(async () => [await new CookieProvider("chat-session", IFRAME).loadCookie(), document.cookie]), ["abc", "chat-session=abc"]);
  }));

test("handoff: a link click carries the session to support and the token leaves the address bar", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop"));
    await call(shop, "set", "k", "by-link");
    await shop.click("#to-support");
    await arrived(shop, "support");
    assert.equal(shop.url(), partners.url("support", "/landing#section"), "token removed, own fragment kept");
    assert.equal(await shop.evaluate(() => location.hash), "#section");
    assert.equal(await get(shop, "k"), "by-link");
    // support now has its own partitioned cookie for the same session
    const part = (await b.cookies()).filter((c) => c.name === PART_COOKIE).map(partitionSite).sort();
    assert.deepEqual(part, ["http://shop.localhost", "http://support.localhost"]);
    // ... so a change on either side is seen on the other.
    await call(shop, "set", "k", "changed-on-support");
    const back = await open(b, partners.url("shop"));
    assert.equal(await get(back, "k"), "changed-on-support");
  }));

test("handoff: target=_blank, ctrl-click and middle click open a new tab that has the session", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop"));
    await call(shop, "set", "k", "by-blank");
    const [tab] = await Promise.all([b.context.waitForEvent("page"), shop.click("#to-support-blank")]);
    await arrived(tab, "support");
    assert.equal(tab.url(), partners.url("support", "/landing"));
    assert.equal(await get(tab, "k"), "by-blank");
    assert.equal(await tab.evaluate(() => window.opener), null, "noopener");
    assert.equal(shop.url(), partners.url("shop"), "the page itself stays");

    for (const how of [{ modifiers: ["Control"] }, { button: "middle" }]) {
      const [t] = await Promise.all([b.context.waitForEvent("page"), shop.click("#to-support", how)]);
      await arrived(t, "support");
      assert.equal(t.url(), partners.url("support", "/landing#section"), JSON.stringify(how));
      assert.equal(await get(t, "k"), "by-blank");
    }
  }));

test("handoff: handoffUrl() for programmatic navigation; a token works once", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop"));
    const target = partners.url("support", "/landing?q=1");
    const none = await call(shop, "handoffUrl", target);
    assert.deepEqual(none, { ok: true, value: target }, "no session, no token");
    await call(shop, "set", "k", "by-url");
    const { value: url } = await call(shop, "handoffUrl", target);
    assert.match(url, /^http:\/\/support\.localhost:\d+\/landing\?q=1#baton=[\w.-]+$/);
    assert.equal((await call(shop, "handoffUrl", partners.url("evil", "/x"))).value, partners.url("evil", "/x"), "untrusted: plain");
    assert.equal((await call(shop, "handoffUrl", "/other")).value, partners.url("shop", "/other"), "own site: plain");

    await shop.evaluate((u) => (location.href = u), url);
    await arrived(shop, "support");
    assert.equal(shop.url(), target);
    assert.equal(await get(shop, "k"), "by-url");

    // The same link again, in a profile with nothing for support: the token is spent.
    await b.context.clearCookies();
    const again = await b.newPage();
    await again.goto(url);
    await again.evaluate(() => client.ready);
    assert.equal(again.url(), target);
    assert.equal(await get(again, "k"), null, "a used token adopts nothing");
  }));

test("handoff: a link to an untrusted site is not decorated", () =>
  withBrowser(async (b) => {
    const { partners } = world;
    const shop = await open(b, partners.url("shop"));
    await call(shop, "set", "k", "secret");
    await shop.click("#to-evil");
    await shop.waitForURL((u) => u.host.startsWith("evil.localhost:"));
    await shop.waitForLoadState("load");
    assert.equal(await shop.evaluate(() => window.arrivedHash), "");
    assert.equal(shop.url(), partners.url("evil", "/landing"));
  }));
