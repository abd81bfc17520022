#!/usr/bin/env node
// Lints snippets as if they were files of the workspace, with the real ESLint configuration.
// stdin: JSON [{ "filePath": "libs/model/src/lib/x.ts", "code": "..." }, ...]
// stdout: JSON [[{ "ruleId": "...", "message": "..." }, ...], ...] in the same order.
import { ESLint } from 'eslint';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const cases = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const eslint = new ESLint({ cwd: join(dirname(fileURLToPath(import.meta.url)), '..', '..') });
const results = [];
for (const { filePath, code } of cases) {
  const [result] = await eslint.lintText(code, { filePath });
  results.push((result?.messages ?? []).map(({ ruleId, message }) => ({ ruleId, message })));
}
process.stdout.write(JSON.stringify(results));
