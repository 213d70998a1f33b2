/**
 * What a request for a route that does not exist is told. Under `/v1` the
 * client speaks OpenAI's API: it is told which of it brainstem serves, so a
 * client on another of OpenAI's APIs (embeddings, legacy completions) or a
 * typo in the path knows what to send instead of guessing.
 */
export function notFoundMessage(method: string, url: string): string {
  const said = `No route ${method} ${url}.`;
  const path = url.split('?')[0] ?? url;
  if (path === '/v1/responses' || path.startsWith('/v1/responses/')) {
    // The default of the Vercel AI SDK's OpenAI provider (`openai(model)`, @ai-sdk/openai 2 and later)
    // and of the openai SDK's `responses.create`; LangChain's ChatOpenAI when told to use it.
    return `${said} brainstem serves OpenAI's Chat Completions API, not its Responses API: send POST /v1/chat/completions (the Vercel AI SDK: openai.chat('<mode>') instead of openai('<mode>'), or @ai-sdk/openai-compatible; LangChain's ChatOpenAI: useResponsesApi: false).`;
  }
  if (path === '/v1' || path.startsWith('/v1/')) {
    return `${said} brainstem’s OpenAI-compatible endpoint serves POST /v1/chat/completions, GET /v1/models and GET /v1/models/{id}.`;
  }
  return said;
}
