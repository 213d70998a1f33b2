import { z } from 'zod';

/** What an OpenAI client may send to /v1/chat/completions; unknown fields are accepted, ignored and reported. */
// Each key OpenAI defines in a part or a message is in its shape, checked or not: the shapes are also
// the lists unknownNestedKeys names the other keys against.
const part = z
  .looseObject({
    type: z.string(),
    text: z.unknown().optional(),
    // Checked by src/images.ts and by each brain, as the part's type asks. The URL alone, as some
    // clients send it, is put in OpenAI's shape, the one llama-server reads (it finds no url in a string).
    image_url: z.union([z.string().transform((url) => ({ url })), z.unknown()]).optional(),
    input_audio: z.unknown().optional(),
    file: z.unknown().optional(),
    refusal: z.unknown().optional(),
  })
  .refine((p) => p.type !== 'text' || typeof p.text === 'string', {
    message: 'a text part holds its text as a string',
    path: ['text'],
  })
  .refine((p) => p.type !== 'refusal' || typeof p.refusal === 'string', {
    message: 'a refusal part holds what was said in refusal, as a string',
    path: ['refusal'],
  });
const toolCall = z.object({
  id: z.string(),
  type: z.literal('function').default('function'),
  function: z.object({ name: z.string(), arguments: z.string().default('') }),
});

export const chatMessageSchema = z
  .looseObject({
    role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
    content: z.union([z.string(), z.array(part), z.null()]).optional(),
    name: z.string().optional(),
    tool_calls: z.array(toolCall).optional(),
    tool_call_id: z.string().optional(),
    // An assistant message's: what it said in refusing, given to the brains as its words (see
    // refusalsAsWords); null as the openai SDK replays a message that refused nothing.
    refusal: z.string().nullish(),
    // Only null, as the openai SDK replays them. Any other value is that turn's content (a spoken
    // answer, a call in the deprecated form), which no brain is given: leaving it out would lose it
    // without a word.
    audio: z
      .null({ error: 'a spoken answer is not kept here: send what was said as the message’s content' })
      .optional(),
    function_call: z
      .null({
        error:
          'function_call is deprecated: send the call in tool_calls, with an id, and its result as a tool message',
      })
      .optional(),
  })
  // As OpenAI does: a result without it answers no call in particular (a Claude mode would tell it as
  // a bare "tool result", a local model as whatever its chat template makes of it).
  .refine((m) => m.role !== 'tool' || m.tool_call_id !== undefined, {
    message: 'a tool message names the call it answers in tool_call_id',
    path: ['tool_call_id'],
  })
  // As OpenAI does: only an assistant's may be left out (its tool calls said it all). A tool result
  // without it would reach a brain as an empty one, an earlier turn's user message as none at all.
  .refine((m) => m.refusal == null || m.role === 'assistant', {
    message: 'only an assistant message has a refusal: send a user’s words as its content',
    path: ['refusal'],
  })
  .refine((m) => m.role === 'assistant' || (m.content !== undefined && m.content !== null), {
    error: (issue) =>
      `a ${(issue.input as { role: string }).role} message needs its content: a string or an array of parts`,
    path: ['content'],
  });

type ChatMessageIn = z.infer<typeof chatMessageSchema>;

/**
 * An assistant's refusal, as another provider's history holds it (OpenAI's `refusal` on the
 * message, or a `refusal` part), is what the assistant said: each brain gets it as its words, a
 * text part in the part's place or the message's content. Neither brain reads it otherwise: Claude
 * Code would be told only that a part was there, llama-server refuses a part that is not text in
 * an assistant message.
 */
function refusalAsWords(m: ChatMessageIn): ChatMessageIn {
  if (m.role !== 'assistant') return m;
  const parts =
    Array.isArray(m.content) && m.content.some((p) => p.type === 'refusal')
      ? m.content.map((p) =>
          p.type === 'refusal' && typeof p.refusal === 'string' ? { type: 'text', text: p.refusal } : p,
        )
      : m.content;
  if (m.refusal == null) return parts === m.content ? m : { ...m, content: parts };
  const { refusal, ...rest } = m;
  if (Array.isArray(parts)) return { ...rest, content: [...parts, { type: 'text', text: refusal }] };
  return { ...rest, content: parts ? `${parts}\n\n${refusal}` : refusal };
}

export const toolSchema = z.object({
  type: z.literal('function'),
  function: z.looseObject({
    name: z.string().min(1),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    // OpenAI's structured-outputs switch: a llama mode passes it on, Claude Code has no such switch.
    strict: z.boolean().nullish(),
  }),
});

const jsonSchemaFormat = z.looseObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'a name of letters, digits, _ and -, at most 64 characters'),
  description: z.string().optional(),
  schema: z.record(z.string(), z.unknown()).optional(),
  strict: z.boolean().nullish(),
});

// Loose, as a message is: a key OpenAI does not define goes on to a llama mode with the rest
// (llama-server constrains a json_object answer to the `schema` beside it), and is named for a Claude
// mode (unknownNestedKeys). A strict object would drop it for every mode without a word.
const responseFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({ type: z.literal('json_schema'), json_schema: jsonSchemaFormat }),
]);

/**
 * Every field of the Chat Completions request, type-checked. What each brain
 * does with it is in the README's table; fields that only a brain can refuse
 * are checked by that brain, fields no brain honours by `refusedField`.
 */
export const chatRequestSchema = z
  .looseObject({
    model: z.string().default('active'),
    messages: z
      .array(chatMessageSchema)
      .min(1, 'messages must hold at least one message')
      .transform((messages) => messages.map(refusalAsWords)),
    stream: z.boolean().nullish(),
    stream_options: z
      .looseObject({ include_usage: z.boolean().optional(), include_obfuscation: z.boolean().optional() })
      .nullish(),
    tools: z.array(toolSchema).nullish(),
    // Loose for the same reason as response_format: a llama mode passes it on as it came, and a Claude
    // mode refuses any tool_choice object (it forces a tool).
    tool_choice: z
      .union([
        z.enum(['none', 'auto', 'required']),
        z.looseObject({
          type: z.literal('function'),
          function: z.looseObject({ name: z.string().min(1) }),
        }),
      ])
      .nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    max_tokens: z.number().int().positive().nullish(),
    max_completion_tokens: z.number().int().positive().nullish(),
    // Sampling and output controls: passed to a local model, refused by Claude modes unless default.
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    stop: z.union([z.string(), z.array(z.string()).max(4, 'at most 4 stop sequences')]).nullish(),
    seed: z.number().int().nullish(),
    presence_penalty: z.number().min(-2).max(2).nullish(),
    frequency_penalty: z.number().min(-2).max(2).nullish(),
    logit_bias: z
      .record(z.string().regex(/^\d+$/, 'keys are token ids'), z.number().min(-100).max(100))
      .nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.number().int().min(0).max(20).nullish(),
    response_format: responseFormat.nullish(),
    reasoning_effort: z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh']).nullish(),
    // No brain honours these beyond their default (see refusedField).
    n: z.number().int().min(1).nullish(),
    audio: z.unknown().optional(),
    modalities: z.array(z.string()).nullish(),
    prediction: z.unknown().optional(),
    web_search_options: z.unknown().optional(),
    functions: z.unknown().optional(),
    function_call: z.unknown().optional(),
    store: z.boolean().nullish(),
    verbosity: z.enum(['low', 'medium', 'high']).nullish(),
    // Accepted; they change nothing in an answer (brainstem stores nothing for OpenAI).
    user: z.string().nullish(),
    metadata: z.record(z.string(), z.string()).nullish(),
    service_tier: z.string().nullish(),
    prompt_cache_key: z.string().nullish(),
    safety_identifier: z.string().nullish(),
  })
  .refine((b) => !b.top_logprobs || b.logprobs === true, {
    message: 'top_logprobs needs logprobs: true',
    path: ['top_logprobs'],
  })
  // As OpenAI does: a client that sets them but not `stream` waits for a stream, and would get the answer whole.
  .refine((b) => b.stream_options == null || b.stream === true, {
    message: 'stream_options is only for a stream: send stream: true with it, or leave it out',
    path: ['stream_options'],
  })
  .superRefine((b, ctx) => {
    for (const issue of unpairedToolCalls(b.messages)) ctx.addIssue({ code: 'custom', ...issue });
  });

/**
 * Tool results that answer no call of an earlier assistant message, and calls
 * no later tool message answers: OpenAI refuses both, and a brain would get a
 * result it cannot tie to its call, or a call that seems to have had no
 * result. Looser than OpenAI on order (it wants the results right after their
 * call): OpenClaw puts a result it made up for a background call that never
 * ended at the end of the history. An id may come again in a later turn (an
 * upstream that gives none gets call_0 each time), so a result answers the
 * latest call with its id, and one more result for it is let be.
 */
function unpairedToolCalls(
  messages: readonly z.infer<typeof chatMessageSchema>[],
): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const unanswered = new Map<string, (string | number)[]>();
  const made = new Set<string>();
  const leftUnanswered = (id: string, path: (string | number)[]) =>
    issues.push({
      path,
      message: `the call "${id}" has no result: send a tool message with tool_call_id "${id}" after it`,
    });
  messages.forEach((m, i) => {
    if (m.role === 'tool' && m.tool_call_id !== undefined) {
      const id = m.tool_call_id;
      if (!unanswered.delete(id) && !made.has(id)) {
        issues.push({
          path: ['messages', i, 'tool_call_id'],
          message: `tool_call_id "${id}" answers no call: no earlier assistant message has a tool call of this id`,
        });
      }
    }
    if (m.role !== 'assistant') return;
    m.tool_calls?.forEach((c, j) => {
      const earlier = unanswered.get(c.id);
      if (earlier) leftUnanswered(c.id, earlier);
      unanswered.set(c.id, ['messages', i, 'tool_calls', j, 'id']);
      made.add(c.id);
    });
  });
  for (const [id, path] of unanswered) leftUnanswered(id, path);
  return issues;
}

/** The fields this endpoint knows; anything else a client sends is reported as ignored. */
const KNOWN_FIELDS = new Set(Object.keys(chatRequestSchema.shape));

/** The keys of `stream_options` OpenAI defines: the others are named as ignored, like unknown fields. */
const STREAM_OPTION_KEYS = new Set(
  Object.keys(chatRequestSchema.shape.stream_options.unwrap().unwrap().shape),
);

/** The request's fields no brain gets: unknown top-level ones, and unknown keys of `stream_options` (`stream_options.x`). */
export function unknownFields(body: Record<string, unknown>): string[] {
  const options = body.stream_options;
  return [
    ...Object.keys(body).filter((k) => !KNOWN_FIELDS.has(k)),
    ...(options && typeof options === 'object'
      ? Object.keys(options)
          .filter((k) => !STREAM_OPTION_KEYS.has(k))
          .map((k) => `stream_options.${k}`)
      : []),
  ];
}

export type ChatRequestBody = z.infer<typeof chatRequestSchema>;

const MESSAGE_KEYS = new Set(Object.keys(chatMessageSchema.shape));
const PART_KEYS = new Set(Object.keys(part.shape));
/**
 * The types of part OpenAI defines: each holds one key beside `type`, named as the type. Another key of PART_KEYS on
 * it (a caption as `text` on an `image_url` part) is read by no mode: a Claude mode takes an image's
 * bytes alone, a refusal's words alone; llama-server (tools/server, oaicompat_chat_params_parse)
 * turns an image or audio part into a text part holding its media marker, over any `text` beside
 * it, and reads only the `text` of a text part. A part of a type OpenAI does not define is left to
 * the brains (a Claude mode refuses it in the new turn, llama-server refuses it).
 */
const PART_TYPES: ReadonlySet<unknown> = new Set(['text', 'image_url', 'input_audio', 'file', 'refusal']);
/** What OpenAI defines in an `image_url` part's object. */
const IMAGE_URL_KEYS = new Set(['url', 'detail']);
/** What OpenAI defines in an `input_audio` part's object. */
const INPUT_AUDIO_KEYS = new Set(['data', 'format']);
const TOOL_CALL_KEYS = new Set(Object.keys(toolCall.shape));
const FUNCTION_KEYS = new Set(Object.keys(toolCall.shape.function.shape));
const TOOL_KEYS = new Set(Object.keys(toolSchema.shape));
const TOOL_FUNCTION_KEYS = new Set(Object.keys(toolSchema.shape.function.shape));
/** The keys OpenAI defines in a response_format, by its type. */
const RESPONSE_FORMAT_KEYS: ReadonlyMap<unknown, ReadonlySet<string>> = new Map(
  responseFormat.options.map((o) => [o.shape.type.value, new Set(Object.keys(o.shape))] as const),
);

/**
 * Keys OpenAI does not define inside the messages, the tools and the
 * response_format, as paths without indexes
 * (`messages[].content[].cache_control`, `response_format.schema`), each once,
 * in the order met; each says whether it reaches a brain that passes them on
 * as they came (a llama mode). A message's, a part's, a tool function's and a
 * response_format's do (their schemas are loose); a tool call's, its
 * function's and a tool's own do not: the schema strips them for every mode. Undefined when
 * there is none, the usual case: a loop over the keys, nothing allocated.
 */
export function unknownNestedKeys(body: {
  messages: readonly unknown[];
  tools?: unknown;
  response_format?: unknown;
}): Map<string, boolean> | undefined {
  const { messages, tools, response_format: format } = body;
  let found: Map<string, boolean> | undefined;
  const add = (path: string, passedOn: boolean) => {
    found ??= new Map();
    if (!found.has(path)) found.set(path, passedOn);
  };
  // The body passed the schema: every message, part, tool call and function is an object.
  for (const m of messages as Record<string, unknown>[]) {
    for (const k in m) if (!MESSAGE_KEYS.has(k)) add(`messages[].${k}`, true);
    if (Array.isArray(m.content)) {
      for (const p of m.content as Record<string, unknown>[]) {
        const own = PART_TYPES.has(p.type) ? p.type : undefined;
        for (const k in p) {
          if (!PART_KEYS.has(k)) add(`messages[].content[].${k}`, true);
          // A key OpenAI defines for another type of part (`text` beside an image): no mode reads it.
          // A null one holds nothing to lose (clients that write every field of their model send them).
          else if (own !== undefined && k !== 'type' && k !== own && p[k] != null) {
            add(`messages[].content[].${k}`, false);
          }
        }
        // A Claude mode sends the image's bytes alone (its `detail` the README says it has no use for).
        const image = p.image_url;
        if (image && typeof image === 'object') {
          for (const k in image) if (!IMAGE_URL_KEYS.has(k)) add(`messages[].content[].image_url.${k}`, true);
        }
        // A local mode passes the part on as it came (llama-server reads its data and format); a Claude
        // mode tells an earlier turn's as a line, without it (a transcript beside the audio is lost).
        const audio = p.input_audio;
        if (audio && typeof audio === 'object') {
          for (const k in audio)
            if (!INPUT_AUDIO_KEYS.has(k)) add(`messages[].content[].input_audio.${k}`, true);
        }
      }
    }
    if (Array.isArray(m.tool_calls)) {
      for (const c of m.tool_calls as Record<string, unknown>[]) {
        for (const k in c) if (!TOOL_CALL_KEYS.has(k)) add(`messages[].tool_calls[].${k}`, false);
        const f = c.function as Record<string, unknown>;
        for (const k in f) if (!FUNCTION_KEYS.has(k)) add(`messages[].tool_calls[].function.${k}`, false);
      }
    }
  }
  if (Array.isArray(tools)) {
    for (const t of tools as Record<string, unknown>[]) {
      for (const k in t) if (!TOOL_KEYS.has(k)) add(`tools[].${k}`, false);
      const f = t.function as Record<string, unknown>;
      for (const k in f) if (!TOOL_FUNCTION_KEYS.has(k)) add(`tools[].function.${k}`, true);
    }
  }
  // Passed on with the rest to a llama mode; a Claude mode takes `text` alone, and nothing beside it.
  if (format && typeof format === 'object') {
    const known = RESPONSE_FORMAT_KEYS.get((format as { type?: unknown }).type);
    for (const k in format) if (!known?.has(k)) add(`response_format.${k}`, true);
  }
  return found;
}

/** `messages.2.content: expected string, array or null` style, naming the field. */
export function describeZodError(error: z.ZodError): { message: string; param: string | undefined } {
  const issues = error.issues.slice(0, 5).map(explained);
  const param = issues[0]?.path.join('.') || undefined;
  const all = issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
  return { message: `Invalid request: ${all}`, param };
}

type Issue = z.core.$ZodIssue;

/**
 * An issue as a client can act on it. A value that fits none of a field's
 * shapes (`stop` is a string or an array of them) is zod's bare "Invalid
 * input": said instead is what is wrong within the shape of the value's type
 * (five stop sequences: "at most 4 stop sequences"; a tool_choice object:
 * its `type`), or, when its type is none of them, the types it may have.
 */
function explained(issue: Issue): { path: PropertyKey[]; message: string } {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return issue;
  const wrongType = (i: Issue) => i.code === 'invalid_type' && i.path.length === 0;
  const depth = (branch: Issue[]) => Math.max(...branch.map((i) => i.path.length));
  const ofItsType = issue.errors.filter((branch) => branch.length > 0 && !branch.some(wrongType));
  const closest = ofItsType.reduce<Issue[] | undefined>(
    (best, branch) => (best && depth(best) >= depth(branch) ? best : branch),
    undefined,
  );
  if (closest?.[0]) {
    const inner = explained(closest[0]);
    return { path: [...issue.path, ...inner.path], message: inner.message };
  }
  const types = issue.errors.flatMap((branch) =>
    branch.flatMap((i) => (i.code === 'invalid_type' && wrongType(i) ? [i.expected] : [])),
  );
  if (types.length === 0) return issue;
  const unique = [...new Set(types)];
  const last = unique.pop();
  return { path: issue.path, message: `expected ${unique.length ? `${unique.join(', ')} or ` : ''}${last}` };
}

/**
 * The first field no brain can honour, with what to send instead; undefined
 * when every such field is absent or holds its default.
 */
export function refusedField(body: ChatRequestBody): { param: string; message: string } | undefined {
  const refused = (param: string, why: string) => ({ param, message: `${param} is not supported: ${why}.` });
  if (body.n != null && body.n > 1) {
    return refused('n', 'brainstem answers with one choice per request; send n = 1 or leave it out');
  }
  if (body.audio != null) return refused('audio', 'no brain speaks; leave it out');
  if (body.modalities?.some((m) => m !== 'text')) {
    return refused('modalities', 'answers are text only; send ["text"] or leave it out');
  }
  if (body.prediction != null) return refused('prediction', 'no brain takes predicted outputs; leave it out');
  if (body.web_search_options != null) {
    return refused('web_search_options', 'no built-in web search here; send a web_search tool instead');
  }
  if (body.functions != null) return refused('functions', 'it is deprecated; send tools');
  if (body.function_call != null) return refused('function_call', 'it is deprecated; send tool_choice');
  if (body.store === true) {
    return refused('store', 'brainstem stores no completions; send false or leave it out');
  }
  if (body.verbosity != null && body.verbosity !== 'medium') {
    return refused(
      'verbosity',
      'no brain has this setting; ask for a shorter or longer answer in the prompt',
    );
  }
  return undefined;
}
