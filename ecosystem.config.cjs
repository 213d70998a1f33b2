/**
 * pm2 process file for brainstem.
 *
 *   npm ci && npm run build          # pm2 runs the bundle in dist/, not the sources
 *   npm run doctor                   # every check ✓ before the first start
 *   pm2 start ecosystem.config.cjs
 *   pm2 save                         # and `pm2 startup` once, to come back after a reboot
 *
 * After an upgrade: `npm run build && pm2 reload brainstem`.
 * Secrets (TELEGRAM_BOT_TOKEN, BRAINSTEM_API_TOKEN, …) are not kept here: export
 * them in the shell that runs `pm2 start` (pm2 remembers them; refresh with
 * `pm2 restart brainstem --update-env`), or add `'--env-file=.env'` to `node_args`.
 */
const path = require('node:path');

module.exports = {
  apps: [
    {
      name: 'brainstem',
      script: path.join(__dirname, 'dist/src/main.js'),
      cwd: __dirname,
      // The same flags as `npm start` (a small young generation, one V8 worker thread: see README).
      node_args: require('./package.json')
        .scripts.start.split(/\s+/)
        .filter((arg) => arg.startsWith('--')),
      // One process only: Telegram allows one poller per bot token, and SQLite has one writer.
      exec_mode: 'fork',
      instances: 1,
      env: {
        NODE_ENV: 'production',
        LOG_LEVEL: 'info',
      },
      // pino writes JSON lines with their own timestamps; pm2 adds none.
      out_file: path.join(__dirname, 'logs/brainstem.out.log'),
      error_file: path.join(__dirname, 'logs/brainstem.err.log'),
      // These very names: with `instances` set, pm2 otherwise adds its id (logs/brainstem.out-0.log).
      merge_logs: true,
      time: false,
      // On stop, brainstem lets running turns finish for 10 s, then aborts them and exits;
      // pm2 waits 15 s before SIGKILL so that path always completes.
      kill_timeout: 15_000,
      // The signal goes to brainstem alone: sent to the whole tree it would kill the
      // claude children at once, cutting the turns the grace period is there to finish.
      treekill: false,
      max_memory_restart: '300M',
      autorestart: true,
      // Crash loops back off (100 ms, doubling up to 15 s) instead of hammering Telegram and the brains.
      exp_backoff_restart_delay: 100,
      // Exit code 2 is an invalid configuration: restarting cannot fix it, `npm run doctor` says what to.
      stop_exit_codes: [2],
    },
  ],
};
