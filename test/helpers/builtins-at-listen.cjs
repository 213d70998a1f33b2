// Preloaded into a brainstem process by test/bundle.test.ts (NODE_OPTIONS=--require). It
// writes the Node built-ins loaded so far, one a line, to the file BRAINSTEM_TEST_BUILTINS_FILE
// names: when the HTTP server starts listening, and again (to the same name plus `.now`) on
// SIGUSR2. It only observes.
const { renameSync, writeFileSync } = require('node:fs');
const { Server } = require('node:http');

const file = process.env.BRAINSTEM_TEST_BUILTINS_FILE;
const write = (to) => {
  const builtins = process.moduleLoadList
    .filter((m) => m.startsWith('NativeModule '))
    .map((m) => m.slice(13));
  // Written whole, then renamed: a reader waiting for the file never sees half of it.
  writeFileSync(`${to}.tmp`, `${builtins.join('\n')}\n`);
  renameSync(`${to}.tmp`, to);
};

const emit = Server.prototype.emit;
let written = false;
Server.prototype.emit = function (event, ...args) {
  if (event === 'listening' && !written) {
    written = true;
    write(file);
  }
  return emit.call(this, event, ...args);
};
process.on('SIGUSR2', () => write(`${file}.now`));
