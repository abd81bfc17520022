import { defineCliSuite, defineDataDirectorySuite, useCliWorld } from './cli.shared.spec';

// The CLI in the embedded mode, spawned; the suites are in cli.shared.spec.ts.
useCliWorld();
defineCliSuite('embedded');
defineDataDirectorySuite();
