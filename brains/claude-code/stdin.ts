import { randomUUID } from 'node:crypto';
import type { ImageData } from '../../src/images.js';

/**
 * What brainstem writes to the CLI's stdin in `--input-format stream-json`
 * mode, one JSON object per line (shapes observed with CLI 2.1.197).
 */

/**
 * A user turn's text as the CLI must get it. The CLI takes a turn that starts
 * with "/" for one of its slash commands, in stream-json input too: "/foo what
 * does this do?" made no API request with 2.1.197 (only "Unknown command: /foo"
 * as its result), and "/cost", "/help", "/model", "/context" answer, "/clear"
 * and "/compact" change the session, with 2.1.197 and 2.1.332 alike. A leading
 * space is enough for both to send the text to the model as it is, which reads
 * it as the user wrote it.
 */
function asText(text: string): string {
  return text.startsWith('/') ? ` ${text}` : text;
}

/** One user turn. The CLI fills in the session id itself. */
export function userMessage(text: string): object {
  return {
    type: 'user',
    message: { role: 'user', content: asText(text) },
    parent_tool_use_id: null,
    session_id: '',
  };
}

/**
 * One user turn with images, as the pieces of one JSON line: the text block,
 * then one Messages API image block per image
 * (`{"type":"image","source":{"type":"base64","media_type":"image/png","data":"…"}}`).
 * CLI 2.1.197 and 2.1.332 pass such a block on to the API: unchanged when it
 * is small, re-encoded as JPEG of at most 2000 px a side when it is large
 * (from a few hundred KB); a block whose bytes are no image it can read
 * becomes a text block saying so. An image-only turn is accepted. The base64
 * text goes out as its own piece, never copied into a larger string (base64
 * needs no JSON escaping; src/images.ts checked it).
 */
export function userMessageWithImages(text: string, images: ImageData[]): string[] {
  const pieces = [
    '{"type":"user","parent_tool_use_id":null,"session_id":"","message":{"role":"user","content":[',
  ];
  if (text) pieces.push(JSON.stringify({ type: 'text', text: asText(text) }));
  for (const image of images) {
    if (pieces.length > 1) pieces.push(',');
    const source = `{"type":"base64","media_type":${JSON.stringify(image.mediaType)},"data":"`;
    pieces.push(`{"type":"image","source":${source}`, image.base64, '"}}');
  }
  pieces.push(']}}');
  return pieces;
}

/**
 * The answer to a `can_use_tool` request. An allow must carry `updatedInput`
 * (the tool fails without it); a deny's message reaches the model as the
 * tool's error result.
 */
export type PermissionAnswer =
  | { behavior: 'allow'; updatedInput: Record<string, unknown> }
  | { behavior: 'deny'; message: string };

export function permissionResponse(requestId: string, answer: PermissionAnswer): object {
  return {
    type: 'control_response',
    response: { subtype: 'success', request_id: requestId, response: answer },
  };
}

/** Refuses a control request brainstem does not serve, so the CLI does not wait for it. */
export function controlError(requestId: string, error: string): object {
  return { type: 'control_response', response: { subtype: 'error', request_id: requestId, error } };
}

/** Stops the running turn; the CLI still ends it with a `result` line. */
export function interruptRequest(): object {
  return { type: 'control_request', request_id: randomUUID(), request: { subtype: 'interrupt' } };
}

/**
 * The SDK's opening handshake: the CLI answers it once it has started, before
 * any turn and without any API request, so a spare knows when it is ready.
 */
export function initializeRequest(requestId: string): object {
  return { type: 'control_request', request_id: requestId, request: { subtype: 'initialize' } };
}
