// Jest in ESM mode (run with --experimental-vm-modules): @kubernetes/client-node 2.x is ESM-only.
// Two projects: `unit` (test/, no cluster) and `e2e` (e2e/, the real control plane).
import { createDefaultEsmPreset } from 'ts-jest';

const preset = createDefaultEsmPreset({ tsconfig: 'tsconfig.json' });
const common = {
  ...preset,
  testEnvironment: 'node',
  // Sources import './x.js' (NodeNext); map them back to the .ts files.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  // Only our sources: .cluster/ holds etcd's *.snap files, which jest would take for obsolete snapshots.
  roots: ['<rootDir>/src', '<rootDir>/controllers', '<rootDir>/test', '<rootDir>/e2e'],
  modulePathIgnorePatterns: ['<rootDir>/.cluster/', '<rootDir>/dist/', '<rootDir>/.tools/'],
};

export default {
  coverageDirectory: 'coverage',
  collectCoverageFrom: ['src/**/*.ts', 'controllers/**/*.ts'],
  coverageReporters: ['text-summary', 'lcov'],
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/**/*.test.ts'] },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/e2e/**/*.test.ts'],
      setupFilesAfterEnv: ['<rootDir>/e2e/support/timeout.ts'],
      globalSetup: '<rootDir>/e2e/support/global-setup.ts',
    },
  ],
};
