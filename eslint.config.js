// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'dist-bench-*/', 'src/generated/', 'clients/typescript/dist/', 'clients/typescript/src/generated/', 'clients/typescript/node_modules/', '.tap/', 'coverage/', 'artifacts/', '.data/', 'test/clients/generated/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-control-regex': 'off',
      // Shutdown handlers close over resources that are assigned later during start-up.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  // Promises checked by the compiler: a floating or misused promise can become an
  // unhandled rejection, which stops the server. Type-aware, so TypeScript files only.
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // tap's t.test() returns a promise that tap itself awaits (its documented idiom).
        { allowForKnownSafeCalls: ['@tapjs/test', '@tapjs/core', 'tap'].map((pkg) => ({ from: 'package', name: ['test', 'skip', 'todo', 'only'], package: pkg })) },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
);
