/**
 * @unicrm/sandboxes: local emulators of the CRM APIs unicrm integrates, for development, HTTP tests, demos and
 * benchmarks. The shared kit (server, faults, request log, contract checks, provider module interface):
 * docs/sandboxes.md. Pipeliner (Steps and Pipelines): docs/pipeliner-sandbox.md;
 * Pipedrive (API v2 stages and pipelines, OAuth): docs/pipedrive-sandbox.md; HubSpot (CRM Pipelines v3, OAuth):
 * docs/hubspot-sandbox.md.
 */
export * from './kit';
export * from './pipeliner';
export * from './pipedrive';
export * from './hubspot';
export { PROVIDERS } from './providers';
