// The device suite (test/helpers/device-suite.ts) on the device named by
// FORESTFS_TEST_DEVICE / FORESTFS_TEST_BACKEND: run by test/nvme/run.sh in the QEMU guest
// for each backend. Skipped when they are unset. Overwrites the device's first blocks.
import test from 'ava';
import { envDeviceSuite } from '../helpers/device-suite.js';

envDeviceSuite(test);
