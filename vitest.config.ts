import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // End-to-end tests bind real UDP/SIP ports and start real peers: run files one at a time.
    fileParallelism: false,
    pool: 'forks',
  },
});
