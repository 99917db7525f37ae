import * as os from "node:os"
import * as path from "node:path"
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "domain/**/*.test.ts", "adapters/**/*.test.ts", "actors/**/*.test.ts", "infra/**/*.test.ts"],
    globalSetup: ["test/support/build-setup.ts"],
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // The keys commands create (the ledger's, a contributor's) go to a home of the run's own, never the user's.
    // The explorers `blyan up` starts listen on free ports: tests run side by side; a fresh ledger is trained first only where a test asks.
    env: { BLYAN_HOME: path.join(os.tmpdir(), `blyan-test-home-${process.pid}`), BLYAN_HTTP_PORT: "0", BLYAN_UP_TRAIN_STEPS: "0" },
    testTimeout: 300_000,
    hookTimeout: 60_000
  }
})
