import { jest } from '@jest/globals';

// Real scheduling, binding and helper runs take seconds each, bursts and fault cases up to a few minutes.
jest.setTimeout(180_000);
