/**
 * A promise the test opens when it chooses: a fake's reply waits on it (the fake llama-server's
 * `{ wait: g.held }`) until the test has seen what it waits for, whatever the machine's load.
 */
export function gate(): { held: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { held, open };
}
