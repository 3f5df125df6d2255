// `baton-demo` end to end, as a newcomer uses it: the real binary, real headless Chromium, the
// demo's own pages. In both cookie modes: start a chat on the shop, get the echo, follow the link
// to support and find the chat there; end it on support and find it gone on the shop.
//
// Also writes a screenshot of support with the carried-over chat to test-results/demo.png, and to
// docs/demo.png (the README's picture) when BATON_UPDATE_SCREENSHOTS=1.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { partitionSite, startBrowser, startDemo, until } from "./harness.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const KEY = "demo-chat-session";

let demo;
before(async () => (demo = await startDemo()));
after(async () => demo?.stop());

test("baton-demo prints the walkthrough's URL first, then the shop's, and no production warning", () => {
  const out = demo.log();
  const walkthrough = out.indexOf(`open http://localhost:${demo.port}/ for the walkthrough`);
  assert.ok(walkthrough >= 0, out);
  assert.ok(out.indexOf(`open ${demo.shop}/\n`) > walkthrough, out);
  assert.doesNotMatch(out, /WARN/);
});

/** The transcript lines of the chat widget on `page`. */
const transcript = (page) => page.locator(".chat-log li").allInnerTexts();

/** Waits until the widget finished restoring (the launcher or the panel shows). */
const restored = (page) => page.locator(".chat-launch:visible, .chat-panel:visible").first().waitFor();

/** Sends `text` in the open chat and waits for the echo and for the save to the broker. */
async function say(page, text) {
  await page.fill(".chat-form input", text);
  await page.press(".chat-form input", "Enter");
  await page.locator(".chat-log li.agent", { hasText: `Agent Echo: ${text}` }).waitFor();
  await page.locator('.chat-sync[data-state="saved"]').waitFor();
}

/** Clicks the link named `name` and waits for the page on `origin` to load. */
async function follow(page, name, origin) {
  await Promise.all([
    page.waitForURL((u) => u.origin === origin, { waitUntil: "load" }),
    page.getByRole("link", { name, exact: true }).click(),
  ]);
  await restored(page);
}

for (const [cookies, mode] of [
  ["allowed", "unpartitioned"],
  ["blocked", "partitioned"],
]) {
  test(`third-party cookies ${cookies}: the chat follows from shop to support and ends everywhere`, async () => {
    const b = await startBrowser({ thirdPartyCookies: cookies });
    try {
      const page = await b.newPage();
      await page.setViewportSize({ width: 1100, height: 700 });
      /** Every URL the tab was at, fragments included (to see the handoff token in use). */
      const urls = [];
      page.on("framenavigated", (f) => f === page.mainFrame() && urls.push(f.url()));

      await page.goto(`${demo.shop}/`);
      await restored(page);
      await page.locator(`#demo-mode[data-mode="${mode}"]`).waitFor();
      assert.match(await page.locator("#demo-mode").innerText(), new RegExp(`persistence: ${mode} `));

      await page.getByRole("button", { name: "Chat with us" }).click();
      await say(page, "Where is my teapot?");
      const onShop = await transcript(page);
      assert.deepEqual(onShop.slice(-2), ["You: Where is my teapot?", "Agent Echo: Where is my teapot?"]);

      // Another page of the same site: the chat reopens from the cookie.
      await follow(page, "Cart (1)", demo.shop);
      assert.deepEqual(await transcript(page), onShop);
      await follow(page, "Continue shopping", demo.shop);

      await follow(page, "Visit our support site", demo.support);
      assert.deepEqual(await transcript(page), onShop, "the chat crossed to support");
      assert.equal(
        await page.locator(".chat-carried").innerText(),
        `This chat started on the shop (${demo.shop}) and was carried here, to another site, by baton.`,
      );
      assert.ok(!page.url().includes("baton="), `token left in the address bar: ${page.url()}`);
      if (mode === "partitioned") {
        assert.ok(
          urls.some((u) => u.startsWith(`${demo.support}/#baton=`)),
          `the link carried no handoff token: ${urls.join(" ")}`,
        );
      }
      await page.locator(`#demo-mode[data-mode="${mode}"]`).waitFor();
      await say(page, "Thanks, I will read the FAQ");
      if (mode === "partitioned") {
        const shot = path.join(root, "test-results/demo.png");
        await mkdir(path.dirname(shot), { recursive: true });
        await page.screenshot({ path: shot });
        if (process.env.BATON_UPDATE_SCREENSHOTS === "1") await page.screenshot({ path: path.join(root, "docs/demo.png") });
      }

      await follow(page, "Shipping FAQ", demo.support);
      const onSupport = await transcript(page);
      assert.deepEqual(onSupport.slice(0, onShop.length), onShop);
      assert.deepEqual(onSupport.slice(-2), ["You: Thanks, I will read the FAQ", "Agent Echo: Thanks, I will read the FAQ"]);

      const broker = await b.cookies().then((all) => all.filter((c) => c.domain === "broker.localhost"));
      const plain = broker.filter((c) => !partitionSite(c));
      if (mode === "unpartitioned") assert.ok(plain.length > 0, `no unpartitioned broker cookie: ${JSON.stringify(broker)}`);
      else assert.deepEqual(plain, [], "third-party cookies are blocked: no unpartitioned broker cookie");

      // End on support: gone from the broker for every site, then from the shop's page too.
      await page.getByRole("button", { name: "End chat" }).click();
      await page.getByRole("button", { name: "Chat with us" }).waitFor();
      await until(
        () => page.evaluate((k) => Baton.connect(document.body.dataset.iframeUrl).get(k).then((v) => v === null), KEY),
        "the broker to forget the chat",
      );
      assert.ok(!(await page.evaluate(() => document.cookie)).includes(KEY));

      await follow(page, "Back to the shop", demo.shop);
      assert.equal(await page.locator(".chat-panel").isVisible(), false, "the ended chat came back on shop");
      assert.deepEqual(await transcript(page), []);
      assert.ok(!(await page.evaluate(() => document.cookie)).includes(KEY), "the shop's stale cookie was cleared");
      await page.getByRole("button", { name: "Chat with us" }).waitFor();
      // CSP-clean and error-free: nothing refused, nothing thrown.
      assert.doesNotMatch(b.log(), /\[pageerror\]|Refused to|Content Security Policy/);
    } catch (e) {
      e.message += `\n--- browser log ---\n${b.log()}\n--- demo output ---\n${demo.log().slice(-4000)}`;
      throw e;
    } finally {
      await b.stop();
    }
  });
}
