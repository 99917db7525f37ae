import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "domain/**/*.test.ts", "adapters/**/*.test.ts", "actors/**/*.test.ts", "infra/**/*.test.ts"],
    globalSetup: ["test/support/build-setup.ts"],
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 300_000,
    hookTimeout: 60_000
  }
})
