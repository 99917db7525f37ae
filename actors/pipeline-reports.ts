/**
 * Pipeline step reports on the bus (`domain/pipeline/step-report.ts`): a trainer publishes one per
 * step, the explorer follows them into its metrics. Advisory: a report that cannot be sent is not
 * worth a failed step, and one that does not decode is skipped.
 */
import { Effect, Stream } from "effect"
import { Subjects } from "../domain/network/subjects.ts"
import { decodeStepReport, encodeStepReport, type StepReport } from "../domain/pipeline/step-report.ts"
import { Bus } from "../domain/ports/bus.ts"

export const reportStep = (report: StepReport) => Effect.flatMap(Bus, (bus) => Effect.ignore(bus.publish(Subjects.pipelineReports, encodeStepReport(report))))

/** Hand every report published from now until the scope closes to `onReport`. */
export const followStepReports = (onReport: (report: StepReport) => void) =>
  Effect.gen(function* () {
    const bus = yield* Bus
    const reports = yield* bus.subscribe(Subjects.pipelineReports)
    yield* Effect.forkScoped(
      Stream.runForEach(reports, (m) =>
        Effect.sync(() => {
          const r = decodeStepReport(m.data)
          if (r !== undefined) onReport(r)
        })
      )
    )
  })
