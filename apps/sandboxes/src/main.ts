import { formatContractViolation, SANDBOX_SEED_IDS, startSandbox } from './index';

/**
 * Command-line entry: starts the sandbox from environment variables and prints how to reach it.
 * PIPELINER_SANDBOX_PORT (8100), PIPELINER_SANDBOX_USERNAME, PIPELINER_SANDBOX_PASSWORD,
 * PIPELINER_SANDBOX_SPACE_ID, PIPELINER_SANDBOX_SEED (JSON file), PIPELINER_SANDBOX_FAULTS (1 = on),
 * PIPELINER_SANDBOX_CONTRACT (1 = check every exchange against Pipeliner's OpenAPI document, violations on stderr).
 */
async function main(): Promise<void> {
  const env = process.env;
  const portText = env['PIPELINER_SANDBOX_PORT'];
  const port = portText === undefined || portText === '' ? 8100 : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PIPELINER_SANDBOX_PORT must be a port number, got '${portText}'.`);
  }
  const seedPath = env['PIPELINER_SANDBOX_SEED'] || undefined;
  const flag = (name: string) => ['1', 'true', 'yes', 'on'].includes((env[name] ?? '').trim().toLowerCase());
  const contract = flag('PIPELINER_SANDBOX_CONTRACT');
  const sandbox = await startSandbox({
    port,
    username: env['PIPELINER_SANDBOX_USERNAME'] || undefined,
    password: env['PIPELINER_SANDBOX_PASSWORD'] || undefined,
    spaceId: env['PIPELINER_SANDBOX_SPACE_ID'] || undefined,
    seed: seedPath,
    contract,
    // The request log is for tests that inspect what arrived; a long-running sandbox would only grow with it.
    logRequests: flag('PIPELINER_SANDBOX_LOG_REQUESTS'),
    onContractViolation: (violation) => process.stderr.write(`contract violation: ${formatContractViolation(violation)}\n`),
  });
  const sales = sandbox.pipelines().find((pipeline) => pipeline.name === 'Sales Pipeline' && !pipeline.is_deleted);
  const base = `${sandbox.serviceUrl}/api/v100/rest/spaces/${sandbox.spaceId}`;
  const lines = [
    'Pipeliner sandbox is running (an emulator of Pipeliner CRM, Steps and Pipelines).',
    '',
    `  service URL : ${sandbox.serviceUrl}`,
    `  space id    : ${sandbox.spaceId}`,
    `  username    : ${sandbox.username}   (API token)`,
    `  password    : ${sandbox.password}   (API password)`,
    `  "Sales Pipeline" id : ${sales?.id ?? '(not in this seed)'}`,
    `  seed        : ${seedPath ?? 'built-in'}${seedPath ? '' : ` (Sales Pipeline ${SANDBOX_SEED_IDS.salesPipelineId})`}`,
    `  faults      : ${flag('PIPELINER_SANDBOX_FAULTS') ? 'on (X-Sandbox-Fault header, /__sandbox/faults)' : 'off'}`,
    `  contract    : ${contract ? "on (violations of Pipeliner's OpenAPI document on stderr)" : 'off'}`,
    '',
    'Try:',
    `  curl -g -u '${sandbox.username}:${sandbox.password}' '${base}/entities/Steps?filter[pipeline_id]=${sales?.id ?? SANDBOX_SEED_IDS.salesPipelineId}&order-by=sort_order'`,
    '',
    'Stop with Ctrl-C.',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal} received, stopping the Pipeliner sandbox...\n`);
    sandbox.close().then(
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
  process.stderr.write(`Pipeliner sandbox failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
