// Preloaded into a brainstem process (NODE_OPTIONS=--require) by test/process-lifecycle.test.ts:
// better-sqlite3's native module fails to load as one built for another Node does (after a Node
// upgrade without `npm rebuild`), with Node's own error: its code and its words.
const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  if (!filename.endsWith('better_sqlite3.node')) return dlopen.call(this, module, filename, ...rest);
  const mine = Number(process.versions.modules);
  throw Object.assign(
    new Error(
      `The module '${filename}'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION ${mine + 22}. This version of Node.js requires\nNODE_MODULE_VERSION ${mine}. Please try re-compiling or re-installing\nthe module (for instance, using \`npm rebuild\` or \`npm install\`).`,
    ),
    { code: 'ERR_DLOPEN_FAILED' },
  );
};
