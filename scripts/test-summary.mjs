// Prints the suite's closing line from vitest's JSON report, and how many tests skipped for a missing peer.
import { readFileSync, existsSync } from 'node:fs';

const [reportPath, skipLog] = process.argv.slice(2);
if (!reportPath || !existsSync(reportPath)) {
  console.log('0 passed, 1 failed (no test report was written)');
  process.exit(1);
}
const report = JSON.parse(readFileSync(reportPath, 'utf8'));
const reasons = new Map();
if (skipLog && existsSync(skipLog)) {
  for (const line of readFileSync(skipLog, 'utf8').split('\n').filter(Boolean)) {
    const [count, ...reason] = line.split('\t');
    const key = reason.join('\t');
    reasons.set(key, (reasons.get(key) ?? 0) + Number(count));
  }
}
for (const [reason, count] of reasons) console.log(`SKIPPED ${count} tests: ${reason}`);
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
// Bare, alone on the last line: the form CI's reader takes in any language (no prefix word, no colour).
console.log(`${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
process.exit(report.numFailedTests > 0 || report.numTotalTests === 0 ? 1 : 0);
