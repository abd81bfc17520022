import { defineCliSuite, defineRemoteOnlySuite, useCliWorld } from './cli.shared.spec';

// The CLI in the remote mode, spawned, against the API app; the suites are in cli.shared.spec.ts.
useCliWorld();
defineCliSuite('remote');
defineRemoteOnlySuite();
