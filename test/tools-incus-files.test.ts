import {
  chmodSync,
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are read by path; a wrong path fails the assertion.
type Answer = Record<string, any>;

let svc: TestService;
const dir = mkdtempSync(path.join(tmpdir(), 'bst-incus-files-'));
const log = path.join(dir, 'incus-argv.jsonl');
const root = path.join(dir, 'root');

/** A fake `incus` on PATH: records its argv (one JSON array per line) and answers like the real one. */
const FAKE_INCUS = `#!${process.execPath}
const fs = require('node:fs');
const argv = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify(argv) + '\\n');
const project = argv[argv.indexOf('--project') + 1];
/** n instances of about 4 KB each, as a host's real list: config, devices and state make them that big. */
const many = (n) => Array.from({ length: n }, (_, i) => ({
  name: 'ct' + i, status: 'Running', type: 'container', project,
  config: { 'user.notes': 'x'.repeat(4000) },
  state: { network: { eth0: { addresses: [{ family: 'inet', address: '10.1.0.' + (i % 250) }] } } },
}));
if (argv[0] === 'list' && project === 'fleet') {
  console.log(JSON.stringify(many(60)));
} else if (argv[0] === 'list' && project === 'vast') {
  console.log(JSON.stringify(many(2100)));
} else if (argv[0] === 'list' && project === 'odd') {
  console.log('WARNING: cgroup v1 detected\\n[]');
} else if (argv[0] === 'list') {
  console.log(JSON.stringify([
    { name: 'web', status: 'Running', type: 'container', project: 'default',
      state: { network: { eth0: { addresses: [{ family: 'inet', address: '10.0.0.5' }] }, lo: { addresses: [{ family: 'inet', address: '127.0.0.1' }] } } } },
    { name: 'db', status: 'Stopped', type: 'virtual-machine', project: 'default', state: null },
  ]));
} else if (argv[0] === 'exec') {
  console.log('ran in ' + argv[1] + ': ' + JSON.stringify(argv.slice(argv.indexOf('--') + 1)));
}
`;

const calls = () =>
  readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as string[]);

async function api(tool: string, body: unknown = {}) {
  const res = await fetch(`${svc.url}/api/${tool}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer };
}

const PATH = process.env.PATH;

beforeAll(async () => {
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'incus'), FAKE_INCUS);
  chmodSync(path.join(bin, 'incus'), 0o755);
  // The fake stays CommonJS whatever package.json a folder above it holds: a stray one in
  // /tmp saying "type": "module" once made it ESM, and every incus test failed.
  writeFileSync(path.join(bin, 'package.json'), '{ "type": "commonjs" }\n');
  // Put back in afterAll: a worker runs other test files after this one (vitest.config.ts).
  process.env.PATH = `${bin}${path.delimiter}${PATH}`;

  mkdirSync(path.join(root, 'sub'), { recursive: true });
  writeFileSync(path.join(root, 'notes.txt'), 'root notes\n');
  writeFileSync(path.join(root, 'sub', 'deep.txt'), 'deep file\n');
  writeFileSync(path.join(dir, 'secret.txt'), 'outside secret\n');
  writeFileSync(path.join(root, 'blob.bin'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]));
  writeFileSync(path.join(root, 'big.txt'), 'é'.repeat(300));
  writeFileSync(path.join(root, 'emoji.txt'), '😀'.repeat(100));
  symlinkSync(path.join(dir, 'secret.txt'), path.join(root, 'escape-link'));
  symlinkSync(dir, path.join(root, 'escape-dir'));
  symlinkSync(path.join(root, 'notes.txt'), path.join(root, 'inner-link'));

  svc = await startTestService({
    parts: { tools: true },
    config: {
      claude: { bin: 'true' },
      tools: {
        incus: {
          instances: ['web', 'db'],
          projects: ['default', 'lab', 'fleet', 'vast', 'odd'],
          commands: ['echo', 'ls'],
        },
        files: { roots: [root], maxBytes: 200 },
      },
    },
  });
});

beforeEach(() => {
  writeFileSync(log, '');
});

afterAll(async () => {
  await svc?.close();
  process.env.PATH = PATH;
});

describe('incus_list', () => {
  it('lists the instances of the default project', async () => {
    const { status, body } = await api('incus_list');
    expect(status).toBe(200);
    expect(calls()).toEqual([['list', '--format', 'json', '--project', 'default']]);
    expect(body.data).toEqual([
      { name: 'web', status: 'Running', type: 'container', project: 'default', addresses: ['10.0.0.5'] },
      { name: 'db', status: 'Stopped', type: 'virtual-machine', project: 'default', addresses: [] },
    ]);
  });

  it('lists a host of 60 instances whole, though its JSON is longer than tools.maxOutputChars', async () => {
    const { status, body } = await api('incus_list', { project: 'fleet' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ ok: true, truncated: false });
    expect(body.data).toHaveLength(60);
    expect(body.data[59]).toEqual({
      name: 'ct59',
      status: 'Running',
      type: 'container',
      project: 'fleet',
      addresses: ['10.1.0.59'],
    });
  });

  it('fails, never ok with part of the list, when the output is past what it reads or not the JSON list', async () => {
    const vast = await api('incus_list', { project: 'vast' });
    expect(vast.status).toBe(502);
    expect(vast.body.result.ok).toBe(false);
    expect(vast.body.result).not.toHaveProperty('data');
    expect(vast.body.error.code).toBe('tool_failed');
    expect(vast.body.error.message).toMatch(/incus list printed more than \d+ characters for project "vast"/);
    const odd = await api('incus_list', { project: 'odd' });
    expect(odd.status).toBe(502);
    expect(odd.body.error.code).toBe('tool_failed');
    expect(odd.body.error.message).toContain(
      'incus list\'s output for project "odd" is not the JSON list of instances brainstem reads: ',
    );
  });

  it('refuses a project that is not allowed', async () => {
    const { status, body } = await api('incus_list', { project: 'prod' });
    expect(status).toBe(403);
    expect(body.error.param).toBe('project');
    expect(calls()).toEqual([]);
  });
});

describe('incus_exec', () => {
  it('passes the command as argv: a shell metacharacter stays one literal argument', async () => {
    const command = ['echo', ';rm -rf /', '$(id)', 'a && b'];
    const { status, body } = await api('incus_exec', { instance: 'web', command });
    expect(status).toBe(200);
    expect(body.ok).toBe(true);
    expect(calls()).toEqual([['exec', 'web', '--project', 'default', '--', ...command]]);
    expect(body.output).toContain(JSON.stringify(command));
  });

  it('passes the user, working directory and project options', async () => {
    await api('incus_exec', {
      instance: 'db',
      project: 'lab',
      user: 1000,
      cwd: '/srv',
      command: ['ls', '-la'],
    });
    expect(calls()).toEqual([
      ['exec', 'db', '--project', 'lab', '--user', '1000', '--cwd', '/srv', '--', 'ls', '-la'],
    ]);
  });

  it('refuses an instance or a project that is not allowed, and a shell string', async () => {
    const instance = await api('incus_exec', { instance: 'mail', command: ['ls'] });
    expect(instance.status).toBe(403);
    expect(instance.body.error.param).toBe('instance');
    expect(instance.body.error.message).toContain('Allowed: web, db');
    const project = await api('incus_exec', { instance: 'web', project: 'prod', command: ['ls'] });
    expect(project.body.error.param).toBe('project');
    const shell = await api('incus_exec', { instance: 'web', command: 'ls; rm -rf /' });
    expect(shell.status).toBe(400);
    expect(shell.body.error.param).toBe('command');
    const empty = await api('incus_exec', { instance: 'web', command: [] });
    expect(empty.body.error.param).toBe('command');
    expect(calls()).toEqual([]);
  });

  it('refuses an argument or a working directory holding a NUL character as a bad request, running nothing', async () => {
    const arg = await api('incus_exec', { instance: 'web', command: ['echo', 'a\u0000b'] });
    expect(arg.status).toBe(400);
    expect(arg.body.error.message).toMatch(/^An argument holds a NUL character .*: "a\\0b"\.$/);
    const cwd = await api('incus_exec', { instance: 'web', cwd: '/srv\u0000', command: ['ls'] });
    expect(cwd.status).toBe(400);
    expect(cwd.body.error.message).toMatch(/: "\/srv\\0"\.$/);
    expect(calls()).toEqual([]);
  });
});

describe('incus allow-lists', () => {
  const callOf = (svc2: TestService) => (tool: string, input: unknown) =>
    fetch(`${svc2.url}/api/${tool}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svc2.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(input),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as Answer }));

  it('allow nothing by default: no project, no instance, no program', async () => {
    const bare = await startTestService({ parts: { tools: true }, config: { claude: { bin: 'true' } } });
    try {
      const call = callOf(bare);
      const list = await call('incus_list', {});
      expect(list.status).toBe(403);
      expect(list.body.error).toMatchObject({
        param: 'project',
        message: 'No incus project is allowed: set tools.incus.projects in brainstem.json.',
      });
      // One named that is not allowed is quoted, with the (empty) allow-list.
      const named = await call('incus_list', { project: 'lab' });
      expect(named.status).toBe(403);
      expect(named.body.error.message).toBe(
        'incus project "lab" is not allowed. Allowed: none (set tools.incus.projects).',
      );
      const exec = await call('incus_exec', { instance: 'web', command: ['ls'] });
      expect(exec.status).toBe(403);
      expect(exec.body.error.message).toContain('tools.incus.instances');
      expect(calls()).toEqual([]);
    } finally {
      await bare.close();
    }
  });

  it('run only the listed programs, and none when the list is empty', async () => {
    const strict = await startTestService({
      parts: { tools: true },
      config: {
        claude: { bin: 'true' },
        tools: { incus: { instances: ['web'], projects: ['default'], commands: ['systemctl'] } },
      },
    });
    const noPrograms = await startTestService({
      parts: { tools: true },
      config: { claude: { bin: 'true' }, tools: { incus: { instances: ['web'], projects: ['default'] } } },
    });
    try {
      const call = callOf(strict);
      const refused = await call('incus_exec', { instance: 'web', command: ['rm', '-rf', '/'] });
      expect(refused.status).toBe(403);
      expect(refused.body.error.param).toBe('command');
      expect(refused.body.error.message).toContain('Allowed: systemctl.');
      const none = await callOf(noPrograms)('incus_exec', { instance: 'web', command: ['ls'] });
      expect(none.status).toBe(403);
      expect(none.body.error.message).toContain('none (list programs in tools.incus.commands)');
      expect(calls()).toEqual([]);
      const allowed = await call('incus_exec', {
        instance: 'web',
        command: ['systemctl', 'status', 'nginx'],
      });
      expect(allowed.status).toBe(200);
      expect(calls()).toEqual([
        ['exec', 'web', '--project', 'default', '--', 'systemctl', 'status', 'nginx'],
      ]);
    } finally {
      await strict.close();
      await noPrograms.close();
    }
  });
});

describe('read_file', () => {
  it('reads a text file under a root, by relative or absolute path', async () => {
    const rel = await api('read_file', { path: 'notes.txt' });
    expect(rel.status).toBe(200);
    expect(rel.body.output).toBe('root notes\n');
    const abs = await api('read_file', { path: path.join(root, 'sub', 'deep.txt') });
    expect(abs.body.output).toBe('deep file\n');
    const dotted = await api('read_file', { path: 'sub/../notes.txt' });
    expect(dotted.body.output).toBe('root notes\n');
    const innerLink = await api('read_file', { path: 'inner-link' });
    expect(innerLink.body.output).toBe('root notes\n');
  });

  it('refuses an escape through ..', async () => {
    for (const p of [
      '../secret.txt',
      'sub/../../secret.txt',
      path.join(root, '..', 'secret.txt'),
      '/etc/passwd',
    ]) {
      const { status, body } = await api('read_file', { path: p });
      expect(status).toBe(403);
      expect(body.error.param).toBe('path');
      expect(JSON.stringify(body)).not.toContain('outside secret');
    }
  });

  it('refuses an escape through a symlink, to a file or through a directory', async () => {
    for (const p of ['escape-link', 'escape-dir/secret.txt']) {
      const { status, body } = await api('read_file', { path: p });
      expect(status).toBe(403);
      expect(body.error.message).toContain('outside the readable roots');
      expect(JSON.stringify(body)).not.toContain('outside secret');
    }
  });

  it('answers a missing file beyond a link out of the roots as it answers one that exists there', async () => {
    // A 404 for the absent one only would tell which files exist outside the roots.
    for (const p of ['escape-dir/secret.txt', 'escape-dir/absent.txt', 'escape-dir/no-dir/absent.txt']) {
      const { status, body } = await api('read_file', { path: p });
      expect([p, status, body.error.code]).toEqual([p, 403, 'tool_forbidden']);
    }
    expect((await api('read_file', { path: 'sub/no-dir/absent.txt' })).status).toBe(404);
  });

  it('refuses binary files and directories, and says when a file is missing', async () => {
    const bin = await api('read_file', { path: 'blob.bin' });
    expect(bin.status).toBe(409);
    expect(bin.body.error.message).toContain('binary');
    const folder = await api('read_file', { path: 'sub' });
    expect(folder.status).toBe(409);
    const missing = await api('read_file', { path: 'nope.txt' });
    expect(missing.status).toBe(404);
  });

  it('reads a text file in Latin-1 as text, saying so; data without NUL bytes is still binary', async () => {
    writeFileSync(path.join(root, 'latin1.txt'), Buffer.from('Café crème, à bientôt\n', 'latin1'));
    const latin1 = await api('read_file', { path: 'latin1.txt' });
    expect(latin1.status).toBe(200);
    expect(latin1.body.output).toBe(
      '[not UTF-8: read as Windows-1252, a superset of Latin-1]\nCafé crème, à bientôt\n',
    );
    expect(latin1.body.data).toMatchObject({ encoding: 'windows-1252' });
    // Ending in a byte UTF-8 would take for the start of a character: the whole file is still read.
    writeFileSync(path.join(root, 'latin1-end.txt'), Buffer.from('Menu du jour : café', 'latin1'));
    const end = await api('read_file', { path: 'latin1-end.txt' });
    expect(end.body.output).toBe(
      '[not UTF-8: read as Windows-1252, a superset of Latin-1]\nMenu du jour : café',
    );
    expect(end.body.truncated).toBe(false);
    const utf8 = await api('read_file', { path: 'notes.txt' });
    expect(utf8.body.data).toMatchObject({ encoding: 'utf-8' });
    // Control bytes everywhere and no valid UTF-8: data, though no byte is 0.
    writeFileSync(
      path.join(root, 'packed.bin'),
      Buffer.from(Array.from({ length: 64 }, (_, i) => [0x01 + (i % 31), 0xc3, 0xff]).flat()),
    );
    const packed = await api('read_file', { path: 'packed.bin' });
    expect(packed.status).toBe(409);
    expect(packed.body.error.message).toContain('is binary');
  });

  it('speaks French to a reader in French (a French /run): its refusals and the notes in its output', async () => {
    const registry = svc.service.tools?.registry;
    const read = (p: string) =>
      registry?.call('read_file', { path: p }, { caller: 'telegram:111', lang: 'fr' }) ?? Promise.reject();
    expect((await read('/etc/passwd')).error?.fr).toMatch(/^\/etc\/passwd est hors des racines lisibles \(/);
    expect((await read('blob.bin')).error?.fr).toMatch(/est binaire ; read_file ne rend que du texte\.$/);
    expect((await read('nope.txt')).error?.fr).toMatch(/^Pas de fichier à .*nope\.txt\.$/);
    expect((await read('sub')).error?.fr).toMatch(/n’est pas un fichier ordinaire/);
    writeFileSync(path.join(root, 'latin1-fr.txt'), Buffer.from('Café', 'latin1'));
    expect((await read('latin1-fr.txt')).output).toBe(
      '[pas en UTF-8 : lu en Windows-1252, un sur-ensemble de Latin-1]\nCafé',
    );
    expect((await read('big.txt')).note).toBe(
      'Seuls les 200 premiers octets du fichier sur 600 sont affichés : read_file s’arrête à maxBytes (200), que tools.files.maxBytes (200) plafonne.',
    );
  });

  it('refuses a FIFO before opening it: four calls do not take the thread pool, other reads go on', async (ctx) => {
    const fifo = path.join(root, 'pipe');
    await execa('mkfifo', [fifo]);
    // Were an open still blocked on the FIFO, a writer releases it (O_RDWR never blocks on Linux).
    ctx.onTestFinished(() => closeSync(openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK)));
    // More calls than libuv has pool threads (4): each blocked open would hold one.
    const calls = await Promise.all(Array.from({ length: 6 }, () => api('read_file', { path: 'pipe' })));
    for (const { status, body } of calls) {
      expect(status).toBe(409);
      expect(body.error.param).toBe('path');
      expect(body.error.message).toContain('is not a regular file');
    }
    const after = await api('read_file', { path: 'notes.txt' });
    expect(after.body.output).toBe('root notes\n');
  });

  it('caps the size, without breaking a character in half', async () => {
    const { body } = await api('read_file', { path: 'big.txt' });
    expect(body.truncated).toBe(true);
    expect(body.output).toMatch(/^é{100}\n\[… truncated: 400 more bytes …\]$/);
    expect(body.note).toBe(
      "Only the first 200 of the file's 600 bytes are shown: read_file stops at maxBytes (200), which tools.files.maxBytes (200) caps.",
    );
    // A limit that falls inside a character: the half is not shown, nor counted as shown.
    const emoji = await api('read_file', { path: 'emoji.txt', maxBytes: 7 });
    expect(emoji.body.output).toBe('😀\n[… truncated: 396 more bytes …]');
    expect(emoji.body.note).toBe(
      "Only the first 4 of the file's 400 bytes are shown: read_file stops at maxBytes (7), which tools.files.maxBytes (200) caps.",
    );
    const tooBig = await api('read_file', { path: 'big.txt', maxBytes: 10_000 });
    expect(tooBig.body.error.param).toBe('maxBytes');
  });
});
