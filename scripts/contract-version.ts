/**
 * `npm run contract:version -- 1.1.0 [--release]`: one version everywhere it is kept:
 * openapi.yaml's info.version, package.json (and its lock), clients/typescript/package.json,
 * and a CHANGELOG.md section (its "Unreleased" one, renamed, or a new one to fill in).
 * `--release` also makes this contract the released
 * one (contract/released.yaml), the base of `npm run check:breaking`.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { parseSemver } from './check-breaking.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    release: { type: 'boolean', default: false },
    root: { type: 'string', default: resolve(dirname(fileURLToPath(import.meta.url)), '..') },
  },
});
const root = values.root;
const version = positionals[0];

try {
  if (version === undefined || parseSemver(version) === undefined) throw new Error('usage: npm run contract:version -- <MAJOR.MINOR.PATCH> [--release]');
  const specFile = join(root, 'openapi.yaml');
  const specText = readFileSync(specFile, 'utf8');
  const current = String((parse(specText) as { info: { version: unknown } }).info.version);
  // Only the info block's own line, so the file's formatting stays as written.
  const updated = specText.replace(/^(info:\n(?:[ ].*\n)*? {2}version: ).*$/m, `$1${version}`);
  if (String((parse(updated) as { info: { version: unknown } }).info.version) !== version) throw new Error('could not find info.version in openapi.yaml');
  writeFileSync(specFile, updated);

  // npm's own tool for package.json and package-lock.json.
  for (const dir of [root, join(root, 'clients', 'typescript')]) {
    execFileSync('npm', ['version', version, '--no-git-tag-version', '--allow-same-version'], { cwd: dir, stdio: 'ignore' });
  }

  const changelogFile = join(root, 'CHANGELOG.md');
  const changelog = readFileSync(changelogFile, 'utf8');
  if (/^## Unreleased[ \t]*$/m.test(changelog)) {
    // What was collected under "Unreleased" becomes this version's section.
    writeFileSync(changelogFile, changelog.replace(/^## Unreleased[ \t]*$/m, `## ${version}`));
  } else if (!new RegExp(`^## ${version.replace(/\./g, '\\.')}\\s*$`, 'm').test(changelog)) {
    const at = changelog.search(/^## /m);
    const section = `## ${version}\n\n(What changed since ${current}, for client teams.)\n\n`;
    writeFileSync(changelogFile, at < 0 ? `${changelog.trimEnd()}\n\n${section}` : changelog.slice(0, at) + section + changelog.slice(at));
  }
  if (values.release) copyFileSync(specFile, join(root, 'contract', 'released.yaml'));
  console.log(`contract:version: ${current} -> ${version} (openapi.yaml, package.json, clients/typescript/package.json, CHANGELOG.md${values.release ? ', contract/released.yaml' : ''})`);
} catch (err) {
  console.error(`contract:version: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
