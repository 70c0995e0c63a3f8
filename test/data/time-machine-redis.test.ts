import { timeMachineSuite } from './time-machine.js';

// One file per backend, so the two runs can go in parallel with the rest of the suite.
timeMachineSuite('redis');
