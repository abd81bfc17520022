import { hubspotSandbox } from './hubspot/module';
import type { AnyProviderModule } from './kit/provider';
import { pipedriveSandbox } from './pipedrive/module';
import { pipelinerSandbox } from './pipeliner/module';

/**
 * Every provider sandbox `npm run sandbox` knows, in the order it starts and prints them. Adding a provider is one
 * line here (its module: docs/sandboxes.md "Adding a provider").
 */
export const PROVIDERS: readonly AnyProviderModule[] = [pipelinerSandbox, pipedriveSandbox, hubspotSandbox];
