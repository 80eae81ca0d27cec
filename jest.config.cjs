// Three projects: fast unit tests (no services), tests on the real local stack (deploy/local/stack up), and the
// deploy stage (image, compose, manifests, API server; tools from deploy/local/deploy-tools.sh, PIPELINES_SKIP_DEPLOY=1
// skips what needs them).
// swc turns TypeScript (and the few ESM-only dependencies) into CommonJS for jest's module loader.
const swc = ['@swc/jest', { jsc: { target: 'es2023', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }];
const common = {
  transform: { '^.+\\.(ts|js)$': swc },
  transformIgnorePatterns: ['/node_modules/(?!@marcbachmann/cel-js/)'],
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'json'],
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts', '<rootDir>/topologies/**/*.test.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'] },
    { ...common, displayName: 'deploy', testMatch: ['<rootDir>/test/deploy/**/*.test.ts'] },
  ],
};
