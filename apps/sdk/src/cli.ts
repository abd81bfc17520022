#!/usr/bin/env node
import { cliCommand, runCli } from './lib/cli';

runCli(process.argv.slice(2), {
  command: cliCommand(process.env, process.argv[1], process.cwd()),
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
  progress: process.stderr,
}).then((code) => {
  process.exitCode = code;
});
