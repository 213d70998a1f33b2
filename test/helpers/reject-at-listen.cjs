// Preloaded into a brainstem process by test/process-lifecycle.test.ts (NODE_OPTIONS=--require).
// Once the HTTP server listens, it leaves a rejection unhandled, shaped as grammY's network error:
// its `error` holds the request URL with the bot token BRAINSTEM_TEST_SECRET names. With
// BRAINSTEM_TEST_FAIL_LISTEN set, the listen itself fails instead, that URL in its message (or,
// set to `string`, thrown as a bare string, as some libraries throw).
const { Server } = require('node:http');

if (process.env.BRAINSTEM_TEST_FAIL_LISTEN) {
  Server.prototype.listen = () => {
    const message = `request to https://api.telegram.org/bot${process.env.BRAINSTEM_TEST_SECRET}/getMe failed`;
    throw process.env.BRAINSTEM_TEST_FAIL_LISTEN === 'string' ? message : new Error(message);
  };
}

const emit = Server.prototype.emit;
let done = false;
Server.prototype.emit = function (event, ...args) {
  if (event === 'listening' && !done) {
    done = true;
    const url = `https://api.telegram.org/bot${process.env.BRAINSTEM_TEST_SECRET}/getUpdates`;
    const error = Object.assign(new Error("Network request for 'getUpdates' failed!"), {
      error: new Error(`request to ${url} failed, reason: socket hang up`),
    });
    setImmediate(() => Promise.reject(error));
  }
  return emit.call(this, event, ...args);
};
