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

/**
 * The most of `incus list --format json` brainstem reads. Each instance comes with its whole config,
 * devices and state, 4 to 10 KB, so tools.maxOutputChars (sized for text a person or a model reads)
 * cut a host's list after a few dozen instances, in the middle of the JSON. This output is parsed
 * and kept to a few fields per instance, never shown whole: 8 MB holds about a thousand instances.
 */
const LIST_JSON_MAX_CHARS = 8_000_000;

export function incusTools(cfg: ToolsConfig['incus'], run: Runner): AnyTool[] {
  const instances = new Set(cfg.instances);
  const projects = new Set(cfg.projects);
  const commands = new Set(cfg.commands);
  const defaultProject = cfg.projects[0];

  const checkProject = (project: string | undefined): string => {
    const p = project ?? defaultProject;
    // None asked and none allowed: there is no project name to quote, only the setting to name.
    if (!p) {
      throw new BrainstemError(
        'TOOL_FORBIDDEN',
        'No incus project is allowed: set tools.incus.projects in brainstem.json.',
        'project',
        'Aucun projet incus n’est permis : réglez tools.incus.projects dans brainstem.json.',
      );
    }
    if (!projects.has(p)) {
      throw new BrainstemError(
        'TOOL_FORBIDDEN',
        `incus project "${p}" is not allowed. Allowed: ${cfg.projects.join(', ') || 'none (set tools.incus.projects)'}.`,
        'project',
        `le projet incus "${p}" n’est pas permis. Permis : ${cfg.projects.join(', ') || 'aucun (réglez tools.incus.projects)'}.`,
      );
    }
    return p;
  };

  return [
    defineTool({
      name: 'incus_list',
      description: `Lists the incus instances of an allowed project (${cfg.projects.join(', ') || 'none'}): name, status, type, addresses.`,
      authorize: (input) => void checkProject(input.project),
      run: async (input, ctx) => {
        const project = checkProject(input.project);
        const r = await run([cfg.bin, 'list', '--format', 'json', '--project', project], {
          signal: ctx.signal,
          capture: 'stdout',
          maxOutputChars: LIST_JSON_MAX_CHARS,
        });
        if (r.exitCode !== 0) return { output: r.stderr || r.output, exitCode: r.exitCode };
        // Part of the list would read as the whole of it: a cut or unreadable one fails the call.
        if (r.truncated) {
          throw new BrainstemError(
            'TOOL_FAILED',
            `incus list printed more than ${LIST_JSON_MAX_CHARS} characters for project "${project}", more than brainstem reads, so it lists none rather than some.`,
            undefined,
            `incus list a écrit plus de ${LIST_JSON_MAX_CHARS} caractères pour le projet "${project}", plus que brainstem n’en lit : il n’en liste aucune plutôt que quelques-unes.`,
          );
        }
        const listed = readList(r.output);
        if (typeof listed === 'string') {
          throw new BrainstemError(
            'TOOL_FAILED',
            `incus list's output for project "${project}" is not the JSON list of instances brainstem reads: ${listed}`,
            undefined,
            `la sortie d’incus list pour le projet "${project}" n’est pas la liste JSON d’instances que brainstem lit : ${listed}`,
          );
        }
        return {
          exitCode: 0,
          data: listed.map((i) => ({
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

/** The instances `incus list --format json` printed, or what is wrong with its output. */
function readList(text: string): z.output<typeof listedInstance>[] | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  const parsed = z.array(listedInstance).safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  return `${issue?.path.join('.') || 'the list'}: ${issue?.message ?? 'invalid'}`;
}
