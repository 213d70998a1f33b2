import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type CredentialSource, ownSources } from '../../../src/auth-notice.js';
import type { ModeConfig } from '../../../src/config.js';
import {
  type CredentialsInfo,
  credentialsFromEnv,
  lastRefusal,
  lastRenewalSeen,
  loginCommand,
  readCredentials,
  sharedConfigDir,
} from '../../../src/credentials.js';
import type { KvStore } from '../../../src/db/index.js';
import { formatSpan, formatUtc, type Lang, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { escapeHtml } from '../format/render.js';

/**
 * /creds: the Claude credentials as brainstem sees them: subscription, expiry
 * and time left, the last renewal seen, the file. Never a token.
 */
export async function credsView(
  file: string,
  kv: KvStore,
  lang: Lang,
  now = Date.now(),
  claudeEnv: Record<string, string> = {},
  modes: readonly ModeConfig[] = [],
): Promise<string> {
  const shared = await sharedView(file, kv, lang, now, claudeEnv);
  const own = await Promise.all(ownSources(modes, claudeEnv).map((g) => ownView(g, kv, lang, now)));
  return [shared, ...own].join('\n\n');
}

/**
 * A mode's own credentials (`modes.<id>.env`): where they come from, a file's expiry, and Claude's
 * last refusal of them, which would otherwise reach the owner only as failing turns of that mode.
 */
async function ownView(
  { source, modes }: { source: CredentialSource; modes: string[] },
  kv: KvStore,
  lang: Lang,
  now: number,
): Promise<string> {
  const names = modes.map((m) => `<code>${escapeHtml(m)}</code>`).join(', ');
  const lines = [
    t(
      lang,
      `🔑 <b>Own credentials of mode${modes.length > 1 ? 's' : ''} ${names}</b>: ${escapeHtml(source.where.en)}`,
      `🔑 <b>Identifiants propres ${modes.length > 1 ? 'des modes' : 'du mode'} ${names}</b> : ${escapeHtml(source.where.fr)}`,
    ),
  ];
  const refused = lastRefusal(kv, source.id);
  if (source.file) {
    const cli = `<code>${escapeHtml(loginCommand(dirname(source.file)))}</code>`;
    const read = await readCredentials(source.file);
    if (!read.ok)
      lines.push(
        t(
          lang,
          `❌ Unreadable: ${escapeHtml(read.reason.en)}.`,
          `❌ Illisibles : ${escapeHtml(read.reason.fr)}.`,
        ),
      );
    else lines.push(...expiryLines(read.info, now, lang));
    // As for the shared file: a refusal after the file last changed is one its content does not show.
    const changedAt = await stat(source.file).then(
      (s) => s.mtimeMs,
      () => Number.NEGATIVE_INFINITY,
    );
    if (refused !== undefined && refused > changedAt)
      lines.push(
        t(
          lang,
          `⚠️ Claude refused these credentials at ${formatUtc(refused)} and the file has not changed since: log in again on the host with this config dir (${cli}, then <code>/login</code>).`,
          `⚠️ Claude a refusé ces identifiants à ${formatUtc(refused)} et le fichier n’a pas changé depuis : reconnectez-vous sur l’hôte avec ce dossier de configuration (${cli}, puis <code>/login</code>).`,
        ),
      );
  } else if (refused !== undefined)
    lines.push(
      t(
        lang,
        `⚠️ Last refused by Claude: ${formatUtc(refused)}. If its turns still fail, renew <code>${escapeHtml(source.variable ?? '')}</code> in the mode’s <code>env</code>.`,
        `⚠️ Dernier refus de Claude : ${formatUtc(refused)}. Si ses tours échouent encore, renouvelez <code>${escapeHtml(source.variable ?? '')}</code> dans le <code>env</code> du mode.`,
      ),
    );
  return lines.join('\n');
}

/** The expiry of a credentials file and whether Claude Code renews it itself. */
function expiryLines(info: CredentialsInfo, now: number, lang: Lang): string[] {
  const { expiresAt, renewable } = info;
  const left = expiresAt - now;
  return [
    left > 0
      ? t(
          lang,
          `✅ Expires ${formatUtc(expiresAt)}, in ${formatSpan(left, lang)}`,
          `✅ Expire le ${formatUtc(expiresAt)}, dans ${formatSpan(left, lang)}`,
        )
      : renewable
        ? // An access token that aged while Claude Code did not run: nothing for the owner to do.
          t(
            lang,
            `🔄 Access token expired ${formatUtc(expiresAt)}, ${formatSpan(-left, lang)} ago: Claude Code renews it at its next run`,
            `🔄 Jeton d’accès expiré le ${formatUtc(expiresAt)}, il y a ${formatSpan(-left, lang)} : Claude Code le renouvelle à sa prochaine exécution`,
          )
        : t(
            lang,
            `⛔ Expired ${formatUtc(expiresAt)}, ${formatSpan(-left, lang)} ago`,
            `⛔ Expiré le ${formatUtc(expiresAt)}, il y a ${formatSpan(-left, lang)}`,
          ),
    renewable
      ? t(
          lang,
          'Refresh token present: Claude Code renews it when it runs.',
          'Jeton de renouvellement présent : Claude Code renouvelle à l’usage.',
        )
      : t(
          lang,
          'No refresh token: renew by logging in again.',
          'Pas de jeton de renouvellement : reconnectez-vous pour renouveler.',
        ),
  ];
}

/** The credentials of `claude.env` (or brainstem's environment), which every other mode shares. */
async function sharedView(
  file: string,
  kv: KvStore,
  lang: Lang,
  now: number,
  claudeEnv: Record<string, string>,
): Promise<string> {
  const title = t(lang, `${PROXY_TAG} <b>Claude credentials</b>`, `${PROXY_TAG} <b>Identifiants Claude</b>`);
  const cli = `<code>${escapeHtml(loginCommand(sharedConfigDir(claudeEnv)))}</code>`;
  const fromEnv = credentialsFromEnv(claudeEnv);
  const refused = lastRefusal(kv);
  if (fromEnv) {
    // What the file says (an old /login's, maybe expired) is not what Claude Code uses.
    return [
      title,
      t(
        lang,
        `🔑 Claude Code gets its credentials from <code>${fromEnv}</code> in its environment, not from a file: brainstem cannot see their expiry. If Claude turns fail with an authentication error, renew that variable.`,
        `🔑 Claude Code tient ses identifiants de <code>${fromEnv}</code> dans son environnement, pas d’un fichier : brainstem ne voit pas leur expiration. Si les tours Claude échouent avec une erreur d’authentification, renouvelez cette variable.`,
      ),
      refused
        ? t(
            lang,
            `Last refused by Claude: ${formatUtc(refused)}`,
            `Dernier refus de Claude : ${formatUtc(refused)}`,
          )
        : '',
      `${t(lang, 'File not used: ', 'Fichier non utilisé : ')}<code>${escapeHtml(file)}</code>`,
    ]
      .filter(Boolean)
      .join('\n');
  }
  const read = await readCredentials(file);
  const renewed = lastRenewalSeen(kv);
  const lines = [title];
  if (!read.ok) {
    lines.push(
      t(
        lang,
        `❌ Unreadable: ${escapeHtml(read.reason.en)}.`,
        `❌ Illisibles : ${escapeHtml(read.reason.fr)}.`,
      ),
      read.missing
        ? t(
            lang,
            `Log in once on the host (${cli}, then <code>/login</code>) or set CLAUDE_CREDENTIALS_FILE.`,
            `Connectez-vous une fois sur l’hôte (${cli}, puis <code>/login</code>) ou réglez CLAUDE_CREDENTIALS_FILE.`,
          )
        : read.denied
          ? // Claude Code runs as brainstem's user: it cannot read that file either.
            t(
              lang,
              `Claude Code runs as that user too: log in as it on the host (${cli}, then <code>/login</code>) and point CLAUDE_CREDENTIALS_FILE at its file (or unset it), or run brainstem as the file’s owner.`,
              `Claude Code tourne aussi sous cet utilisateur : connectez-vous avec lui sur l’hôte (${cli}, puis <code>/login</code>) et faites pointer CLAUDE_CREDENTIALS_FILE sur son fichier (ou retirez-la), ou lancez brainstem sous le propriétaire du fichier.`,
            )
          : '',
    );
  } else {
    const { subscriptionType, rateLimitTier } = read.info;
    // A refresh token Anthropic revoked leaves the file as it was, still saying it renews: a turn
    // refused since the file last changed is what tells it (a /login or a renewal rewrites the file).
    const changedAt = await stat(file).then(
      (s) => s.mtimeMs,
      () => Number.POSITIVE_INFINITY,
    );
    if (refused !== undefined && refused > changedAt)
      lines.push(
        t(
          lang,
          `⚠️ Claude refused these credentials at ${formatUtc(refused)} (a Claude turn failed on them) and the file has not changed since: Claude Code could not renew them. Log in again on the host (${cli}, then <code>/login</code>).`,
          `⚠️ Claude a refusé ces identifiants à ${formatUtc(refused)} (un tour Claude a échoué) et le fichier n’a pas changé depuis : Claude Code n’a pas pu les renouveler. Reconnectez-vous sur l’hôte (${cli}, puis <code>/login</code>).`,
        ),
      );
    lines.push(
      t(lang, 'Subscription: ', 'Abonnement : ') +
        escapeHtml(
          [subscriptionType, rateLimitTier].filter(Boolean).join(', ') || t(lang, 'unknown', 'inconnu'),
        ),
      ...expiryLines(read.info, now, lang),
    );
  }
  lines.push(
    renewed
      ? t(
          lang,
          `Last renewal seen: ${formatUtc(renewed)}`,
          `Dernier renouvellement vu : ${formatUtc(renewed)}`,
        )
      : t(lang, 'Last renewal seen: none yet', 'Dernier renouvellement vu : aucun pour l’instant'),
    `${t(lang, 'File: ', 'Fichier : ')}<code>${escapeHtml(file)}</code>`,
  );
  return lines.filter(Boolean).join('\n');
}
