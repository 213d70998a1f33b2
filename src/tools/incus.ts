import { z } from 'zod';
import { BrainstemError } from '../errors.js';
import type { ToolsConfig } from './config.js';
import type { Runner } from './exec.js';
import { type AnyTool, defineTool } from './registry.js';

/** incus: listing, and exec of allowed programs in allowed instances and projects, the command as an argv array. */

const listedInstance = z
  .object({
    name: z.string(),
    status: z.string().optional(),
    type: z.string().optional(),
    project: z.string().optional(),
    state: z
      .object({
        network: z
          .record(
            z.string(),
            z.object({
              addresses: z.array(z.object({ family: z.string(), address: z.string() })).optional(),
            }),
          )
          .nullish(),
      })
      .nullish(),
  })
  .loose();

export function incusTools(cfg: ToolsConfig['incus'], run: Runner): AnyTool[] {
  const instances = new Set(cfg.instances);
  const projects = new Set(cfg.projects);
  const commands = new Set(cfg.commands);
  const defaultProject = cfg.projects[0];

  const checkProject = (project: string | undefined): string => {
    const p = project ?? defaultProject;
    if (!p || !projects.has(p)) {
      throw new BrainstemError(
        'TOOL_FORBIDDEN',
        `incus project "${p ?? ''}" is not allowed. Allowed: ${cfg.projects.join(', ') || 'none (set tools.incus.projects)'}.`,
        'project',
        `le projet incus "${p ?? ''}" n’est pas permis. Permis : ${cfg.projects.join(', ') || 'aucun (réglez tools.incus.projects)'}.`,
      );
    }
    return p;
  };

  return [
    defineTool({
      name: 'incus_list',
      description: `Lists the incus instances of an allowed project (${cfg.projects.join(', ') || 'none'}): name, status, type, addresses.`,
      input: z
        .object({ project: z.string().min(1).optional().describe('Default: the first allowed project.') })
        .strict(),
      mutating: false,
      authorize: (input) => void checkProject(input.project),
      run: async (input, ctx) => {
        const project = checkProject(input.project);
        const r = await run([cfg.bin, 'list', '--format', 'json', '--project', project], {
          signal: ctx.signal,
          capture: 'stdout',
        });
        if (r.exitCode !== 0) return { output: r.stderr || r.output, exitCode: r.exitCode };
        const parsed = z.array(listedInstance).safeParse(safeJson(r.output));
        if (!parsed.success) return { output: r.output, exitCode: 0, truncated: r.truncated };
        return {
          exitCode: 0,
          data: parsed.data.map((i) => ({
            name: i.name,
            status: i.status,
            type: i.type,
            project: i.project ?? project,
            addresses: Object.entries(i.state?.network ?? {})
              .filter(([nic]) => nic !== 'lo')
              .flatMap(([, n]) => (n.addresses ?? []).map((a) => a.address)),
          })),
        };
      },
    }),
    defineTool({
      name: 'incus_exec',
      description: `Runs a program in an allowed incus instance (${cfg.instances.join(', ') || 'none configured'}). The command is an argv array, never a shell string.`,
      input: z
        .object({
          instance: z.string().min(1),
          command: z
            .array(z.string())
            .min(1)
            .describe('Program and arguments, e.g. ["systemctl", "status", "nginx"]; no shell is involved.'),
          project: z.string().min(1).optional(),
          user: z.number().int().min(0).optional().describe('uid to run as.'),
          cwd: z.string().min(1).optional().describe('Working directory inside the instance.'),
        })
        .strict(),
      mutating: true,
      authorize: (input) => {
        if (instances.size === 0) {
          throw new BrainstemError(
            'TOOL_FORBIDDEN',
            'No incus instance is allowed: list them in tools.incus.instances in brainstem.json.',
            'instance',
            'Aucune instance incus n’est permise : listez-les dans tools.incus.instances dans brainstem.json.',
          );
        }
        if (!instances.has(input.instance)) {
          throw new BrainstemError(
            'TOOL_FORBIDDEN',
            `incus instance "${input.instance}" is not allowed. Allowed: ${cfg.instances.join(', ')}.`,
            'instance',
            `l’instance incus "${input.instance}" n’est pas permise. Permises : ${cfg.instances.join(', ')}.`,
          );
        }
        checkProject(input.project);
        const program = input.command[0] ?? '';
        if (!commands.has(program)) {
          throw new BrainstemError(
            'TOOL_FORBIDDEN',
            `"${program}" is not an allowed command. Allowed: ${cfg.commands.join(', ') || 'none (list programs in tools.incus.commands)'}.`,
            'command',
            `"${program}" n’est pas une commande permise. Permises : ${cfg.commands.join(', ') || 'aucune (listez des programmes dans tools.incus.commands)'}.`,
          );
        }
      },
      run: async (input, ctx) => {
        const argv = [cfg.bin, 'exec', input.instance, '--project', checkProject(input.project)];
        if (input.user !== undefined) argv.push('--user', String(input.user));
        if (input.cwd) argv.push('--cwd', input.cwd);
        // After `--` every element reaches the instance as one argument, metacharacters and all.
        argv.push('--', ...input.command);
        const r = await run(argv, { signal: ctx.signal, onOutput: ctx.onOutput, lang: ctx.lang });
        return { output: r.output, exitCode: r.exitCode, truncated: r.truncated };
      },
    }),
  ];
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
