import { describe, expect, it } from 'vitest';
import { REDACTED, redactValue, scrubText } from '../src/redact.js';

/**
 * Passwords that common clients take as a short flag, and credential headers
 * of any name: what the audit log and the logs keep of them. The whole audit
 * path (an /api call, the SQLite row) is in redaction.test.ts.
 */

const argv = (command: string[]) => (redactValue({ command }) as { command: string[] }).command;

describe('password flags in an argv', () => {
  it('hides mysql -p<password>, glued, and leaves -u, -P and the database', () => {
    expect(argv(['mysql', '-uroot', '-phunter2', '-P3306', 'db'])).toEqual([
      'mysql',
      '-uroot',
      `-p${REDACTED}`,
      '-P3306',
      'db',
    ]);
    expect(argv(['/usr/bin/mysqldump', '-ps3cret', 'db'])).toEqual([
      '/usr/bin/mysqldump',
      `-p${REDACTED}`,
      'db',
    ]);
  });

  it('leaves mysql -p alone (it asks), and the database after it', () => {
    expect(argv(['mysql', '-p', 'db'])).toEqual(['mysql', '-p', 'db']);
  });

  it('hides curl -u user:password, glued or apart, and --user', () => {
    expect(argv(['curl', '-u', 'admin:hunter2', 'https://example.com'])).toEqual([
      'curl',
      '-u',
      REDACTED,
      'https://example.com',
    ]);
    expect(argv(['curl', '-uadmin:hunter2', 'https://x'])).toEqual(['curl', `-u${REDACTED}`, 'https://x']);
    expect(argv(['curl', '--user', 'admin:hunter2', 'https://x'])).toEqual([
      'curl',
      '--user',
      REDACTED,
      'https://x',
    ]);
    expect(argv(['curl', '--user=admin:hunter2'])).toEqual(['curl', `--user=${REDACTED}`]);
  });

  it('hides sshpass -p and redis-cli -a, with the program behind a wrapper', () => {
    expect(argv(['sshpass', '-p', 'hunter2', 'ssh', 'host'])).toEqual([
      'sshpass',
      '-p',
      REDACTED,
      'ssh',
      'host',
    ]);
    expect(argv(['sudo', 'redis-cli', '-a', 'hunter2', 'ping'])).toEqual([
      'sudo',
      'redis-cli',
      '-a',
      REDACTED,
      'ping',
    ]);
  });

  it('leaves the same flags of other programs: they are no password there', () => {
    const harmless = [
      ['mkdir', '-p', '/srv/app'],
      ['ssh', '-p', '2222', 'host'],
      ['cp', '-pr', 'a', 'b'],
      ['tar', '-u', 'file'],
      ['make', '-p'],
    ];
    for (const command of harmless) expect(argv(command)).toEqual(command);
  });
});

describe('password flags in a command line (text)', () => {
  it('hides them in a shell command, one command of a pipeline at a time', () => {
    expect(scrubText("mysql -uroot -phunter2 db | gzip > dump.gz && curl -u 'admin:pw' https://x")).toBe(
      `mysql -uroot -p${REDACTED} db | gzip > dump.gz && curl -u ${REDACTED} https://x`,
    );
    expect(scrubText('sshpass -p hunter2 ssh -p 2222 host')).toBe(`sshpass -p ${REDACTED} ssh -p 2222 host`);
  });

  it('leaves other commands and prose as they are', () => {
    for (const text of ['mkdir -p /srv/app; ssh -p 2222 host', 'ran mysql -p db, asked for the password']) {
      expect(scrubText(text)).toBe(text);
    }
  });
});

describe('secret-named flags and their value in text', () => {
  it('hides them in a command line and in an argv written as JSON, escaped or not, once', () => {
    expect(scrubText("llama-server --api-key hunter2 --hf-token 'hf_abc' --port 8081")).toBe(
      `llama-server --api-key ${REDACTED} --hf-token '${REDACTED}' --port 8081`,
    );
    const json = JSON.stringify(['node', '--token', 'tok1', '--model', 'q.gguf']);
    expect(scrubText(json)).toBe(`["node","--token","${REDACTED}","--model","q.gguf"]`);
    expect(scrubText(JSON.stringify({ reason: json }))).toBe(JSON.stringify({ reason: scrubText(json) }));
    // An argv already redacted (redactValue) and then scrubbed as text stays as it was.
    const redacted = JSON.stringify(argv(['node', '--api-key', 'hunter2']));
    expect(scrubText(redacted)).toBe(redacted);
  });

  it('leaves a flag followed by another flag, and a flag naming a file', () => {
    for (const text of [
      'serve --token --verbose',
      'llama-server --api-key-file /etc/llama/key --port 8081',
    ]) {
      expect(scrubText(text)).toBe(text);
    }
  });
});

describe('credential headers', () => {
  it('hides the value of any header whose name has a secret word, whatever its prefix', () => {
    for (const name of [
      'X-Vault-Token',
      'Private-Token',
      'X-Amz-Security-Token',
      'X-Api-Key',
      'X-Auth',
      'Cookie',
    ]) {
      expect(scrubText(`${name}: hvs.hunter2vault`), name).toBe(`${name}: ${REDACTED}`);
    }
    expect(argv(['curl', '-H', 'X-Vault-Token: hvs.hunter2vault', 'https://vault'])).toEqual([
      'curl',
      '-H',
      `X-Vault-Token: ${REDACTED}`,
      'https://vault',
    ]);
  });

  it('leaves headers and words that only contain such a word, and a config path in a message', () => {
    for (const text of [
      'Content-Type: application/json',
      'X-Request-Id: 42',
      'Author: Alice',
      'Monkey: banana',
      'Keyboard: azerty',
      'tools.webSearch.apiKey: Required',
    ]) {
      expect(scrubText(text)).toBe(text);
    }
  });
});
