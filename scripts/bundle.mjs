// The `mesh` command as one file (npm run build, after tsc): dist/bundle/mesh.js, and beside it the
// walk worker, which worker-walk.ts starts from the file next to its own module.
//
// Why: run from tsc's output, a node loads ~610 modules and V8 keeps every module's source text
// and module record: an idle `mesh join` held 16 MiB of JavaScript heap and 77 MiB RSS; the
// bundle, whitespace-minified, 10.5 MiB and 68 MiB (this machine, Node 20). Identifiers are kept,
// so stack traces in logs still name their functions.
import { chmod } from 'node:fs/promises';
import { build } from 'esbuild';

const OUT_DIR = 'dist/bundle';
const COMMAND = `${OUT_DIR}/mesh.js`;
/** Native addons (and koffi, which loads one) stay in node_modules, where their prebuilds are. */
const NATIVE_PACKAGES = ['classic-level', '@parcel/watcher', 'koffi'];
/** The oldest Node mesh supports (package.json engines); its syntax is what the bundle may use. */
const TARGET = 'node20';
/** CommonJS dependencies call require(); an ES module bundle has none unless it makes one. */
const REQUIRE_SHIM = "import { createRequire as __meshCreateRequire } from 'node:module'; const require = __meshCreateRequire(import.meta.url);";

await build({
  entryPoints: { mesh: 'dist/cli/main.js', 'walk-worker': 'dist/folder/walk-worker.js' },
  outdir: OUT_DIR,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: TARGET,
  external: NATIVE_PACKAGES,
  banner: { js: REQUIRE_SHIM },
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
await chmod(COMMAND, 0o755);
