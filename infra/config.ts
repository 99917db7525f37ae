import { Config, Effect, Schema } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import type { Device } from "../domain/ports/executor.ts"

/**
 * Settings read from BLYAN_* variables. A malformed value is refused at start with a message
 * naming the variable, never replaced by a default.
 */
export const deviceConfig: Config.Config<Device> = Config.literal("cpu", "cuda")("BLYAN_DEVICE").pipe(Config.withDefault("cpu" as const))

/** Where a user's own keys live: outside the data directory, which holds only what the ledger verifies. */
export const homeConfig = Config.string("BLYAN_HOME").pipe(Config.withDefault(path.join(os.homedir(), ".blyan")))

export class SettingInvalid extends Schema.TaggedError<SettingInvalid>()("SettingInvalid", { message: Schema.String }) {}

/** Load a setting; a ConfigError becomes one message naming the variable. */
export const setting = <A>(config: Config.Config<A>) => Effect.mapError(config, (e) => new SettingInvalid({ message: `invalid setting ${String(e)}` }))
