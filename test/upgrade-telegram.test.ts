import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeMessage } from './fakes/telegram.js';
import { commitLocally, createUpgradeRemote, git, pushUpstream } from './helpers/upgrade-remote.js';
import { type Harness, OWNER, startHarness } from './telegram-harness.js';

/** /upgrade from Telegram when the checkout or the upstream is not as the happy path wants it. */

const base = mkdtempSync(path.join(tmpdir(), 'bst-upgrade-tg-'));
const { work, other } = createUpgradeRemote(base);
let h: Harness;

const head = () => git(work, 'rev-parse', '--short', 'HEAD');
const buttonsOf = (m: FakeMessage) =>
  (
    (m.replyMarkup as { inline_keyboard?: { text: string; callback_data: string }[][] } | undefined)
      ?.inline_keyboard ?? []
  ).flat();
/** The texts of a message's code entities, which must not overlap: Telegram allows no code inside code. */
function codesOf(m: FakeMessage): string[] {
  const codes = m.entities.filter((e) => e.type === 'code');
  codes.forEach((e, i) => {
    const next = codes[i + 1];
    if (next) expect(next.offset).toBeGreaterThanOrEqual(e.offset + e.length);
  });
  return codes.map((e) => m.text.slice(e.offset, e.offset + e.length));
}

/** Sends /upgrade and waits for the check's answer (the message no longer says it waits or looks). */
async function upgrade(): Promise<FakeMessage> {
  const before = h.tg.botMessages(OWNER).length;
  h.tg.user(OWNER).says('/upgrade');
  return h.tg.waitFor(() =>
    h.tg
      .botMessages(OWNER)
      .slice(before)
      .find((m) => !/Looking for new commits|Queued:/.test(m.text)),
  );
}

beforeAll(async () => {
  // The build fails on a commit that holds BREAK or LOCK.
  writeFileSync(
    path.join(base, 'step.cjs'),
    `const fs = require('node:fs');
const name = process.argv[2];
console.log(name + ' started');
// On a commit holding LOCK the build also leaves git's index locked, as a crash can: the rollback fails.
if (name === 'build' && fs.existsSync('LOCK')) fs.writeFileSync('.git/index.lock', '');
if (name === 'build' && (fs.existsSync('BREAK') || fs.existsSync('LOCK'))) {
  console.error('src/index.ts(1,7): error TS2322: the build is broken');
  process.exit(3);
}`,
  );
  const step = path.join(base, 'step.cjs');
  h = await startHarness({
    parts: { tools: true, bot: true },
    config: {
      tools: {
        selfUpgrade: {
          repo: work,
          steps: [
            [process.execPath, step, 'install'],
            [process.execPath, step, 'build'],
          ],
          reload: [process.execPath, '-e', '0'],
        },
      },
    },
  });
});

afterAll(async () => {
  await h?.close();
  rmSync(base, { recursive: true, force: true });
});

describe('/upgrade', () => {
  it('Apply after the upstream moved applies nothing and says what came, instead of applying commits never shown', async () => {
    const shown = pushUpstream(other, 'fix: one');
    const before = head();
    const question = await upgrade();
    expect(question.text).toContain(`• ${shown} fix: one`);
    const unseen = pushUpstream(other, 'chore: pushed after the question');
    h.tg.user(OWNER).presses(question.messageId, buttonsOf(question)[0]?.callback_data ?? '');
    await h.tg.waitFor(() => /❌/.test(question.text));
    expect(question.text).toContain('origin/main has moved since the check');
    expect(question.text).toContain(`${unseen} chore: pushed after the question`);
    expect(head()).toBe(before);
  });

  it('a failed step is rolled back and the chat is told which step failed and how; the next /upgrade offers the commits again', async () => {
    git(work, 'pull', '-q', '--ff-only');
    const before = head();
    const broken = pushUpstream(other, 'feat: breaks the build', { BREAK: 'x\n' });

    const question = await upgrade();
    h.tg.user(OWNER).presses(question.messageId, buttonsOf(question)[0]?.callback_data ?? '');
    await h.tg.waitFor(() => /exit 3/.test(question.text), { timeoutMs: 15_000 });
    expect(question.text).toContain(`Upgrade ${before} → ${broken} failed: "`);
    expect(question.text).toContain('error TS2322: the build is broken');
    expect(question.text).toContain(
      `Rolled back to ${before} and ran its steps again: brainstem keeps running ${before}.`,
    );
    expect(head()).toBe(before);

    const again = await upgrade();
    expect(again.text).toContain(`• ${broken} feat: breaks the build`);
    expect(buttonsOf(again).map((b) => b.text)).toEqual(['⬆️ Apply', '✖️ Cancel']);
    h.tg.user(OWNER).presses(again.messageId, buttonsOf(again)[1]?.callback_data ?? '');
    await h.tg.waitFor(() => /Cancelled/.test(again.text));
    pushUpstream(other, 'fix: the build', { BREAK: null });
  });

  it('on a diverged checkout, lists its local commits, says what to do, and offers no Apply', async () => {
    const local = commitLocally(work, 'local: only here');
    try {
      const answer = await upgrade();
      expect(answer.text).toContain(
        `⚠️ The checkout has 1 local commit(s) that origin/main does not have:\n• ${local} local: only here\nIt has diverged, so it cannot just move forward: rebase them onto origin/main (git pull --rebase) or drop them (git reset --hard origin/main) by hand, then /upgrade again.`,
      );
      expect(codesOf(answer)).toEqual(
        expect.arrayContaining(['git pull --rebase', 'git reset --hard origin/main']),
      );
      expect(buttonsOf(answer)).toEqual([]);
    } finally {
      git(work, 'reset', '-q', '--hard', 'HEAD~1');
    }
  });

  it('shows the hidden characters of commit subjects and file names as their code, new and local ones alike', async () => {
    const upstream = pushUpstream(other, 'fix: harmless\u202Ehs.exe', { 'fix.txt': 'fix\n' });
    const local = commitLocally(work, 'local: zero\u200Bwidth');
    // Git quotes such a name unless told not to; a checkout can be.
    git(work, 'config', 'core.quotePath', 'false');
    writeFileSync(path.join(work, 'note\u2066s.txt'), 'x\n');
    git(work, 'add', 'note\u2066s.txt');
    try {
      const answer = await upgrade();
      expect(answer.text).toContain(`• ${upstream} fix: harmless⟨U+202E⟩hs.exe`);
      expect(answer.text).toContain(`• ${local} local: zero⟨U+200B⟩width`);
      expect(answer.text).toContain('uncommitted changes (A  note⟨U+2066⟩s.txt)');
      expect(answer.text).not.toMatch(/[\u202E\u200B\u2066]/);
    } finally {
      git(work, 'reset', '-q', '--hard', 'HEAD~1');
      git(work, 'config', '--unset', 'core.quotePath');
    }
  });

  it('with hundreds of uncommitted files, answers with the first ones and how many more, within one message', async () => {
    const many = Object.fromEntries(
      Array.from({ length: 250 }, (_, i) => [`src/components/generated/module-number-${i}.ts`, `${i}\n`]),
    );
    pushUpstream(other, 'feat: many files', many);
    git(work, 'pull', '-q', '--ff-only');
    for (const name of Object.keys(many)) writeFileSync(path.join(work, name), 'local edit\n');
    for (let i = 0; i < 40; i++) {
      git(
        other,
        'commit',
        '-q',
        '--allow-empty',
        '-m',
        `feat: change ${i} ${'with a long subject '.repeat(10)}`,
      );
    }
    git(other, 'push', '-q', 'origin', 'main');
    try {
      const answer = await upgrade();
      expect(answer.text).toContain('⬆️ 40 new commit(s) on origin/main:');
      expect(answer.text).toContain('… and 25 more');
      expect(answer.text).toMatch(
        /uncommitted changes \(M src\/components\/generated\/module-number-\d+\.ts, .*, … and 240 more\)/,
      );
      expect(answer.text.length).toBeLessThanOrEqual(4096);
      expect(buttonsOf(answer)).toEqual([]);
    } finally {
      git(work, 'checkout', '--', '.');
    }
  });

  it('when Telegram refuses the check’s answer, the chat is still told, and the next /upgrade works', async () => {
    h.tg.failNext(
      'editMessageText',
      1,
      { code: 400, description: 'Bad Request: message is too long' },
      OWNER,
    );
    const answer = await upgrade();
    expect(answer.text).toBe(
      '⚙️ [proxy] ❌ The upgrade check could not be shown (Telegram refused the message: it is too long): nothing ran. See the brainstem log.',
    );
    const next = await upgrade();
    expect(buttonsOf(next).map((b) => b.text)).toEqual(['⬆️ Apply', '✖️ Cancel']);
  });
});

describe('/upgrade in French', () => {
  const FR = 113;

  /** Sends /upgrade as a French-speaking user and waits for the check's answer. */
  async function upgradeFr(): Promise<FakeMessage> {
    const before = h.tg.botMessages(FR).length;
    h.tg.user(FR, { languageCode: 'fr' }).says('/upgrade');
    return h.tg.waitFor(() =>
      h.tg
        .botMessages(FR)
        .slice(before)
        .find((m) => !/Recherche de nouveaux commits|En attente :/.test(m.text)),
    );
  }

  it('refuses a framework upgrade that is not configured in French, saying what to configure', async () => {
    const before = h.tg.botMessages(FR).length;
    h.tg.user(FR, { languageCode: 'fr' }).says('/run self_upgrade action=framework name=stack');
    const refused = await h.tg.waitFor(() => h.tg.botMessages(FR).slice(before)[0]);
    expect(refused.text).toBe(
      '⚙️ [proxy] ❌ Aucune mise à jour du framework n’est configurée (tools.selfUpgrade.framework dans brainstem.json).',
    );
  });

  it('on a diverged checkout, says what to do in French, each command one code entity', async () => {
    pushUpstream(other, 'feat: divergence');
    const local = commitLocally(work, 'local: seulement ici');
    try {
      const answer = await upgradeFr();
      expect(answer.text).toContain(
        `⚠️ Le dépôt a 1 commit(s) local(aux) absent(s) de origin/main :\n• ${local} local: seulement ici\nIl a divergé`,
      );
      expect(codesOf(answer)).toEqual(
        expect.arrayContaining(['git pull --rebase', 'git reset --hard origin/main']),
      );
    } finally {
      git(work, 'reset', '-q', '--hard', 'HEAD~1');
    }
  });

  it('says how a failed upgrade was rolled back, what is left to do, and the next check’s warning in French; a later Apply upgrades', async () => {
    const before = head();
    const target = pushUpstream(other, 'feat: en français');
    // Untracked, so the checkout stays clean: the build fails on the new commit and on the old one, after the rollback.
    const breaker = path.join(work, 'BREAK');
    writeFileSync(breaker, 'x\n');
    try {
      const question = await upgradeFr();
      expect(question.text).toContain('nouveau(x) commit(s) sur origin/main :');
      expect(question.text).toContain(`• ${target} feat: en français`);
      h.tg.user(FR).presses(question.messageId, buttonsOf(question)[0]?.callback_data ?? '');
      await h.tg.waitFor(() => /code de sortie 3/.test(question.text), { timeoutMs: 15_000 });
      const build = /« ([^»]* build) » s’est terminé avec le code 3/.exec(question.text)?.[1];
      expect(build).toBeDefined();
      expect(question.text).toContain(
        `La mise à jour ${before} → ${target} a échoué : « ${build} » s’est terminé avec le code 3.\nSes dernières lignes :\nbuild started\nsrc/index.ts(1,7): error TS2322: the build is broken\n`,
      );
      expect(question.text).toContain(`Retour à ${before} :`);
      const note = `La dernière mise à jour ${before} → ${target} a échoué à « ${build} » ; le dépôt a été remis à ${before}, où « ${build} » s’est terminé avec le code 3. brainstem tourne toujours sur ${before}, mais son installation ou sa compilation dans ${work} est incomplète : lancez-y `;
      expect(question.text).toContain(note);
      expect(question.text).not.toMatch(/failed|Rolling back|Its last lines/);
      expect(head()).toBe(before);

      // The note was kept in both languages: the next check shows it in the reader's.
      const again = await upgradeFr();
      expect(again.text).toContain(`⚠️ ${note}`);
      expect(buttonsOf(again).map((b) => b.text)).toEqual(['⬆️ Appliquer', '✖️ Annuler']);

      rmSync(breaker);
      h.tg.user(FR).presses(again.messageId, buttonsOf(again)[0]?.callback_data ?? '');
      await h.tg.waitFor(() => /code de sortie 0/.test(again.text), { timeoutMs: 15_000 });
      expect(again.text).toContain(`Mis à jour ${before} → ${target} ; rechargement de brainstem (`);
      expect(head()).toBe(target);
    } finally {
      rmSync(breaker, { force: true });
    }
  });

  it('says in French when the rollback failed too, where the checkout is and what to run, and the next check warns so', async () => {
    const before = head();
    const locked = pushUpstream(other, 'feat: casse git', { LOCK: 'x\n' });
    try {
      const question = await upgradeFr();
      h.tg.user(FR).presses(question.messageId, buttonsOf(question)[0]?.callback_data ?? '');
      await h.tg.waitFor(() => /avant qu’il redémarre/.test(question.text), { timeoutMs: 15_000 });
      const build = /a échoué à « ([^»]* build) »/.exec(question.text)?.[1];
      expect(build).toBeDefined();
      const note = `La dernière mise à jour ${before} → ${locked} a échoué à « ${build} », et son retour en arrière aussi (« git reset --hard `;
      expect(question.text).toContain(note);
      expect(question.text).toContain(
        `brainstem tourne toujours sur ${before}, mais un redémarrage lancerait ${locked} : avant qu’il redémarre, lancez « git reset --hard ${before} » puis `,
      );
      expect(question.text).not.toMatch(/rollback failed|before it restarts/);
      expect(head()).toBe(locked);

      // The note was kept in both languages: the next check warns in French.
      rmSync(path.join(work, '.git', 'index.lock'));
      const again = await upgradeFr();
      expect(again.text).toContain(`⚠️ ${note}`);
    } finally {
      rmSync(path.join(work, '.git', 'index.lock'), { force: true });
      git(work, 'reset', '-q', '--hard', before);
    }
  });
});
