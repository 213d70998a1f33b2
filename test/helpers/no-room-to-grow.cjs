// Preloaded into a brainstem process by test/process-lifecycle.test.ts (NODE_OPTIONS=--require),
// whose file size limit the test then lowers (prlimit) to stand for a full disk. A write past the
// limit fails with EFBIG, as one on a full disk fails with ENOSPC; but the kernel also sends
// SIGXFSZ, whose default action kills the process, which a full disk never does. Handled here, the
// signal does nothing and the write's failure is what brainstem sees.
process.on('SIGXFSZ', () => {});
