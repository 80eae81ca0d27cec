// Addresses of the local stack (deploy/local/stack), as exported by deploy/local/env.sh.
export function localStack() {
  const brokers = process.env.PIPELINES_BROKERS;
  const registryUrl = process.env.PIPELINES_REGISTRY_URL;
  if (!brokers || !registryUrl) {
    throw new Error(
      'the local stack is not configured: run tests through deploy/local/test.sh (or source deploy/local/env.sh)',
    );
  }
  return { brokers: brokers.split(','), registryUrl };
}
