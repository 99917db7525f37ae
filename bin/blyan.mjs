#!/usr/bin/env node
// The CLI runs from TypeScript sources through tsx's loader: no build step between a clone and a run.
import { register } from "tsx/esm/api"

register()
await import("../infra/cli/main.ts")
