// Validate glTF/GLB files with the Khronos glTF validator; prints one JSON report per file.
// node tests/gltf_validate.js <validator module dir> file1.glb [file2.glb ...]
const fs = require("fs");
const validator = require(process.argv[2]);
(async () => {
  for (const path of process.argv.slice(3)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(path)), { maxIssues: 50 });
    console.log(JSON.stringify({ path, numErrors: report.issues.numErrors, numWarnings: report.issues.numWarnings,
      numInfos: report.issues.numInfos, messages: report.issues.messages }));
  }
})().catch((err) => { console.error(String(err)); process.exit(1); });
