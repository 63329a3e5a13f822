// ESLint flat config: typescript-eslint's type-checked recommended rules over src/, test/ and bench/ (the files of
// tsconfig.test.json). Formatting is prettier's job (`npm run format:check`); nothing here is about layout.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.tap/', 'bench/.work/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
  },
  {
    rules: {
      // `async` without `await` is how a promise-returning method turns a throw into a rejection (`close()` of a
      // client, a test body): kept on purpose.
      '@typescript-eslint/require-await': 'off',
      // Passing on a caught `unknown` (reject(err) in a wrapper) is allowed; rejecting with a literal is not.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // `const { dropped: _, ...rest } = o` is how a key is left out of a copy.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
    },
  },
  {
    // tap owns the promise of every subtest (`t.test(...)`): a failing one is reported by tap, not lost.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafePromises: [{ from: 'package', package: '@tapjs/core', name: 'PromiseWithSubtest' }] },
      ],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
