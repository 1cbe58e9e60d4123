/**
 * `aloft ui` in a real browser (issue 13): Debian's Chromium, headless, driven by playwright-core,
 * against the real `aloft ui` command over a store the real `aloft run` wrote. A run of 1,000
 * children with a failed one and a retried one: the runs list and its filters, the deep link, the
 * group's counts (one row, never 1,000), the failed child's error and logs, the retried child's
 * attempts; then runs in flight: a live update without reload, cancel with confirmation, resume
 * of a run whose process was killed. And the keyboard alone, at 1280x800: run list, run page (its
 * sleep and signal wait read WAITING), a group opened, a failed child's error and logs, cancel with
 * confirmation — every stop showing its focus. Screenshots go to test-artifacts/ui/ (git-ignored).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcessByStdio } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import type { BrowserContext, Page } from "playwright-core";
import { BIN, ROOT, aloft } from "./helpers/cli.ts";
import { StoreLock } from "../sdk/local/lock.ts";

const TASKS = join(ROOT, "test/fixtures/ui-tasks.ts");
const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(ROOT, "test-artifacts/ui");
/** Generous: the machine is shared; nothing here measures time. */
const WAIT = { timeout: 120_000 };

type Child = ChildProcessByStdio<null, Readable, Readable>;

function start(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): { child: Child; output: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  child.stdout.on("data", (d: Buffer) => (text += d.toString()));
  child.stderr.on("data", (d: Buffer) => (text += d.toString()));
  return { child, output: () => text };
}

async function until<T>(what: string, f: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 1200; i++) {
    const v = await f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

interface Focused {
  tag: string;
  text: string;
  /** An outline or a shadow drawn around it (the page's :focus-visible style). */
  shown: boolean;
}

/** What has the focus, if anything but the page (scripts run in the page: strings, no DOM types here). */
const focused = (page: Page): Promise<Focused | undefined> =>
  page.evaluate(`(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return undefined;
    const cs = getComputedStyle(el);
    return {
      tag: el.tagName.toLowerCase(),
      text: (el.getAttribute("aria-label") ?? el.innerText ?? "").replace(/\\s+/g, " ").trim(),
      shown: (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0) || cs.boxShadow !== "none",
    };
  })()`);

/**
 * Presses `key` (Tab, Shift+Tab) until the focused control's name matches `want`; every control it
 * stops on must show its focus.
 */
async function tabTo(page: Page, want: RegExp, key = "Tab"): Promise<Focused> {
  const stops: string[] = [];
  for (let i = 0; i < 150; i++) {
    await page.keyboard.press(key);
    const f = await focused(page);
    if (!f) continue;
    stops.push(`${f.tag} "${f.text.slice(0, 40)}"`);
    assert.ok(f.shown, `no visible focus on ${f.tag} "${f.text}"`);
    if (want.test(f.text)) return f;
  }
  throw new Error(`${key} never reached ${want}; stopped on:\n${stops.join("\n")}`);
}

/** Nothing wider than the window (no sideways scrolling at 1280x800). */
const fitsWidth = (page: Page): Promise<boolean> =>
  page.evaluate<boolean>("document.documentElement.scrollWidth <= window.innerWidth");

const exited = (c: Child): Promise<number | null> =>
  c.exitCode !== null ? Promise.resolve(c.exitCode) : new Promise((r) => c.once("exit", r));

/** The newest run of `task` in the store, once it is there. */
const newestRun = (cwd: string, task: string, status = "RUNNING"): Promise<string> =>
  until(`a ${status} run of ${task}`, async () => {
    const out = (await aloft(["runs", "-n", "1"], { cwd })).stdout;
    return new RegExp(`^(r-\\S+)\\s+${status}\\s.*${task.replace(".", "\\.")}`).exec(out)?.[1];
  });

describe("aloft ui in Chromium", { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, () => {
  let cwd: string;
  let ui: { child: Child; output: () => string };
  let url: string;
  let browser: BrowserContext;
  let page: Page;
  let profile: string;
  let fanOutId: string;

  before(async () => {
    cwd = mkdtempSync(join(tmpdir(), "aloft-ui-"));
    mkdirSync(ARTIFACTS, { recursive: true });
    const r = await aloft(["run", TASKS, "fanOut", "1000"], { cwd, env: { ALOFT_TEST_DIR: cwd } });
    assert.equal(r.code, 0, r.stderr);
    fanOutId = /run (r-\S+)/.exec(r.stderr)![1]!;
    ui = start(["ui", "--port", "0"], cwd);
    url = await until(
      "aloft ui to print its address",
      async () => /aloft ui: (http:\/\/127\.0\.0\.1:\d+)/.exec(ui.output())?.[1],
    );
    profile = mkdtempSync(join(tmpdir(), "aloft-ui-chromium-"));
    // A fresh profile (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      viewport: { width: 1280, height: 800 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(WAIT.timeout);
  });

  after(async () => {
    await browser?.close();
    if (ui && ui.child.exitCode === null) {
      ui.child.kill("SIGTERM");
      await exited(ui.child);
    }
    rmSync(profile, { recursive: true, force: true });
    rmSync(cwd, { recursive: true, force: true });
  });

  it("lists the runs, filtered by status and by task name", async () => {
    await page.goto(url);
    const row = page.locator(`tr[data-run="${fanOutId}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /SUCCEEDED\s+ui\.fanOut/);
    await page.getByLabel("Status").selectOption("FAILED");
    await page.getByText("No runs match").waitFor();
    await page.getByLabel("Status").selectOption("SUCCEEDED");
    await page.getByLabel("Task").fill("fanOut");
    await row.waitFor();
    await page.getByLabel("Task").fill("noSuchTask");
    await page.getByText("No runs match").waitFor();
  });

  it("opens a run by deep link: a group of 1,000 is one row with its counts, paged when opened", async () => {
    await page.goto(`${url}/runs/${fanOutId}`);
    await page.getByTestId("run-status").getByText("SUCCEEDED").waitFor();
    const group = page.locator('li[data-group="squares"]');
    await group.waitFor();
    const text = await group.innerText();
    assert.match(text, /1000 calls/);
    assert.match(text, /999 succeeded/);
    assert.match(text, /1 failed/);
    assert.equal(await page.locator("li[data-action]").count(), 2); // the root and the retried child
    await group.getByRole("button", { name: "expand group squares" }).click();
    await group.getByText("1–50 of 1000").waitFor();
    assert.equal(await group.locator("li[data-action]").count(), 50);
    await group.getByRole("button", { name: "Next ›" }).click();
    await group.getByText("51–100 of 1000").waitFor();
    assert.ok((await page.locator("li[data-action]").count()) <= 52);
    await page.screenshot({ path: join(ARTIFACTS, "run-group.png"), fullPage: true });
  });

  it("shows the failed child's error with its cause, and its logs; the retried child's attempts", async () => {
    const group = page.locator('li[data-group="squares"]');
    await group.getByLabel("Show").selectOption("FAILED");
    await group.getByText("1–1 of 1").waitFor();
    await group.locator("li[data-action] button.pick").click();
    const detail = page.getByRole("complementary", { name: "action detail" });
    const error = detail.getByTestId("action-error");
    await error.waitFor();
    assert.match(await error.innerText(), /NonRecoverableError: square 13 is unlucky/);
    assert.match(await error.innerText(), /caused by:\s+RangeError: 13 is outside the lucky range/);
    assert.match(
      await detail.getByTestId("logs").innerText(),
      /squaring 13\s+.*error\s+about to fail on 13/s,
    );
    assert.match(await detail.innerText(), /Inputs\s+\[\s+13\s+\]/i);
    // The deep link names the action too.
    assert.match(page.url(), new RegExp(`/runs/${fanOutId}\\?action=`));
    await page.screenshot({ path: join(ARTIFACTS, "run-failed-child.png") });

    await page.keyboard.press("Escape");
    await detail.waitFor({ state: "detached" });
    await page.getByRole("button", { name: /^SUCCEEDED ui\.flaky / }).click();
    await detail.getByTestId("attempts").getByText("2").waitFor();
    const logs = await detail.getByTestId("logs").innerText();
    assert.match(logs, /warn\s+first attempt: failing on purpose/);
    assert.match(logs, /#2\s+info\s+second attempt: fine/);
    assert.match(await detail.innerText(), /Output\s+"recovered"/i);
  });

  it("updates a run in flight without a reload", async () => {
    const dir = mkdtempSync(join(cwd, "live-"));
    const run = start(["run", TASKS, "gatedFanOut", "3"], cwd, { ALOFT_TEST_DIR: dir });
    const id = await newestRun(cwd, "ui.gatedFanOut");
    await page.goto(`${url}/runs/${id}`);
    await page.getByTestId("run-status").getByText("RUNNING").waitFor();
    await page.getByTestId("run-progress").getByText("0 / 3 done").waitFor();
    await page.evaluate(() => ((globalThis as unknown as { stayed: boolean }).stayed = true));
    writeFileSync(join(dir, "gate"), "");
    await page.getByTestId("run-status").getByText("SUCCEEDED").waitFor();
    await page.getByTestId("run-progress").getByText("3 / 3 done").waitFor();
    assert.equal(await page.evaluate(() => (globalThis as unknown as { stayed?: boolean }).stayed), true);
    assert.equal(await exited(run.child), 0, run.output());
  });

  it("cancels a run after confirmation", async () => {
    const dir = mkdtempSync(join(cwd, "cancel-"));
    const run = start(["run", TASKS, "gatedFanOut", "2"], cwd, { ALOFT_TEST_DIR: dir });
    const id = await newestRun(cwd, "ui.gatedFanOut");
    await page.goto(`${url}/runs/${id}`);
    await page.getByTestId("run-status").getByText("RUNNING").waitFor();
    await page.getByRole("button", { name: "Cancel run…" }).click();
    const dialog = page.getByRole("dialog", { name: "Cancel this run?" });
    await dialog.waitFor();
    // Keeping it running changes nothing.
    await dialog.getByRole("button", { name: "Keep running" }).click();
    await dialog.waitFor({ state: "hidden" });
    await page.getByRole("button", { name: "Cancel run…" }).click();
    await dialog.getByRole("button", { name: "Cancel run" }).click();
    await page.getByTestId("run-status").getByText("CANCELLED").waitFor();
    await page.screenshot({ path: join(ARTIFACTS, "run-cancelled.png") });
    assert.equal(await exited(run.child), 1, run.output());
  });

  it("works from the keyboard alone at 1280x800: list, run, group, failed child, cancel", async () => {
    const dir = mkdtempSync(join(cwd, "keys-"));
    const run = start(["run", TASKS, "waits", "30"], cwd, { ALOFT_TEST_DIR: dir });
    try {
      const id = await newestRun(cwd, "ui.waits");
      await page.goto(url);
      await page.locator(`tr[data-run="${id}"]`).waitFor();
      assert.ok(await fitsWidth(page), "the run list fits 1280 px");

      // The run list: Tab to the run's link, Enter opens it.
      await tabTo(page, new RegExp(`^${id}$`));
      await page.keyboard.press("Enter");
      await page.getByRole("heading", { name: "ui.waits" }).waitFor();
      // Its sleep and its signal wait read WAITING, with what they wait for, in the tree and the counts.
      const tree = page.getByRole("tree", { name: "actions of the run" });
      const sleepRow = tree.getByRole("button", { name: /^WAITING aloft:sleep .*timer fires at \d{4}-/ });
      const signalRow = tree.getByRole("button", { name: /^WAITING aloft:signal .*signal "go"/ });
      await sleepRow.waitFor();
      await signalRow.waitFor();
      await page.getByRole("region", { name: "actions by state" }).getByText("2 waiting").waitFor();
      await page.screenshot({ path: join(ARTIFACTS, "keyboard-run.png") });
      assert.ok(await fitsWidth(page), "the run page fits 1280 px");

      // The group of 30 squares: one row with a labelled progress bar; Enter on its toggle opens it.
      const bar = page.locator('li[data-group="squares"]').getByRole("progressbar").first();
      assert.deepEqual(
        await bar.evaluate((b) => [
          b.getAttribute("aria-valuenow"),
          b.getAttribute("aria-valuemax"),
          b.getAttribute("aria-label"),
        ]),
        ["30", "30", "30 of 30 ended"],
      );
      const toggle = await tabTo(page, /^expand group squares$/);
      assert.equal(toggle.tag, "button");
      await page.keyboard.press("Enter");
      await page.getByText("1–30 of 30").waitFor();
      assert.equal(
        await page.locator('li[data-group="squares"]').getAttribute("aria-expanded"),
        "true",
        "the group says it is open",
      );

      // The failed child: Enter opens its detail and moves the focus there.
      await tabTo(page, /^FAILED ui\.square /);
      await page.keyboard.press("Enter");
      const detail = page.getByRole("complementary", { name: "action detail" });
      await detail
        .getByTestId("action-error")
        .getByText("NonRecoverableError: square 13 is unlucky", { exact: true })
        .waitFor();
      await detail.getByTestId("logs").getByText("about to fail on 13").waitFor();
      assert.equal((await focused(page))?.tag, "h2", "the focus moved to the detail's heading");
      assert.equal(
        await page.evaluate<boolean>(
          `document.querySelector("aside.detail").contains(document.activeElement)`,
        ),
        true,
      );
      await page.screenshot({ path: join(ARTIFACTS, "keyboard-detail.png") });
      assert.ok(await fitsWidth(page), "the run page with the detail fits 1280 px");
      // Escape closes it and gives the focus back to the row that opened it.
      await page.keyboard.press("Escape");
      await detail.waitFor({ state: "hidden" });
      await until("the focus back on the row", async () =>
        /^FAILED ui\.square /.test((await focused(page))?.text ?? "") ? true : undefined,
      );

      // Cancel: back up to the button, confirm in the dialog (its first button is the safe one).
      await tabTo(page, /^Cancel run…$/, "Shift+Tab");
      await page.keyboard.press("Enter");
      const dialog = page.getByRole("dialog", { name: "Cancel this run?" });
      await dialog.waitFor();
      assert.equal((await focused(page))?.text, "Keep running");
      await tabTo(page, /^Cancel run$/);
      await page.keyboard.press("Enter");
      await page.getByTestId("run-status").getByText("CANCELLED").waitFor();
      await page.screenshot({ path: join(ARTIFACTS, "keyboard-cancelled.png") });
      assert.equal(await exited(run.child), 1, run.output());
    } finally {
      // A failed step leaves the run waiting an hour: its process must not outlive the test.
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
    }
  });

  it("resumes a run whose process was killed", async () => {
    const dir = mkdtempSync(join(cwd, "resume-"));
    const run = start(["run", TASKS, "gatedFanOut", "2"], cwd, { ALOFT_TEST_DIR: dir });
    const id = await newestRun(cwd, "ui.gatedFanOut");
    // Both children started (they print as they begin waiting), then the process dies.
    await until("both children waiting", async () =>
      /gated 0 waiting[\s\S]*gated 1 waiting|gated 1 waiting[\s\S]*gated 0 waiting/.test(run.output())
        ? true
        : undefined,
    );
    run.child.kill("SIGKILL");
    await exited(run.child);
    await page.goto(`${url}/runs/${id}`);
    await page.getByText("its process stopped").waitFor();
    // The resumed process is `aloft resume`, started by the UI in its own directory, without
    // ALOFT_TEST_DIR: its children look for the gate there.
    writeFileSync(join(cwd, "gate"), "");
    await page.getByRole("button", { name: "Resume" }).click();
    await page.getByTestId("run-status").getByText("SUCCEEDED").waitFor();
  });

  it("recovers a cancelled run: the new run names its source, and the source lists it", async () => {
    // The run the cancel test stopped (its children were cancelled while waiting for the gate,
    // which the resume test has since opened).
    const runs = (await aloft(["runs", "-n", "50"], { cwd })).stdout;
    const id = /^(r-\S+)\s+CANCELLED\s.*ui\.gatedFanOut/m.exec(runs)?.[1];
    assert.ok(id, runs);
    await page.goto(`${url}/runs/${id}`);
    // The store is still held for a moment, as by the `aloft resume` of the test before while it
    // exits: Recover waits for it. The recovery's run then ends at once (its gate is open), which
    // is the case where the UI once missed the line naming the new run ("aloft recover exited 0").
    const lock = StoreLock.acquire(join(cwd, ".aloft/aloft.db"));
    setTimeout(() => lock.release(), 1_500);
    await page.getByRole("button", { name: "Recover" }).click();
    await page
      .getByTestId("recovered-from")
      .getByText(id)
      .waitFor()
      .catch(async (e: unknown) => {
        throw new Error(`at ${page.url()}: ${(await page.locator("main").innerText()).slice(0, 1500)}`, {
          cause: e,
        });
      });
    assert.notEqual(new URL(page.url()).pathname, `/runs/${id}`, "it opened the new run");
    await page.getByTestId("run-status").getByText("SUCCEEDED").waitFor();
    await page.screenshot({ path: join(ARTIFACTS, "run-recovered.png") });
    const recovery = new URL(page.url()).pathname.split("/").pop()!;
    await page.getByTestId("recovered-from").getByRole("link").click();
    await page.getByTestId("recoveries").getByText(recovery).waitFor();
    assert.equal(await page.getByRole("button", { name: "Recover" }).count(), 1, "it can be recovered again");
  });
});
