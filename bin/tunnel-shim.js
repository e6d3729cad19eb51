#!/usr/bin/env node
// Runs the built CLI (npm run build, or make setup, writes dist/).
import { main } from '../dist/src/cli/main.js';

await main(process.argv);
