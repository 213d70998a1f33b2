import v8 from 'node:v8';

/**
 * Keeps V8's top compiler out of the start. On Node 24 two pieces of code get
 * hot enough for TurboFan while brainstem starts (`--trace-opt`, against some
 * 50 Maglev compilations): `path`'s normalizeString, run by Node's module
 * resolver for every chunk and package the start loads, and a loop run once
 * the spare's MCP handshake is answered, replaced on the stack. Those two
 * compilations page in TurboFan's code from the node binary, ~5 MB that stay
 * resident in an idle service (idle RSS 81.7–82.3 MB, 76.6–77.9 held back, in
 * probes like the start-up bench's). So until the start's burst is over (the
 * first idle window, at most `HOLD_MAX_MS`), a function must be used ten
 * times more than usual before TurboFan compiles it, and no loop is replaced
 * on the stack; then V8's defaults come back. A function Maglev compiled
 * meanwhile keeps the larger threshold until it next reaches it, so fewer
 * reach TurboFan soon after the start (14–16 TurboFan compilations in the
 * first 300 local chats, 44–46 without the hold); the start-up and chat
 * figures of `npm run bench` moved within noise. Node 20's V8 names these
 * thresholds otherwise and its start stays under 70 MB: it is left as it is.
 */
const HELD = '--invocation-count-for-turbofan=30000 --no-use-osr';
/**
 * V8's defaults on Node 24 (V8 13.6, `node --v8-options`); V8 has no call that
 * reads a flag. A flag a later V8 renamed is refused with "Error: unrecognized
 * flag" on stderr, which test/bundle.test.ts checks on every Node CI runs.
 */
const USUAL = '--invocation-count-for-turbofan=3000 --use-osr';

/** A service busy from its start on (a queue of messages after a restart) is not kept from TurboFan long. */
const HOLD_MAX_MS = 15_000;

let held: NodeJS.Timeout | undefined;

/** Called first thing at start; a no-op where V8 does not know the flags. */
export function holdTurbofanDuringStart(): void {
  if (Number(process.versions.node.split('.')[0]) < 24) return;
  v8.setFlagsFromString(HELD);
  held = setTimeout(endStartTiering, HOLD_MAX_MS);
  held.unref();
}

/** The start's burst is over (the first idle window): V8 tiers up as usual from here. */
export function endStartTiering(): void {
  if (!held) return;
  clearTimeout(held);
  held = undefined;
  v8.setFlagsFromString(USUAL);
}
