#!/usr/bin/env bun
import { execute, settings } from "@oclif/core";

// Bun runs the TypeScript commands directly: no ts-node/tsx lookup, no lib->src rewriting.
settings.enableAutoTranspile = false;
await execute({ dir: import.meta.url });
