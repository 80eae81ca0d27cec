#!/usr/bin/env node
// The `pipelines` command. Node's compile cache (compiled code and stripped TypeScript, kept between runs, checked
// against each file's content) is turned on before any other module loads: it halves the start-up of a command. It
// lives in NODE_COMPILE_CACHE, else in the system's temporary folder; where it cannot be written, nothing changes.
import { enableCompileCache } from 'node:module';

enableCompileCache();
await import('./command-line.ts');
