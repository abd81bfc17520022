#!/usr/bin/env node
import { runCli } from './lib/cli';

runCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
  progress: process.stderr,
}).then((code) => {
  process.exitCode = code;
});
