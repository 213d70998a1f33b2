/**
 * Inline buttons through the front: OpenClaw's /model picker walked to one of brainstem's
 * modes, a press on brainstem's own button, and OpenClaw's exec approval.
 */
import { show } from '../shared.js';
import { buttonsOf, type Gateway, HELPER_MODEL, messagesOf, textOf } from './context.js';

export async function buttons(g: Gateway): Promise<void> {
  const { tg, llama, check, user, bot, until, answer, log } = g;
  const { chatRequests } = llama;
  // Buttons: OpenClaw's /model picker is walked through the front (providers, brainstem's
  // models, one picked), each press answered by OpenClaw and the picker edited in place; the
  // next turn asks brainstem for the model picked. A press on one of brainstem's own buttons
  // (`bs:` data) stays brainstem's.
  const beforePicker = bot().length;
  user.says('/model');
  const picker = await until("OpenClaw's /model picker", () =>
    bot()
      .slice(beforePicker)
      .find((m) => buttonsOf(m).some((b) => b.callback_data === 'mdl_prov')),
  );
  /** Presses the picker's button whose data `pick` chooses; what the press led to, for the check. */
  const press = async (step: string, pick: (data: string) => boolean) => {
    const button = buttonsOf(picker).find((b) => b.callback_data !== undefined && pick(b.callback_data));
    if (!picker || !button?.callback_data)
      return `${step}: no such button among ${show(buttonsOf(picker).map((b) => b.callback_data))}`;
    const markup = JSON.stringify(picker.replyMarkup);
    const id = user.presses(picker.messageId, button.callback_data);
    const answered = await until(`OpenClaw's answer to ${step}`, () =>
      tg.callbackAnswers.some((a) => a.callbackQueryId === id),
    );
    const edited = await until(
      `the picker after ${step}`,
      () => JSON.stringify(picker.replyMarkup) !== markup,
    );
    return `${step} (${button.callback_data}): ${answered ? 'answered' : 'not answered'}, ${edited ? `the picker now offers ${show(buttonsOf(picker).map((b) => b.text))}` : 'the picker unchanged'}`;
  };
  const steps = [
    await press('providers', (d) => d === 'mdl_prov'),
    await press("brainstem's models", (d) => /^mdl_list_brainstem_1$|^mdl1~p:/.test(d)),
    await press('helper', (d) => d === 'mdl_sel_brainstem/helper'),
  ];
  let before = chatRequests().length;
  answer({ chunks: ['FRONT-PICKED ', 'model'] });
  user.says('which model answers now?');
  await until('the answer after the model was picked', () =>
    bot().find((m) => m.text.includes('FRONT-PICKED')),
  );
  const picked = chatRequests()
    .slice(before)
    .map((r) => (r.body as { model?: string } | undefined)?.model);
  const menu = [...bot()]
    .reverse()
    .find((m) => buttonsOf(m).some((b) => b.callback_data === 'bs:mode:local'));
  const ourPress = menu ? user.presses(menu.messageId, 'bs:mode:local') : undefined;
  const ourUpdate = Number(tg.updateLog.at(-1)?.update_id);
  const ourAnswer = await until("brainstem's answer to its button", () =>
    tg.callbackAnswers.find((a) => a.callbackQueryId === ourPress),
  );
  check(
    'buttons',
    "OpenClaw's model picker works through the front, and picks brainstem's mode",
    steps.every((st) => st.includes('answered, the picker now')) &&
      picked.length === 1 &&
      picked[0] === HELPER_MODEL,
    `${steps.join('; ')}; the next turn's model request(s) named ${show(picked)} upstream (the mode helper's is ${HELPER_MODEL})`,
  );
  check(
    'buttons',
    "a press on brainstem's button stays brainstem's",
    ourAnswer !== undefined && !log().includes(`updateId=${ourUpdate} `),
    `brainstem's mode button was ${ourAnswer ? `answered (${show(ourAnswer.text)})` : 'not answered'}; OpenClaw's log ${log().includes(`updateId=${ourUpdate} `) ? 'names' : 'does not name'} its update`,
  );

  // An exec approval: the model (brainstem's helper mode, picked above, which passes OpenClaw's
  // tools through) asks to run a command; OpenClaw asks the owner with buttons through the
  // front, the owner allows it once, OpenClaw runs it and gives the model its output.
  const RAN = 'EXEC-RAN-4242';
  llama.respond = (body) =>
    JSON.stringify(body.messages ?? []).includes(RAN)
      ? { chunks: ['FRONT-EXEC ', 'done'] }
      : {
          chunks: [
            {
              toolCall: {
                index: 0,
                id: 'call_exec',
                name: 'exec',
                arguments: JSON.stringify({ command: `printf ${RAN}` }),
              },
            },
          ],
        };
  const beforeExec = bot().length;
  before = chatRequests().length;
  user.says('run the check command');
  const prompt = await until("OpenClaw's approval prompt", () =>
    bot()
      .slice(beforeExec)
      .find((m) => buttonsOf(m).some((b) => b.callback_data && !b.callback_data.startsWith('bs:'))),
  );
  const approvalAsked = { text: prompt?.text ?? '', buttons: buttonsOf(prompt).map((b) => b.text) };
  const allow = buttonsOf(prompt).find((b) => /allow once|once/i.test(b.text));
  const allowed =
    prompt && allow?.callback_data ? user.presses(prompt.messageId, allow.callback_data) : undefined;
  const allowAnswered = await until("OpenClaw's answer to the approval", () =>
    tg.callbackAnswers.some((a) => a.callbackQueryId === allowed),
  );
  const done = await until('the answer after the command ran', () =>
    bot().find((m) => m.text.includes('FRONT-EXEC')),
  );
  const toolResults = chatRequests()
    .slice(before)
    .flatMap((r) =>
      messagesOf(r.body)
        .filter((m) => m.role === 'tool')
        .flatMap(textOf),
    );
  check(
    'exec',
    "OpenClaw's exec approval is asked and answered with its buttons through the front",
    prompt !== undefined &&
      allowAnswered === true &&
      done !== undefined &&
      toolResults.some((t) => t.includes(RAN)),
    `${prompt ? `the prompt ${show(approvalAsked.text.slice(0, 60))} offered ${show(approvalAsked.buttons)}` : 'no prompt with buttons'}; ${allow ? `"${allow.text}" pressed, ${allowAnswered ? 'answered' : 'not answered'}, the prompt now ${show(prompt?.text.slice(0, 60))}` : 'no allow-once button'}; the command's output ${toolResults.some((t) => t.includes(RAN)) ? 'reached' : 'did not reach'} the model${done ? ', which answered' : ''}`,
  );
  llama.respond = undefined;
}
