import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigFile } from '../src/config.js';
import type { FakeMessage } from './fakes/telegram.js';
import { createUpgradeRemote, git } from './helpers/upgrade-remote.js';
import { type Harness, OWNER, startHarness, turnsDone } from './telegram-harness.js';

const base = mkdtempSync(path.join(tmpdir(), 'bst-tg-upgrade-'));
const { work, other } = createUpgradeRemote(base);
const stepsLog = path.join(base, 'steps.log');
const reloadLog = path.join(base, 'reload.log');
const parts = { tools: true, bot: true };
let h: Harness;
let restarted: Harness | undefined;
let again: Harness | undefined;

const head = () => git(work, 'rev-parse', '--short', 'HEAD');
const lines = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];

/** Another developer pushes: the checkout brainstem runs from is one commit behind. */
function pushUpstream(subject: string): string {
  writeFileSync(path.join(other, `${subject.replace(/\W+/g, '-')}.txt`), `${subject}\n`);
  git(other, 'add', '.');
  git(other, 'commit', '-q', '-m', subject);
  git(other, 'push', '-q', 'origin', 'main');
  return git(other, 'rev-parse', '--short', 'HEAD');
}

/** Harmless install, build and reload commands: they log what ran; the build takes a moment, so progress shows. */
const config: ConfigFile = {
  tools: {
    selfUpgrade: {
      repo: work,
      steps: [
        [process.execPath, path.join(base, 'step.cjs'), stepsLog, 'install', '0'],
        [process.execPath, path.join(base, 'step.cjs'), stepsLog, 'build', '1500'],
      ],
      reload: [process.execPath, path.join(base, 'reload.cjs'), reloadLog],
    },
  },
};

beforeAll(async () => {
  writeFileSync(
    path.join(base, 'step.cjs'),
    `const [log, name, ms] = process.argv.slice(2);
console.log(name + ' started');
setTimeout(() => { require('node:fs').appendFileSync(log, name + '\\n'); console.log(name + ' done'); }, Number(ms));`,
  );
  writeFileSync(
    path.join(base, 'reload.cjs'),
    `require('node:fs').appendFileSync(process.argv[2], Date.now() + '\\n');`,
  );
  h = await startHarness({ parts, config });
});

afterAll(async () => {
  await again?.close();
  await restarted?.close();
  await h?.close();
  rmSync(base, { recursive: true, force: true });
});

const reply = (hh: Harness, chatId: number, pattern: RegExp, timeoutMs = 10_000) =>
  hh.tg.waitFor(() => hh.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs });
const buttonsOf = (m: FakeMessage) =>
  (
    (m.replyMarkup as { inline_keyboard?: { text: string; callback_data: string }[][] } | undefined)
      ?.inline_keyboard ?? []
  ).flat();

describe('/upgrade', () => {
  it('says brainstem is up to date when there is nothing to apply', async () => {
    h.tg.user(112).says('/upgrade');
    const answer = await reply(h, 112, /up to date/);
    expect(answer.text).toBe('⚙️ [proxy] ✅ brainstem is up to date with origin/main.');
    expect(buttonsOf(answer)).toEqual([]);
  });

  let target = '';

  it('lists the new commits with Apply / Cancel; Cancel applies nothing', async () => {
    target = pushUpstream('feat: faster relay');
    const before = head();
    const user = h.tg.user(113);
    user.says('/upgrade');
    const question = await reply(h, 113, /new commit\(s\) on/);
    expect(question.history[0]).toBe('⚙️ [proxy] 🔎 Looking for new commits…');
    expect(question.text).toBe(
      `⚙️ [proxy] ⬆️ 1 new commit(s) on origin/main:\n• ${target} feat: faster relay\nApply them? brainstem moves to these commits, installs, builds, then restarts itself.`,
    );
    const [apply, cancel] = buttonsOf(question);
    expect([apply?.text, cancel?.text]).toEqual(['⬆️ Apply', '✖️ Cancel']);
    user.presses(question.messageId, cancel?.callback_data ?? '');
    await h.tg.waitFor(() => /Cancelled: nothing ran\./.test(question.text));
    // A second press is handled once the Cancel's handling is over; then the run it queued, if any, ends.
    const again = user.presses(question.messageId, cancel?.callback_data ?? '');
    await h.tg.waitFor(() => h.tg.callbackAnswers.find((a) => a.callbackQueryId === again));
    await turnsDone(h, user);
    expect(head()).toBe(before);
    expect(lines(stepsLog)).toEqual([]);
    expect(h.service.tools?.registry.recentAudit(1, 'self_upgrade')[0]).toMatchObject({
      caller: 'telegram:113',
      args: '{"action":"check"}',
    });
  });

  it('Apply shows the progress, then the result; the reload starts only after the result is delivered; after the restart the outcome reaches the chat', async () => {
    const from = head();
    const user = h.tg.user(OWNER);
    user.says('/upgrade');
    const question = await reply(h, OWNER, /new commit\(s\) on/);
    expect(question.text).toContain(`• ${target} feat: faster relay`);
    user.presses(question.messageId, buttonsOf(question)[0]?.callback_data ?? '');

    await h.tg.waitFor(() => /exit 0/.test(question.text), { timeoutMs: 15_000 });
    // Apply moves to exactly the commit the question showed.
    const shown = git(work, 'rev-parse', 'origin/main');
    expect(question.text).toMatch(
      new RegExp(
        `^⚙️ \\[proxy\\] ✅ upgrade → self_upgrade \\{"action":"apply","to":"${shown}"\\} · exit 0 · `,
      ),
    );
    expect(question.text).toContain(`$ git merge --ff-only ${shown}`);
    expect(question.text).toMatch(/install done[\s\S]*build done/);
    expect(question.text).toContain(`Upgraded ${from} → ${target}; reloading brainstem`);
    // Progress came first: the build still running, the install already done.
    expect(
      question.history.some(
        (t) => /^⚙️ \[proxy\] ⏳ upgrade → /.test(t) && /build started/.test(t) && !/build done/.test(t),
      ),
    ).toBe(true);
    expect(head()).toBe(target);
    expect(lines(stepsLog)).toEqual(['install', 'build']);

    await h.tg.waitFor(() => lines(reloadLog).length === 1);
    const resultShown = h.tg
      .callsOf('editMessageText', OWNER)
      .find((c) => c.params.message_id === question.messageId && String(c.params.text).includes('Upgraded'));
    expect(Number(lines(reloadLog)[0])).toBeGreaterThanOrEqual(resultShown?.at ?? Number.POSITIVE_INFINITY);

    // What pm2 would do: stop this brainstem and start the new one on the same data.
    await h.stopService();
    restarted = await startHarness({ parts, config, tg: h.tg, llama: h.llama, dir: h.dir });
    const notice = await reply(restarted, OWNER, /restarted after its upgrade/);
    expect(notice.text).toBe(`⚙️ [proxy] brainstem restarted after its upgrade ${from} → ${target}.`);
  });
});

describe('/upgrade from a forum topic of a group that is not a notify chat', () => {
  it('after the restart, the outcome reaches that topic once, and the notify chats too', async () => {
    // Runs on the brainstem the test above restarted: the same emulator, data and checkout.
    const hh = restarted as Harness;
    const group = -100_714;
    const asker = hh.tg.user(114, { chatId: group, topicId: 9 });
    const from = head();
    const target = pushUpstream('feat: asked in a topic');
    asker.says('/upgrade');
    const question = await reply(hh, group, /new commit\(s\) on/);
    asker.presses(question.messageId, buttonsOf(question)[0]?.callback_data ?? '');
    await hh.tg.waitFor(() => /exit 0/.test(question.text), { timeoutMs: 15_000 });
    await hh.tg.waitFor(() => lines(reloadLog).length === 2);

    await hh.stopService();
    again = await startHarness({ parts, config, tg: hh.tg, llama: hh.llama, dir: hh.dir });
    const said = `⚙️ [proxy] brainstem restarted after its upgrade ${from} → ${target}.`;
    const inTopic = await reply(again, group, /restarted after its upgrade/);
    expect(inTopic.text).toBe(said);
    expect(inTopic.topicId).toBe(9);
    await reply(again, OWNER, new RegExp(`upgrade ${from} → ${target}`));
    // Anything sent after it in that topic comes after it: a second copy would have come by then.
    await turnsDone(again, asker);
    expect(again.tg.botMessages(group).filter((m) => m.text === said)).toHaveLength(1);
    expect(again.tg.botMessages(OWNER).filter((m) => m.text === said)).toHaveLength(1);
  });
});
