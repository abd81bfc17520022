import { QUERY_LIMITS } from '@unicrm/query';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

// The docs must stand alone in a clone of the repository: every relative link (and #anchor) resolves to a file and
// heading that exist in it, and nothing points at the developers' reference folder (shared/), which a clone does
// not have, or at its documents by name. Code comments may cite those documents; the docs say the rule itself.
const root = join(__dirname, '../../..');

/** README.md, docs/*.md, apps/*\/README.md, libs/**\/README.md, tools/*\/README.md. */
function docFiles(): string[] {
  const files = ['README.md'];
  const dirFiles = (dir: string) => (existsSync(join(root, dir)) ? readdirSync(join(root, dir)) : []);
  for (const name of dirFiles('docs')) if (name.endsWith('.md')) files.push(`docs/${name}`);
  for (const top of ['apps', 'tools']) {
    for (const name of dirFiles(top)) if (existsSync(join(root, top, name, 'README.md'))) files.push(`${top}/${name}/README.md`);
  }
  const walk = (dir: string) => {
    for (const name of readdirSync(join(root, dir))) {
      if (name === 'node_modules' || name.startsWith('.')) continue;
      const path = `${dir}/${name}`;
      if (statSync(join(root, path)).isDirectory()) walk(path);
      else if (name === 'README.md') files.push(path);
    }
  };
  walk('libs');
  return files;
}

/** The text without fenced code blocks, and inline code spans emptied (links inside them are not links). */
function prose(text: string): string {
  return text
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
    .replace(/(`+)[^`][\s\S]*?\1/g, '``');
}

/** GitHub's heading anchors: lower case, punctuation dropped, each space a hyphen; repeats get -1, -2 ... */
export function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const body = text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const [, heading] of body.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const slug = (heading as string)
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  for (const [, id] of body.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) anchors.add(id as string);
  return anchors;
}

/** The targets of inline links and images, and of reference definitions. */
export function linksOf(text: string): string[] {
  const clean = prose(text);
  const inline = [...clean.matchAll(/!?\[(?:[^\][]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1] as string);
  const references = [...clean.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1] as string);
  return [...inline, ...references];
}

/** Why a link of `file` is dead, or undefined when it resolves inside the repository. */
export function deadLink(file: string, target: string, read: (path: string) => string | undefined): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) return undefined; // http:, https:, mailto: ...
  const hash = target.indexOf('#');
  const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
  const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const resolved = path === '' ? join(root, file) : path.startsWith('/') ? join(root, path) : resolve(root, dirname(file), path);
  const inRepo = relative(root, resolved);
  if (inRepo.startsWith('..') || inRepo.split(sep)[0] === 'shared') return `${target}: outside the repository`;
  if (!existsSync(resolved)) return `${target}: no such file`;
  if (anchor === undefined || anchor === '') return undefined;
  if (!resolved.endsWith('.md')) return undefined; // #L10 in code files and the like
  const text = read(resolved);
  if (text === undefined || !anchorsOf(text).has(anchor)) return `${target}: no heading with the anchor #${anchor}`;
  return undefined;
}

/** The reference documents of the developers' folder, by name: the docs must not send readers there. */
const REFERENCE_NAMES = /\b(?:DESIGN|STYLE)\.md\b|\bcreate-stages\.txt\b|\btruto-contract\.md\b|\btruto-stages-pipelines\.md\b|\bpipeliner-api\.md\b|\bpipedrive-api\.md\b|\bhubspot-api\.md\b|\bscale\.md\b/;

/** Mentions of shared/ or of its documents; a test quoted by its title (`› "..."`) is left as the code names it. */
export function referenceMentions(text: string): string[] {
  const found: string[] = [];
  text.split('\n').forEach((line, index) => {
    const withoutTitles = line.replace(/›\s*"[^"]*"/g, '');
    const hit = /\bshared\//.exec(line) ?? REFERENCE_NAMES.exec(withoutTitles);
    if (hit) found.push(`line ${index + 1}: ${hit[0]}`);
  });
  return found;
}

const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);

describe('the docs stand alone', () => {
  const files = docFiles();

  it('finds the docs it is to check', () => {
    expect(files).toEqual(expect.arrayContaining(['README.md', 'docs/contract.md', 'apps/sdk/README.md', 'apps/sandboxes/README.md']));
  });

  it.each(files)('%s: every relative link and anchor resolves inside the repository', (file) => {
    const text = read(join(root, file)) as string;
    const dead = linksOf(text).flatMap((target) => deadLink(file, target, read) ?? []);
    expect(dead).toEqual([]);
  });

  it.each(files)('%s: mentions neither shared/ nor the reference documents', (file) => {
    expect(referenceMentions(read(join(root, file)) as string)).toEqual([]);
  });
});

describe('the link checker', () => {
  const fixture = (files: Record<string, string>) => (path: string) => files[relative(root, path)];

  it('finds inline links, images and reference definitions, not links in code', () => {
    const text = ['See [a](docs/a.md), ![img](img.png "t") and [b][1].', '', '[1]: docs/b.md#part', '', '`[c](c.md)`', '```', '[d](d.md)', '```'].join('\n');
    expect(linksOf(text)).toEqual(['docs/a.md', 'img.png', 'docs/b.md#part']);
  });

  it('computes GitHub anchors', () => {
    expect([...anchorsOf('# The `unicrm` CLI\n## Bulk: `stages import`\n## Errors\n## Errors\n### Embedded: `createUnicrm()`')]).toEqual([
      'the-unicrm-cli',
      'bulk-stages-import',
      'errors',
      'errors-1',
      'embedded-createunicrm',
    ]);
  });

  it('reports a missing file, a missing anchor, and a path out of the repository', () => {
    const files = fixture({ 'docs/contract.md': '# Query\n' });
    expect(deadLink('README.md', 'docs/contract.md#query', files)).toBeUndefined();
    expect(deadLink('README.md', 'docs/contract.md#nothing', files)).toBe('docs/contract.md#nothing: no heading with the anchor #nothing');
    expect(deadLink('README.md', 'docs/none.md', files)).toBe('docs/none.md: no such file');
    expect(deadLink('docs/contract.md', '../../shared/DESIGN.md', files)).toBe('../../shared/DESIGN.md: outside the repository');
    expect(deadLink('docs/contract.md', '../shared/DESIGN.md', files)).toBe('../shared/DESIGN.md: outside the repository');
    expect(deadLink('README.md', 'https://example.com/x', files)).toBeUndefined();
  });

  it('reports mentions of shared/ and of the reference documents, not quoted test titles', () => {
    expect(referenceMentions('follows `shared/DESIGN.md` §2\nok\nDESIGN.md §4 says\n| x | `a.spec.ts` › "maps the DESIGN.md §2 table" |')).toEqual([
      'line 1: shared/',
      'line 3: DESIGN.md',
    ]);
    expect(referenceMentions('apps/sdk/src/lib/cli.shared.spec.ts')).toEqual([]);
  });
});

describe('docs/contract.md states the limits the code enforces', () => {
  const contract = readFileSync(join(root, 'docs/contract.md'), 'utf8');

  it('names the query-string limit of QUERY_LIMITS.maxLength', () => {
    const stated = /(\d+) KiB of query string/.exec(contract);
    expect(stated).not.toBeNull();
    expect(Number(stated?.[1]) * 1024).toBe(QUERY_LIMITS.maxLength);
  });

  it('names the other query limits', () => {
    const line = /Limits \(all 400, never 500\): ([^.]+)\./.exec(contract.replace(/\n/g, ' '))?.[1] ?? '';
    expect(line).toContain(`${QUERY_LIMITS.parameterLimit} parameters`);
    expect(line).toContain(`nesting depth ${QUERY_LIMITS.depth}`);
    expect(line).toContain(`${QUERY_LIMITS.arrayLimit} array items`);
  });
});
