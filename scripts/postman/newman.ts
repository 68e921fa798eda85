/**
 * Newman (Postman's CLI runner) driven from code: what this project reads of its run
 * summary (newman ships no types), and the failures of a run as sentences.
 */
import { createRequire } from 'node:module';
import type { PostmanCollection } from './portman.ts';

export interface NewmanAssertion {
  assertion: string;
  skipped?: boolean;
  error?: { name: string; message: string };
}
export interface NewmanExecution {
  item: { name: string };
  request: { method: string; url: { getPathWithQuery(): string } };
  response?: { code: number; headers: { all(): Array<{ key: string; value: string }> }; text(): string };
  assertions?: NewmanAssertion[];
  requestError?: { message: string };
  testScript?: Array<{ error: { message: string } }>;
  prerequestScript?: Array<{ error: { message: string } }>;
}
export interface NewmanSummary {
  error?: Error;
  run: {
    stats: Record<'iterations' | 'requests' | 'assertions' | 'testScripts', { total: number; failed: number }>;
    executions: NewmanExecution[];
    failures: Array<{ error: { name: string; message: string; test?: string }; source?: { name?: string } }>;
    timings: { started: number; completed: number };
  };
}
export interface NewmanRunOptions {
  collection: PostmanCollection;
  envVar: Array<{ key: string; value: string }>;
  reporters: string[];
  ignoreRedirects: boolean;
  timeout: number;
  timeoutRequest: number;
}
interface Newman {
  run(options: NewmanRunOptions, done: (err: Error | null, summary: NewmanSummary) => void): unknown;
}
const newman = createRequire(import.meta.url)('newman') as Newman;

export function runNewman(options: NewmanRunOptions): Promise<NewmanSummary> {
  return new Promise((resolve, reject) => {
    newman.run(options, (err, summary) => (err ? reject(err) : resolve(summary)));
  });
}

/** Every failed assertion, script error and request error: which request, which check, what came back. */
export function failuresOf(summary: NewmanSummary): string[] {
  return summary.run.executions.flatMap((e) => [
    ...(e.requestError ? [`${e.item.name}: request error: ${e.requestError.message}`] : []),
    ...[...(e.prerequestScript ?? []), ...(e.testScript ?? [])].map((s) => `${e.item.name}: script error: ${s.error.message}`),
    ...(e.assertions ?? [])
      .filter((a) => a.error !== undefined)
      .map((a) => `${e.item.name}: ${a.assertion}: ${a.error?.message} (got ${e.response?.code}: ${e.response?.text().slice(0, 300)})`),
  ]);
}
