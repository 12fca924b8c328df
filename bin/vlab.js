#!/usr/bin/env node
'use strict';
// Thin launcher: the CLI is compiled TypeScript in out/.
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'out', 'extension', 'cli', 'vlab.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('vlab: not built yet. Run: bash scripts/setup.sh   (or: npm run build)\n');
  process.exit(2);
}
const argv = process.argv.slice(2);
const fail = (err) => { process.stderr.write(`vlab: ${err && err.message ? err.message : String(err)}\n`); process.exitCode = 1; };
const full = () => require(entry).main(argv).then((code) => { process.exitCode = code; }, fail);
// `vlab ssh -- CMD` over the lab's SSH mux loads only what it needs (extension/cli/ssh-fast.ts).
if (argv[0] === 'ssh' && argv[1] === '--') {
  require(path.join(__dirname, '..', 'out', 'extension', 'cli', 'ssh-fast.js')).sshFast(argv).then(
    (code) => { if (code === undefined) return full(); process.exitCode = code; },
    fail,
  );
} else {
  full();
}
