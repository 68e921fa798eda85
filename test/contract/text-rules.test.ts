/**
 * A generated validator must accept exactly what the server accepts. The create body's
 * schema is compiled as generators' validators run it: ajv with Unicode regexes (as the
 * server and most JSON Schema tools do) and without (as orval's zod output builds
 * `new RegExp(pattern)`), and each verdict is compared with the server's answer.
 */
import t from 'tap';
import { spec } from '../contract.ts';
import { build } from '../helper.ts';

const TITLES: Array<[string, string]> = [
  ['three spaces', '   '],
  ['a space and 500 characters', ` ${'x'.repeat(500)}`],
  ['500 characters', 'x'.repeat(500)],
  ['501 characters', 'x'.repeat(501)],
  ['500 emoji', '😀'.repeat(500)],
  ['501 emoji', '😀'.repeat(501)],
  ['empty', ''],
  ['padded', '  Buy milk\n'],
  ['ideographic space only', '\u3000'],
  ['byte order mark only', '\uFEFF'],
  ['no-break space around a word', '\u00A0a\u00A0'],
  ['a NUL', 'a\u0000b'],
  ['a vertical tab and a word', '\u000Bx'],
  ['line separator only', '\u2028'],
  ['zero width space (not white space to trim)', '\u200B'],
];

const NOTES: Array<[string, string]> = [
  ['starts with a newline', '\nsecond line'],
  ['only spaces', '   '],
  ['a NUL', 'a\u0000'],
  ['8,192 emoji', '😀'.repeat(8192)],
  ['8,193 characters', 'n'.repeat(8193)],
];

t.test('the create schema and the server agree on every title and note, in both regex modes', async (t) => {
  const { Ajv2020 } = await import('ajv/dist/2020.js');
  const addFormats = (await import('ajv-formats')).default;
  const validators = [true, false].map((unicodeRegExp) => {
    const ajv = new Ajv2020({ strict: false, unicodeRegExp });
    addFormats.default(ajv);
    ajv.addSchema(spec as object, 'spec');
    const validate = ajv.getSchema('spec#/components/schemas/CreateTaskRequest');
    if (!validate) throw new Error('CreateTaskRequest is missing from the contract');
    return { mode: unicodeRegExp ? 'u' : 'no u', validate };
  });
  const { api } = await build(t);
  const bodies = [
    ...TITLES.map(([name, title]) => [`title: ${name}`, { title }] as const),
    ...NOTES.map(([name, notes]) => [`notes: ${name}`, { title: 'n', notes }] as const),
  ];
  for (const [name, body] of bodies) {
    const res = await api.post('/api/tasks', { as: 'alice', payload: body });
    t.ok(res.statusCode === 201 || res.statusCode === 400, `${name}: ${res.statusCode}`);
    for (const { mode, validate } of validators) {
      t.equal(validate(body), res.statusCode === 201, `${name}: the schema (${mode}) says what the server says (${res.statusCode})`);
    }
    if (res.statusCode === 201 && 'title' in body) t.equal(res.json().title, body.title.trim(), `${name}: stored trimmed`);
  }
});
