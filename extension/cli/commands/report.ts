/** `vlab report`: regenerate the design report's figures from the committed results, or re-run the benchmarks first. */
import { join } from 'node:path';
import { parseArgs } from '../args';
import { type CliCommand, UsageError } from '../command';
import { collect } from '../../report/collect';
import { DATA_FILES, type DataKind } from '../../report/data';
import { REPORT_DATA_DIR, REPORT_FIGURES_DIR, REPORT_MARKDOWN, updateMarkdown, writeFigures } from '../../report/generate';

const KINDS = Object.keys(DATA_FILES) as DataKind[];

const USAGE = `usage: vlab report [--run e2e,backend,chat,boot|all] [--quick]
Draws docs/report/figures/*.svg from docs/report/data/*.json and rewrites the generated number tables
in docs/report.md (deterministic: same data, same bytes).
  --run LIST   first re-run these benchmarks through vlab itself and rewrite their data files
               (e2e and boot boot VMs: on a shared machine wrap the command in vmslot)
  --quick      short measuring times (a smoke refresh; noisier numbers)
Run from the repository root.`;

export const reportCommands: readonly CliCommand[] = [
  {
    name: 'report',
    summary: "regenerate the design report's figures (docs/report/) from committed benchmark results",
    usage: USAGE,
    async run(args, io) {
      let values: { run?: string; quick?: boolean };
      try {
        ({ values } = parseArgs({ args: [...args], options: { run: { type: 'string' }, quick: { type: 'boolean' } }, strict: true, allowPositionals: false }));
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const requested = values.run === undefined ? [] : values.run === 'all' ? KINDS : values.run.split(',').map((s) => s.trim());
      for (const k of requested) if (!KINDS.includes(k as DataKind)) throw new UsageError(`--run takes ${KINDS.join(', ')} or all (got "${k}")`);
      const dataDir = join(io.cwd, REPORT_DATA_DIR);
      if (requested.length) {
        await collect({ repo: io.cwd, dataDir, quick: values.quick === true, env: io.env, signal: io.signal, log: (l) => io.stderr.write(`[report] ${l}\n`) }, requested as DataKind[]);
      }
      const figs = writeFigures(dataDir, join(io.cwd, REPORT_FIGURES_DIR));
      for (const f of figs) io.stdout.write(`${join(REPORT_FIGURES_DIR, f.file)}\n`);
      if (updateMarkdown(join(io.cwd, REPORT_MARKDOWN), dataDir)) io.stdout.write(`${REPORT_MARKDOWN} (number tables updated)\n`);
      if (!figs.length) io.stderr.write(`no data in ${REPORT_DATA_DIR}: run vlab report --run all\n`);
      return 0;
    },
  },
];
