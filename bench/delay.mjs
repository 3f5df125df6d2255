// A delaying TCP proxy for bench/browser.mjs: every byte a browser sends to a server, and every
// byte back, is held `oneWayMs` before it is passed on, so that every engine sees the same
// round trip (2 x oneWayMs) to every server the pages reach, whatever its own network stack does.
// A byte pipe: TLS and HTTP pass through untouched. What it does not delay: the TCP handshake
// with the browser (the proxy accepts at once), so a new connection costs one round trip less
// than on a real network, for the reference and for baton alike. Order is kept (timers of one
// delay fire in the order they were set); there is no bandwidth limit.
import net from "node:net";

/**
 * Listens on a free port of 127.0.0.1 and forwards each connection to 127.0.0.1:`target`.
 * @param {number} target
 * @param {number} oneWayMs
 * @returns {Promise<{port: number, stop: () => Promise<void>}>}
 */
export async function startDelayProxy(target, oneWayMs) {
  /** @type {Set<net.Socket>} */
  const open = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, "127.0.0.1");
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      open.add(s);
      s.on("close", () => open.delete(s));
    }
    /** @param {net.Socket} from @param {net.Socket} to */
    const pipe = (from, to) => {
      from.on("data", (chunk) => setTimeout(() => to.writable && to.write(chunk), oneWayMs));
      from.on("end", () => setTimeout(() => to.end(), oneWayMs));
      from.on("error", () => to.destroy());
    };
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", () => r(undefined)));
  const { port } = /** @type {net.AddressInfo} */ (server.address());
  return {
    port,
    stop: () =>
      new Promise((r) => {
        for (const s of open) s.destroy();
        server.close(() => r(undefined));
      }),
  };
}
