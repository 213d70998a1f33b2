/**
 * The gateway stage of `npm run openclaw-check`: OpenClaw's gateway runs its own Telegram
 * channel with its Bot API root on brainstem's front, as `openclaw-config --apply` sets it,
 * brainstem is the only poller of the Bot API emulator (test/fakes/telegram.ts), and a user
 * writes to the bot, in a private chat, a group and a forum topic. Checked here: the set-up
 * and the merged command menus; then, in this order (each leaves OpenClaw's session as the
 * next expects it): the first turns (chat.ts), commands (commands.ts), groups (groups.ts),
 * other kinds of update (media.ts), inline buttons (buttons.ts) and a gateway restart
 * (restart.ts); at the end, that no call of OpenClaw's through the front failed (failures.ts),
 * one poller at Telegram and the bot token in no log line.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startFakeTelegram } from '../../../test/fakes/telegram.js';
import { freePort, spawnService } from '../../../test/helpers/process.js';
import { openclawConfig, type StageContext, show, stopService } from '../shared.js';
import { buttons } from './buttons.js';
import { firstTurns } from './chat.js';
import { commands } from './commands.js';
import { FIRST_WAIT_MS, FORUM, GROUP, gatewayLogFile, HELPER_MODEL, startGateway, USER } from './context.js';
import { frontCallFailures } from './failures.js';
import { groups } from './groups.js';
import { otherUpdates } from './media.js';
import { restart } from './restart.js';

/** Short, so that a gateway restart shows the notice. */
const STALL_NOTICE_MS = 4000;

export async function gatewayChecks({ openclaw, llama, check, dir, defer }: StageContext): Promise<void> {
  const tg = await startFakeTelegram();
  defer(() => tg.close());
  const ocHome = path.join(dir, 'oc-home');
  const bsHome = path.join(dir, 'bs-home');
  for (const d of [path.join(ocHome, '.openclaw'), bsHome]) mkdirSync(d, { recursive: true });
  const configFile = path.join(dir, 'brainstem.json');
  writeFileSync(
    configFile,
    `${JSON.stringify({
      defaultMode: 'local',
      // helper: a second mode on the same llama-server, for OpenClaw's model picker to pick.
      modes: {
        local: { kind: 'llama', vision: true },
        helper: { kind: 'llama', model: HELPER_MODEL, description: 'A second local model' },
      },
      // A short stall notice, so that a gateway restart shows it.
      telegram: { allowedUsers: [USER], front: { enabled: true, stallNoticeMs: STALL_NOTICE_MS } },
    })}\n`,
  );
  const env: Record<string, string> = {
    BRAINSTEM_CONFIG: configFile,
    BRAINSTEM_DATA_DIR: path.join(dir, 'bs-data'),
    BRAINSTEM_HOST: '127.0.0.1',
    BRAINSTEM_API_TOKEN: randomBytes(24).toString('hex'),
    HOME: bsHome,
    LLAMA_BASE_URL: llama.fake.baseUrl,
    CLAUDE_BIN: '/bin/false',
    TELEGRAM_BOT_TOKEN: tg.token,
    TELEGRAM_API_ROOT: tg.apiRoot,
  };
  const svc = await spawnService(env, { from: 'dist' });
  defer(() => stopService(svc));

  // An openclaw.json as its owner has it (the gateway and who may write to the bot), into
  // which brainstem's block is merged the way the README says.
  const ocFile = path.join(ocHome, '.openclaw', 'openclaw.json');
  const gatewayPort = await freePort();
  writeFileSync(
    ocFile,
    JSON.stringify({
      gateway: {
        mode: 'local',
        port: gatewayPort,
        bind: 'loopback',
        auth: { mode: 'token', token: randomBytes(16).toString('hex') },
      },
      tools: { exec: { mode: 'ask', ask: 'always' } },
      // Its file log says when it is done with a message (see Gateway.processed).
      logging: { level: 'debug', file: gatewayLogFile(dir) },
      // `partial`: the answer's text streams into a preview edited in place (the default shows a
      // status). In the group, OpenClaw answers only when mentioned.
      channels: {
        telegram: {
          dmPolicy: 'allowlist',
          allowFrom: [String(USER)],
          streaming: { mode: 'partial' },
          // OpenClaw asks the owner in Telegram before it runs a command (see tools below).
          execApprovals: { enabled: true, approvers: [String(USER)], target: 'dm' },
          capabilities: { inlineButtons: 'all' },
          groups: {
            [String(GROUP)]: { requireMention: true },
            [String(FORUM)]: { requireMention: false },
          },
        },
      },
    }),
  );
  await openclawConfig(env, new URL(svc.url).port, ['--apply', ocFile]);
  const channel = (
    JSON.parse(readFileSync(ocFile, 'utf8')) as { channels?: { telegram?: Record<string, unknown> } }
  ).channels?.telegram;
  check(
    'setup',
    "openclaw-config --apply points OpenClaw's channel at the front",
    channel?.enabled === true &&
      channel.apiRoot === `${svc.url}/telegram` &&
      channel.botToken === tg.token &&
      channel.dmPolicy === 'allowlist',
    `channels.telegram: enabled ${show(channel?.enabled)}, apiRoot ${show(channel?.apiRoot)} (the front is ${svc.url}/telegram), the bot token ${channel?.botToken === tg.token ? 'set' : 'not set'}, the owner's dmPolicy ${show(channel?.dmPolicy)} kept`,
  );

  const g = startGateway({
    tg,
    llama,
    check,
    openclaw,
    dir,
    home: ocHome,
    port: gatewayPort,
    defer,
  });
  const { until } = g;

  // Telegram shows a user the list of their language if there is one: brainstem's French
  // menu must carry OpenClaw's commands too, or a French user would not see them.
  const menus =
    (await until(
      'OpenClaw registers its commands through the front',
      () => {
        const lists = [...tg.commands].map(([lang, list]) => ({ lang, names: list.map((c) => c.command) }));
        return lists.length > 0 && lists.every((l) => l.names.includes('new')) && lists;
      },
      FIRST_WAIT_MS,
    )) ?? [];
  check(
    'setup',
    "each language's menu holds brainstem's and OpenClaw's commands",
    menus.length >= 2 &&
      menus.every(
        (l) =>
          l.names.includes('mode') &&
          l.names.includes('new') &&
          l.names.includes('oc_usage') &&
          l.names.length <= 100,
      ),
    menus
      .map(
        (l) =>
          `${l.lang || 'default'}: ${l.names.length} (${l.names.slice(0, 3).join(', ')}, …, ${l.names.filter((n) => n.startsWith('oc_')).join(', ')})`,
      )
      .join('; ') || "no menu with OpenClaw's /new",
  );

  await firstTurns(g);
  await commands(g);
  await groups(g);
  await otherUpdates(g);
  await buttons(g);
  await restart(g);

  const failed = frontCallFailures(g.log(), svc.logs);
  check(
    'upstream',
    "none of OpenClaw's calls through the front failed",
    failed.length === 0,
    failed.length === 0
      ? "no failed Bot API call in OpenClaw's log, no error answer of the front's in brainstem's"
      : `${failed.length} failed: ${failed.slice(0, 3).join(' | ')}`,
  );
  check(
    'upstream',
    'one poller at Telegram',
    tg.polling.maxConcurrent === 1 && tg.polling.conflicts === 0,
    `getUpdates: ${tg.polling.calls} call(s), at most ${tg.polling.maxConcurrent} at once, ${tg.polling.conflicts} conflict(s)`,
  );
  const secret = tg.token.split(':')[1] ?? tg.token;
  const leaked = svc.logs.filter((l) => l.includes(secret));
  check(
    'upstream',
    "the bot token is in none of brainstem's log lines",
    leaked.length === 0,
    `${svc.logs.length} log lines, ${leaked.length} with the token${leaked[0] ? `: ${leaked[0].slice(0, 160)}` : ''}`,
  );
}
