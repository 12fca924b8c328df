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
require(entry).main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`vlab: ${err && err.message ? err.message : String(err)}\n`); process.exitCode = 1; },
);
