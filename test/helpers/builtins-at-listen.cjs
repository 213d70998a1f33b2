// Preloaded into a brainstem process by test/bundle.test.ts (NODE_OPTIONS=--require):
// when its HTTP server starts listening, writes the Node built-ins loaded so far, one a
// line, to the file BRAINSTEM_TEST_BUILTINS_FILE names. It only observes.
const { writeFileSync } = require('node:fs');
const { Server } = require('node:http');

const emit = Server.prototype.emit;
let written = false;
Server.prototype.emit = function (event, ...args) {
  if (event === 'listening' && !written) {
    written = true;
    const builtins = process.moduleLoadList
      .filter((m) => m.startsWith('NativeModule '))
      .map((m) => m.slice(13));
    writeFileSync(process.env.BRAINSTEM_TEST_BUILTINS_FILE, `${builtins.join('\n')}\n`);
  }
  return emit.call(this, event, ...args);
};
