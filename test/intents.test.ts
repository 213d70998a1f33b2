import { describe, expect, it } from 'vitest';
import { detectIntent, guessLang } from '../src/intents.js';

// With some of the default aliases that are everyday words too.
const modes = new Set([
  'anklume',
  'assistant',
  'local',
  'lical',
  'ank',
  'locale',
  'project',
  'projet',
  'ollama',
  'claude',
]);
const isMode = (n: string) => modes.has(n);

describe('detectIntent', () => {
  it.each([
    ['passe en mode local', 'local'],
    ['Passe en local !', 'local'],
    ['switch to assistant', 'assistant'],
    ['switch to assistant mode please', 'assistant'],
    ['mode local', 'local'],
    ['/mode lical', 'lical'],
    ['bascule sur le mode anklume', 'anklume'],
    ['local mode', 'local'],
    ['peux-tu passer en mode assistant ?', 'assistant'],
    ['switch local', 'local'],
    ['use the local mode', 'local'],
    ['go back to local', 'local'],
    ['utilise le mode local', 'local'],
    ['back to the project mode', 'project'],
    ['retourne au mode projet', 'projet'],
  ])('"%s" is a switch to %s', (words, target) => {
    expect(detectIntent(words, isMode)).toEqual({ kind: 'switch', target });
  });

  it.each([
    'switch to the other branch in git',
    'passe en mode avion',
    // An instruction to the brain about code, not to brainstem: "use"/"change" switch only with "to" or "mode".
    'change the locale',
    'change la locale',
    'use ollama',
    'use the project',
    'utilise claude',
    // Nor a topic: a name after "the" or "au" is a mode only with the word "mode".
    'back to the project',
    'ok, back to the project',
    'reviens au projet',
    'go to the project',
    'what is local mode in vim',
    'local',
    'mode',
  ])('"%s" is not a switch request', (words) => {
    expect(detectIntent(words, isMode)?.kind).not.toBe('switch');
  });

  it('recognises help, status, modes and usage questions', () => {
    expect(detectIntent('aide', isMode)).toEqual({ kind: 'help' });
    expect(detectIntent('help?', isMode)).toEqual({ kind: 'help' });
    expect(detectIntent('statut', isMode)).toEqual({ kind: 'status' });
    expect(detectIntent('modes', isMode)).toEqual({ kind: 'modes' });
    expect(detectIntent("combien j'ai consommé cette semaine ?", isMode)).toEqual({ kind: 'usage' });
    expect(detectIntent('how many tokens did we use today', isMode)).toEqual({ kind: 'usage' });
    expect(detectIntent('quel est le coût du mois', isMode)).toEqual({ kind: 'usage' });
    expect(detectIntent('write me a poem about autumn', isMode)).toBeUndefined();
  });

  it('guesses French', () => {
    expect(guessLang('passe en mode local')).toBe('fr');
    expect(guessLang('switch to local')).toBe('en');
  });
});
