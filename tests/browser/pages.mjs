// Drives Debian Chromium through playwright-core for tests/browser/test_pages.py.
// Input (argv[2]): JSON {chromium, axe, outDir, pages: [{name, url}], widths: [{name, width, height}], docs: url}.
// For every page × width: a full-page screenshot <outDir>/<name>-<width>.png, the overlapping boxes (text runs,
// images, SVGs, form controls that intersect by more than 1 px), axe-core violations, and any request that left
// the page's origin. For `docs`: Swagger UI rendered with every non-loopback request aborted.
// A page may list CSS selectors in `texts`: the rendered text (innerText) of every element each one matches.
// Output (stdout): one JSON object with the findings; the Python test asserts on it.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const cfg = JSON.parse(process.argv[2]);
// node deps live in tests/interop/node_modules (one package.json for every test peer).
const require = createRequire(cfg.nodeModules + "/package.json");
const { chromium } = require("playwright-core");
const axeSource = readFileSync(cfg.axe, "utf8");

function overlapsInPage() {
  // Boxes: each non-empty text node's line rects, and replaced/graphic elements. Pairs from different owners
  // must not intersect (1 px tolerance for anti-aliased edges).
  const boxes = [];
  const visible = (el) => {
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.display === "none" || cs.visibility === "hidden" || cs.opacity === "0") return false;
      if (e.tagName === "DETAILS" && !e.open && e !== el && !e.querySelector("summary").contains(el)) return false;
    }
    return true;
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n = 0;
  while (walker.nextNode()) {
    const t = walker.currentNode;
    if (!t.textContent.trim() || !visible(t.parentElement) || t.parentElement.closest("svg")) continue;
    const range = document.createRange();
    range.selectNodeContents(t);
    for (const r of range.getClientRects()) {
      if (r.width > 0.5 && r.height > 0.5) boxes.push({ owner: n, el: t.parentElement, what: describe(t.parentElement, t.textContent), r });
    }
    n++;
  }
  for (const el of document.querySelectorAll("img, svg, input, button, select, textarea")) {
    if (el.tagName.toLowerCase() === "svg" && el.parentElement.closest("svg")) continue;
    if (!visible(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.width > 0.5 && r.height > 0.5) boxes.push({ owner: n++, el, what: describe(el, ""), r });
  }
  function describe(el, text) {
    const id = el.id ? "#" + el.id : "";
    const cls = typeof el.className === "string" && el.className ? "." + el.className.split(" ").join(".") : "";
    return `${el.tagName.toLowerCase()}${id}${cls} ${text.trim().slice(0, 40)}`;
  }
  const out = [];
  const tol = 1;
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      // A control and its own label text (a button's caption) are one thing, not two overlapping ones.
      if (a.owner === b.owner || a.el.contains(b.el) || b.el.contains(a.el)) continue;
      const w = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
      const h = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
      if (w > tol && h > tol) out.push([a.what, b.what, Math.round(w), Math.round(h)]);
    }
  }
  // Also: nothing wider than the viewport (a horizontal scrollbar on a phone).
  const overflow = document.documentElement.scrollWidth - document.documentElement.clientWidth;
  return { overlaps: out.slice(0, 20), count: out.length, boxes: boxes.length, overflow };
}

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
const result = { pages: [], docs: null };
try {
  for (const width of cfg.widths) {
    const context = await browser.newContext({
      viewport: { width: width.width, height: width.height },
      deviceScaleFactor: 1,
      bypassCSP: false,
    });
    for (const p of cfg.pages) {
      const page = await context.newPage();
      const origin = new URL(p.url).origin;
      const foreign = [];
      const cspErrors = [];
      page.on("request", (req) => {
        if (!req.url().startsWith(origin) && !req.url().startsWith("data:")) foreign.push(req.url());
      });
      page.on("console", (msg) => { if (msg.type() === "error") cspErrors.push(msg.text()); });
      // An SVG document cannot be captured full-page: show a badge the way a README shows it, on light and dark.
      const target = p.image
        ? "data:text/html," + encodeURIComponent(
            `<!doctype html><html lang="en"><title>badge</title><body style="margin:0;font:14px sans-serif">` +
            `<main style="padding:16px;background:#fff">README on light <img alt="reputation badge" src="${p.url}"></main>` +
            `<main style="padding:16px;background:#0d1117;color:#e6edf3">README on dark ` +
            `<img alt="reputation badge, dark" src="${p.url}?theme=dark"></main></body></html>`)
        : p.url;
      const resp = p.image ? await page.request.get(p.url) : await page.goto(p.url, { waitUntil: "load" });
      if (p.image) await page.goto(target, { waitUntil: "load" });
      const shot = `${cfg.outDir}/${p.name}-${width.name}.png`;
      const t0 = Date.now();
      await page.screenshot({ path: shot, fullPage: true, timeout: 60000 });
      process.stderr.write(`${p.name} ${width.name} shot ${Date.now() - t0} ms\n`);
      const layout = await page.evaluate(overlapsInPage);
      const texts = {};
      for (const sel of p.texts || []) texts[sel] = await page.$$eval(sel, (els) => els.map((e) => e.innerText.trim()));
      // axe needs its script in the page: the page's own CSP forbids that, so run it in a CSP-bypassing twin.
      const twinContext = await browser.newContext({ viewport: { width: width.width, height: width.height }, bypassCSP: true });
      const twin = await twinContext.newPage();
      await twin.goto(target, { waitUntil: "load" });
      await twin.addScriptTag({ content: axeSource });
      const axe = await twin.evaluate(async () => {
        const r = await window.axe.run(document, { resultTypes: ["violations"] });
        return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                                          nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
      });
      await twinContext.close();
      result.pages.push({ name: p.name, width: width.name, status: resp.status(), shot, ...layout, axe, foreign,
                          consoleErrors: cspErrors, title: await page.title(), texts });
      await page.close();
    }
    await context.close();
  }
  if (cfg.docs) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const origin = new URL(cfg.docs).origin;
    const blocked = [];
    await page.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith(origin) || url.startsWith("data:") || url.startsWith("blob:")) return route.continue();
      blocked.push(url);
      return route.abort("internetdisconnected");
    });
    const docs = {};
    for (const [name, path, selector] of [["swagger", "/docs", ".swagger-ui .opblock"], ["redoc", "/redoc", "[role=menuitem], .menu-content li"]]) {
      await page.goto(origin + path, { waitUntil: "load" });
      let rendered = true;
      try { await page.waitForSelector(selector, { timeout: 20000 }); } catch { rendered = false; }
      const shot = `${cfg.outDir}/docs-${name}.png`;
      await page.screenshot({ path: shot });
      docs[name] = { rendered, operations: await page.locator(selector).count(), shot };
    }
    result.docs = { ...docs, blocked };
    await context.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result));
