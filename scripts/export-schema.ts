// Writes schema/workflow.schema.json from the zod schema (npm run schema). test/schema.test.ts
// fails when the committed file is out of date.
import { writeFileSync } from 'node:fs';
import { workflowJsonSchema } from '../src/workflow/schema.js';

export function schemaText(): string {
  return JSON.stringify({ title: 'dw workflow', ...workflowJsonSchema() }, null, 2) + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(new URL('../schema/workflow.schema.json', import.meta.url), schemaText());
  console.log('wrote schema/workflow.schema.json');
}
