/**
 * brainstem bound to one address of this machine that is not loopback (a LAN
 * address, as an owner sets server.host for clients on the network): the real
 * CLI's MCP client must reach brainstem's tools there. Where the machine has
 * no such address, the bind on every address (0.0.0.0) is the case run: its
 * children reach it on loopback.
 */
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { text, toolUse } from './fakes/anthropic.js';
import { startClaudeService } from './helpers/service.js';

const lanAddress =
  Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address ?? '0.0.0.0';

describe(`bound to ${lanAddress}`, () => {
  it('Claude gets brainstem’s tools over /mcp and runs one', async () => {
    const { fake, svc, close } = await startClaudeService({
      parts: { tools: true },
      config: { server: { host: lanAddress } },
    });
    try {
      fake.script(() => toolUse('mcp__brainstem__git_status', {}, text('Looked.')));
      const r = await svc.client.chat.completions.create({
        model: 'assistant',
        messages: [{ role: 'user', content: 'look at the repository please' }],
      });
      expect(r.choices[0]?.message.content).toContain('Looked.');
      const [first, second] = fake.mainRequests();
      expect(first?.tools).toContain('mcp__brainstem__git_status');
      // The call reached brainstem: a result came back, refusal or not (no repository is configured).
      expect(second?.toolResults).toHaveLength(1);
    } finally {
      await close();
    }
  }, 90_000);
});
