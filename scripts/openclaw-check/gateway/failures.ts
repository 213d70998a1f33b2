/**
 * OpenClaw's Bot API calls through the front that failed, which the other checks may not see:
 * OpenClaw logs a failed send and goes on (a preview left unedited, a reaction or a typing
 * missing), and a later check may still find the words it waits for.
 */

/**
 * grammY's errors as OpenClaw logs them: `Call to 'sendMessage' failed! (400: Bad Request: …)`
 * for an error answer, `Network request for 'deleteMessage' failed!` for no answer.
 */
const GRAMMY_FAILURE = /(Call to|Network request for) '(\w+)' failed!(?: \((\d+):)?/;
/** OpenClaw's own polling of the front (a fetch of its own, not grammY) when it gives up. */
const POLLING_FAILURE = /isolated polling ingress failed: /;
/** Where OpenClaw's gateway stops (restart.ts) and starts again. */
const GATEWAY_STOPS = /\[gateway\] received SIG/;
const GATEWAY_STARTS = /\[gateway\] (loading configuration|starting)/;
/** brainstem's log lines of a call of OpenClaw's that the front answered with an error of its own. */
const FRONT_FAILURES = [
  'front: a call failed',
  'front: Telegram not reached',
  'front: a call of OpenClaw that writes to the state database is refused',
];

/**
 * Each failure, as a short line: those OpenClaw logged (but a 429, which it makes again after
 * `retry_after`, as the 429 check sees it do; and a call that got no answer while its own gateway
 * was stopping, which closes its connections itself), and the front's own in brainstem's log.
 */
export function frontCallFailures(openclawLog: string, brainstemLog: readonly string[]): string[] {
  const failures: string[] = [];
  let stopping = false;
  for (const line of openclawLog.split('\n')) {
    if (GATEWAY_STOPS.test(line)) stopping = true;
    else if (GATEWAY_STARTS.test(line)) stopping = false;
    const call = GRAMMY_FAILURE.exec(line);
    if (call) {
      const [, kind, , code] = call;
      if (code === '429' || (stopping && kind === 'Network request for')) continue;
      failures.push(`OpenClaw: ${short(line)}`);
    } else if (POLLING_FAILURE.test(line) && !stopping) {
      failures.push(`OpenClaw: ${short(line)}`);
    }
  }
  for (const line of brainstemLog) {
    const msg = parsed(line)?.msg;
    if (typeof msg === 'string' && FRONT_FAILURES.some((f) => msg.startsWith(f))) {
      failures.push(`brainstem: ${short(line)}`);
    }
  }
  return failures;
}

const short = (line: string) => line.trim().slice(0, 240);

function parsed(line: string): { msg?: unknown } | undefined {
  try {
    return JSON.parse(line) as { msg?: unknown };
  } catch {
    return undefined;
  }
}
