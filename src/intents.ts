/**
 * Recognises the few things a user may say that brainstem answers itself,
 * without a brain call: a switch request, help, status, the mode list. And
 * whether the user asks about consumption, so a usage summary can be given to
 * the brain. Matching is on the user's own words, accents and case folded.
 */
export type Intent =
  | { kind: 'switch'; target: string }
  | { kind: 'help' }
  | { kind: 'status' }
  | { kind: 'modes' }
  | { kind: 'usage' };

export type Lang = 'en' | 'fr';

export function fold(text: string): string {
  return text
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[!?.\u2026,;:]+\s*$/u, '')
    .replace(/\s+/g, ' ')
    .trim();
}

const POLITE =
  /^(?:(?:please|stp|svp|s'il te plait|s'il vous plait|peux-tu|tu peux|can you|could you)\s+)+|(?:\s+(?:please|stp|svp|merci|thanks))+$/g;
const VERB =
  /^(passe|passer|passes|bascule|basculer|change|changer|switch|switches|go|goes|use|utilise|utiliser|mets|met|mettre|reviens|retourne|return|back)(\s+(?:en|to|vers|sur|into|au|a|back to|back))?(\s+(?:le|la|the))?(\s+mode)?\s+([a-z0-9_-]+)(\s+mode)?$/;
/**
 * Verbs that mean a switch with no "to" or "mode" after them. Others ("use", "change") then
 * speak of the thing itself: "change the locale", "use ollama" in a coding chat are for the brain,
 * though `locale` and `ollama` name a mode too. So does a name after an article without "mode":
 * "back to the project" is about the work, not mode `anklume` (alias `project`).
 */
const SWITCH_VERB = /^(?:passe|passer|passes|bascule|basculer|switch|switches)$/;
const MODE_FIRST = /^(?:\/?mode)\s+([a-z0-9_-]+)$|^([a-z0-9_-]+)\s+mode$/;

/** The mode a "verb (to) (mode) name" request names, if the words are one. */
function verbTarget(f: string): string | undefined {
  const m = VERB.exec(f);
  if (!m) return undefined;
  const [, verb = '', to, article, modeBefore, target, modeAfter] = m;
  const mode = modeBefore || modeAfter;
  if ((article || to?.trim() === 'au') && !mode) return undefined;
  return to || mode || SWITCH_VERB.test(verb) ? target : undefined;
}

/** `isMode` says whether a word names a mode or an alias; anything else is not a switch request. */
export function detectIntent(words: string, isMode: (name: string) => boolean): Intent | undefined {
  const f = fold(words).replace(POLITE, '').trim();
  if (f.length === 0 || f.length > 80) return usageAsked(f) ? { kind: 'usage' } : undefined;
  const first = MODE_FIRST.exec(f);
  const target = verbTarget(f) ?? first?.[1] ?? first?.[2];
  if (target && isMode(target)) return { kind: 'switch', target };
  if (/^\/?(?:help|aide|\?)$/.test(f)) return { kind: 'help' };
  if (/^\/?(?:status|statut|etat)$/.test(f)) return { kind: 'status' };
  if (/^\/?(?:modes|liste des modes|list modes|quels modes|which modes)$/.test(f)) return { kind: 'modes' };
  return usageAsked(f) ? { kind: 'usage' } : undefined;
}

const USAGE =
  /\b(?:combien (?:j'ai|ai-je|on a|avons-nous|tu as|as-tu) (?:consomme|depense|utilise)|consommation|conso|usage|couts?|cost|costs|quota|tokens?|credits?|how much (?:did|have) (?:i|we) (?:spent|spend|used|use)|spent|depense)\b/;

export function usageAsked(folded: string): boolean {
  return USAGE.test(folded);
}

/** French when the words look French; the bot passes the Telegram language instead. */
export function guessLang(words: string): Lang {
  return /\b(?:passe|bascule|combien|aide|statut|bonjour|salut|merci|quel|quelle|est-ce|je|tu|vous|le|la|les|des|une?)\b/.test(
    fold(words),
  )
    ? 'fr'
    : 'en';
}
