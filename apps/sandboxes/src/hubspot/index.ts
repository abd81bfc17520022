/**
 * The HubSpot sandbox module: an emulator of HubSpot's CRM Pipelines v3 (deal and ticket pipelines and stages) and its
 * OAuth token endpoint, on the sandbox kit. Behaviour and every decision: docs/hubspot-sandbox.md.
 */
export { startHubSpotSandbox } from './server';
export type { HubSpotSandboxOptions, RunningHubSpotSandbox } from './server';
export { HUBSPOT_DEFAULTS, hubspotSandbox } from './module';
export type { HubSpotInstance, HubSpotOptions } from './module';
export { HUBSPOT_SEED } from './store';
export { HUBSPOT_RATE_LIMITS, hubspotRateLimits } from './rate-limits';
export type { HubSpotRateLimitSettings } from './rate-limits';
export { HUBSPOT_OPENAPI_RELATIVE_PATH, loadHubSpotContract } from './contract';
