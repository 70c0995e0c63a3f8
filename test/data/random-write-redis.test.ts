import { randomWriteSuite } from './random-write.js';

// One file per backend, so the two gigabyte runs can go in parallel with the rest of the suite.
randomWriteSuite('redis');
