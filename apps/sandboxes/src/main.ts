import { runSandboxes, UsageError } from './kit/cli';
import { PROVIDERS } from './providers';

/**
 * Command-line entry of `npm run sandbox [-- <name>...]`: starts every registered provider sandbox (or the named
 * ones), each on its own port from its environment (Pipeliner: `PIPELINER_SANDBOX_PORT`, default 8100), and prints
 * for each what to put in an integrated account. `--help` lists every variable. Exit status: 2 for a usage mistake
 * (an unknown name), 1 when a sandbox cannot start, 0 after Ctrl-C (SIGINT) or SIGTERM.
 */
async function main(): Promise<void> {
  const running = await runSandboxes(process.argv.slice(2), PROVIDERS, {
    env: process.env,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
  if (!running) return;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal} received, stopping the sandboxes...\n`);
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`Error while stopping: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
