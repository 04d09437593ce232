import GitMLBasics
import GitMLLineage
import GitMLRegistry
import GitMLRollout
import GitMLStore
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A rollout the gateway runs for one model: the candidate beside the stable version, the split, and the
/// measurements of the interval under way.
final class ActiveRollout: Sendable {
    let plan: RolloutPlan
    let candidate: ServedVersion
    /// The candidate's share of requests in percent (canary, blue-green; shadow: 0).
    let weight: Synchronization.Atomic<Int>
    let paused: Synchronization.Atomic<Bool>
    /// Held while this process analyses and decides; other gateways on the same work tree follow the state it
    /// saves, and try to take the lock on every tick (a leader that exits hands over).
    private let leader = Synchronization.Mutex<AnalysisLock?>(nil)
    private let lockPath: String?
    let progress: Synchronization.Mutex<RolloutStore.State>
    let samples = Synchronization.Mutex<(stable: ArmSamples, candidate: ArmSamples)>((ArmSamples(), ArmSamples()))
    let mirror: ShadowMirror?
    /// Shadow requests dropped because the mirror's queue was full.
    let dropped = Synchronization.Atomic<Int>(0)

    init(plan: RolloutPlan, candidate: ServedVersion, state: RolloutStore.State, lockPath: String?, token: Bool) {
        self.plan = plan
        self.candidate = candidate
        weight = Atomic(state.weight)
        paused = Atomic(plan.phase == .paused)
        self.lockPath = lockPath
        progress = Mutex(state)
        if plan.strategy == .shadow {
            let box = MirrorTarget()
            mirror = ShadowMirror(candidate: candidate, tolerance: plan.analysis.tolerance, dropAuthorization: token) {
                status, milliseconds, agreed in
                box.rollout?.samples.withLock { arms in
                    arms.candidate.record(status: status, milliseconds: milliseconds)
                    if let agreed { arms.candidate.compare(agreed: agreed) }
                }
            }
            mirrorTarget = box
        } else {
            mirror = nil
            mirrorTarget = nil
        }
        mirrorTarget?.rollout = self
    }

    private let mirrorTarget: MirrorTarget?

    /// True when this process analyses the rollout (taking the lock when no other process holds it).
    func takeLeadIfFree() -> (leader: Bool, gained: Bool) {
        leader.withLock { held in
            if held != nil { return (true, false) }
            held = lockPath.flatMap { AnalysisLock(path: $0) }
            return (held != nil, held != nil)
        }
    }

    /// Lets another rollout (in this process or another) take the analysis lock at once.
    func releaseLead() { leader.withLock { $0 = nil } }

    /// Counts an answer of `arm` in the interval under way.
    func record(_ arm: Arm, status: Int, milliseconds: Double?) {
        samples.withLock { arms in
            switch arm {
            case .stable: arms.stable.record(status: status, milliseconds: milliseconds)
            case .candidate: arms.candidate.record(status: status, milliseconds: milliseconds)
            }
        }
    }

    /// The bucket a request falls in: its key (a header, a JSON field) hashed with the rollout's id; a request
    /// without the key, or a rollout keyed `random`, draws one. `parsed` is the body when the route already parsed it.
    func bucket(headers: HTTPFields, body: ByteBuffer, parsed: JSONValue?) -> Int {
        switch plan.key {
        case .random: return Int.random(in: 0..<10_000)
        case .header(let name):
            guard let field = HTTPField.Name(name), let value = headers[field] else {
                return Int.random(in: 0..<10_000)
            }
            return Router.bucket(value.utf8, salt: plan.id)
        case .json(let field):
            guard let parsed = parsed ?? (try? JSONParser.parse(Array(body.readableBytesView), source: "the request")),
                let value = parsed[field], value != .null
            else { return Int.random(in: 0..<10_000) }
            let text = value.string ?? JSONWriter.compact(value)
            return Router.bucket(text.utf8, salt: plan.id)
        }
    }

    /// The candidate, counted as in use, while this rollout is still the slot's.
    func acquireCandidate(in slot: Slot) -> ServedVersion? {
        candidate.inflight.add(1, ordering: .sequentiallyConsistent)
        if slot.rollout.withLock({ $0 === self }) { return candidate }
        candidate.inflight.subtract(1, ordering: .sequentiallyConsistent)
        return nil
    }

    /// Takes the interval's measurements and starts the next interval.
    func takeSamples() -> (stable: ArmStats, candidate: ArmStats) {
        let taken = samples.withLock { arms -> (ArmSamples, ArmSamples) in
            defer { arms = (ArmSamples(), ArmSamples()) }
            return arms
        }
        return (taken.0.stats(), taken.1.stats())
    }

    /// Drops what was measured so far, unjudged (no sorting).
    func resetSamples() {
        samples.withLock { $0 = (ArmSamples(), ArmSamples()) }
    }
}

/// Lets the mirror's callback reach its rollout (made after it).
private final class MirrorTarget: @unchecked Sendable {
    // Written once, before the mirror's first job, and read only afterwards.
    var rollout: ActiveRollout?
}

/// `flock` without waiting: held by the one gateway process that analyses a model's rollout.
final class AnalysisLock: Sendable {
    private let fd: Int32

    init?(path: String) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        self.fd = fd
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Copies requests to a shadow candidate from a bounded queue: the primary's answer never waits on it, a full
/// queue drops the copy, and at most 16 copies are in flight, so a hung candidate costs the primary nothing. A
/// candidate whose last 16 copies all failed to answer (timeouts, refused connections) gets none for 30 s (a
/// circuit breaker): the copies it misses count as its errors, so the analysis sees a dead shadow at once.
final class ShadowMirror: Sendable {
    struct Job: Sendable {
        let method: HTTPRequest.Method
        let path: String
        let headers: HTTPFields
        let body: ByteBuffer
        let primaryStatus: Int
        let primary: [UInt8]
    }

    static let queueCapacity = 256
    static let concurrency = 16
    /// A request whose body and answer together are larger is not copied (the queue holds at most 64 MiB).
    static let largestCopy = 256 << 10
    static let breakerOpen = Duration.seconds(30)
    private let continuation: AsyncStream<Job>.Continuation
    private let task: Task<Void, Never>
    private let breaker = Breaker()
    private let record: @Sendable (Int, Double?, Bool?) -> Void

    init(
        candidate: ServedVersion, tolerance: Double, dropAuthorization: Bool,
        record: @escaping @Sendable (Int, Double?, Bool?) -> Void
    ) {
        let (stream, continuation) = AsyncStream<Job>.makeStream(bufferingPolicy: .bufferingOldest(Self.queueCapacity))
        self.continuation = continuation
        self.record = record
        let breaker = self.breaker
        task = Task {
            await withTaskGroup(of: Void.self) { group in
                var running = 0
                for await job in stream {
                    if running >= Self.concurrency {
                        await group.next()
                        running -= 1
                    }
                    if breaker.isOpen {
                        record(503, nil, nil)
                        continue
                    }
                    running += 1
                    group.addTask {
                        candidate.inflight.add(1, ordering: .relaxed)
                        defer { candidate.inflight.subtract(1, ordering: .relaxed) }
                        let start = ContinuousClock.now
                        var status = 502
                        var output: [UInt8] = []
                        do {
                            let answer = try await Proxy.forward(
                                backend: candidate.backend, method: job.method, path: job.path, headers: job.headers,
                                body: job.body, timeoutMilliseconds: candidate.settings.timeoutMilliseconds,
                                dropAuthorization: dropAuthorization)
                            switch answer {
                            case .whole(let code, _, let body):
                                status = code
                                output = Array(body.readableBytesView)
                            case .stream(let code, _, _): status = code
                            }
                        } catch let failure as Proxy.Failure {
                            status = failure.status
                        } catch {
                            status = 502
                        }
                        if Task.isCancelled { return }
                        breaker.count(answered: status != 502 && status != 504)
                        let milliseconds = (ContinuousClock.now - start).seconds * 1000
                        let agreed: Bool? =
                            job.primaryStatus == 200
                            ? (status == 200 && Agreement.agree(job.primary, output, tolerance: tolerance)) : nil
                        record(status, milliseconds, agreed)
                    }
                }
                group.cancelAll()
            }
        }
    }

    /// Queues a copy; false when the queue was full and it was dropped. While the breaker is open the copy is not
    /// sent, and counts as the candidate's error.
    func offer(_ job: Job) -> Bool {
        if breaker.isOpen {
            record(503, nil, nil)
            return true
        }
        if case .dropped = continuation.yield(job) { return false }
        return true
    }

    /// Consecutive copies that got no answer, and until when none is sent.
    final class Breaker: Sendable {
        private let state = Synchronization.Mutex<(failures: Int, openUntil: ContinuousClock.Instant?)>((0, nil))

        var isOpen: Bool {
            state.withLock { state in
                guard let until = state.openUntil else { return false }
                if ContinuousClock.now < until { return true }
                state.openUntil = nil
                return false
            }
        }

        func count(answered: Bool) {
            state.withLock { state in
                state.failures = answered ? 0 : state.failures + 1
                if state.failures >= ShadowMirror.concurrency {
                    state = (0, ContinuousClock.now + ShadowMirror.breakerOpen)
                }
            }
        }
    }

    func stop() {
        continuation.finish()
        task.cancel()
    }
}

extension Gateway {
    /// Follows every model's rollout file: starts a candidate, moves weights, analyses intervals, ends rollouts.
    /// Called four times a second, and at once on SIGHUP.
    func followRollouts(force: Bool = false) async {
        await follows.run(force: force) { force in
            for slot in slots.withLock({ Array($0.values) }) {
                await followRollout(slot, force: force)
            }
        }
    }

    private func readPlan(_ slot: Slot) -> RolloutPlan?? {
        do {
            return .some(try RolloutControl.read(slot.name, in: Beneath(root: loader.root)))
        } catch {
            note(slot, "\(RolloutPlan.path(model: slot.name)) not followed: \(Self.describe(error))")
            return nil
        }
    }

    /// Logs `text` unless it is what was last said about this slot's rollout.
    private func note(_ slot: Slot, _ text: String) {
        let changed = slot.planProblem.withLock { old -> Bool in
            defer { old = text }
            return old != text
        }
        if changed { serveLog(text) }
    }

    private func followRollout(_ slot: Slot, force: Bool) async {
        guard let plan = readPlan(slot) else {
            // Unreadable (a merge conflict, a bad edit): fail safe, all traffic to the stable version; after a
            // blue-green switch the candidate is production, so it keeps serving until the file reads again.
            if let active = slot.rollout.withLock({ $0 }), active.progress.withLock({ $0.switched }) == nil {
                end(slot, active, why: "the rollout file is unreadable")
                slot.failedRollout.withLock { $0 = active.plan.id }
            }
            return
        }
        let settings = slot.settings.withLock { $0 }
        let servesProduction = settings.version == nil && settings.stage == .production
        if let active = slot.rollout.withLock({ $0 }) {
            guard let plan, plan.id == active.plan.id, plan.phase.isActive else {
                if let plan, plan.id == active.plan.id, plan.phase == .promoted {
                    adopt(slot, active, why: "promoted")
                } else {
                    end(
                        slot, active,
                        why: plan.map { "the rollout is \($0.phase.rawValue)" } ?? "the rollout file is gone")
                }
                return
            }
            guard servesProduction, case .managed = settings.backend else {
                // This gateway's settings changed (SIGHUP): it stops taking part; the registry is not touched.
                end(slot, active, why: "serve.yaml no longer serves \(slot.name)'s production from a managed backend")
                slot.failedRollout.withLock { $0 = plan.id }
                return
            }
            let store = try? RolloutStore(root: loader.root)
            // Production moved under the rollout (a rollback or promotion by hand): its plan no longer holds.
            let loader = self.loader
            if let production = try? await Self.offload({ try loader.current(settings).version }),
                production != plan.stable, production != plan.candidate
            {
                active.weight.store(0, ordering: .sequentiallyConsistent)
                let reason = "version \(production) was put in production during the rollout"
                await control(slot, "record the abort") { _ = try $0.abort(slot.name, reason: reason, id: plan.id) }
                try? store?.markEnded(rollout: plan.id, why: reason)
                end(slot, active, why: reason)
                return
            }
            let paused = plan.phase == .paused
            if active.paused.exchange(paused, ordering: .relaxed) != paused {
                serveLog(
                    "\(slot.name)@\(plan.candidate): rollout \(paused ? "paused" : "resumed"), step \(active.progress.withLock { $0.step } + 1)"
                )
            }
            let (leader, gained) = active.takeLeadIfFree()
            if gained && plan.strategy != .blueGreen {
                // A fresh interval: what was measured before this process led is not judged.
                active.resetSamples()
                active.progress.withLock { $0.stepStarted = Timestamp.nowSeconds() }
            }
            if leader {
                await analyse(slot, active)
            } else {
                active.resetSamples()  // a follower's measurements are not judged: keep them bounded
                if let state = try? store?.state(model: slot.name, rollout: plan.id) {
                    active.weight.store(state.weight, ordering: .relaxed)
                    active.progress.withLock { $0 = state }
                }
            }
            return
        }
        guard let plan, plan.phase.isActive, !stopping.load(ordering: .relaxed) else { return }
        if force { slot.failedRollout.withLock { $0 = nil } }
        guard slot.failedRollout.withLock({ $0 }) != plan.id, let stable = slot.serving else { return }
        guard servesProduction, case .managed = settings.backend else {
            note(
                slot,
                "\(slot.name): rollout \(plan.id) not started: a rollout needs serve.yaml to serve the model's "
                    + "production stage from a managed backend (command:), so each version runs its own server")
            return
        }
        let store = try? RolloutStore(root: loader.root)
        var ended = (try? store?.hasEnded(rollout: plan.id)) == true
        if !ended { ended = await recordedEnd(plan) }
        if ended {
            slot.failedRollout.withLock { $0 = plan.id }
            note(slot, "\(slot.name): rollout \(plan.id) has ended before (its file was restored?); not started again")
            return
        }
        guard stable.verified.version == plan.stable else {
            if plan.strategy == .blueGreen, stable.verified.version == plan.candidate,
                let switched = (try? store?.state(model: slot.name, rollout: plan.id))??.switched
            {
                // Blue is gone here and the candidate is production: once the warm period is over, it is done.
                guard Timestamp.nowSeconds() - switched >= plan.keepWarmSeconds else { return }
                let recorded = await control(slot, "complete the rollout") {
                    try $0.finish(
                        slot.name, id: plan.id, phase: .promoted,
                        reason: "version \(plan.candidate) has served all traffic since the switch", decision: nil)
                }
                if recorded { slot.failedRollout.withLock { $0 = plan.id } }
                return
            }
            note(
                slot,
                "\(slot.name): the rollout's stable version is \(plan.stable), but this gateway serves version "
                    + "\(stable.verified.version); waiting")
            return
        }
        let starting = slot.rolloutStarting.withLock { busy -> Bool in
            defer { busy = true }
            return busy
        }
        if starting { return }
        Task {
            defer { slot.rolloutStarting.withLock { $0 = false } }
            await self.begin(slot, plan, stable: stable)
        }
    }

    /// Verifies and starts the candidate (lineage, its production gates, health), then installs the rollout at the
    /// step its saved state names (a restarted gateway resumes) or at its first step.
    private func begin(_ slot: Slot, _ plan: RolloutPlan, stable: ServedVersion) async {
        let started = ContinuousClock.now
        let settings = slot.settings.withLock { $0 }
        let candidate: ServedVersion
        do {
            candidate = try await prepare(settings, pin: plan.candidate, gatesFor: .production)
        } catch {
            slot.failedRollout.withLock { $0 = plan.id }
            serveLog(
                "\(slot.name)@\(plan.candidate): rollout \(plan.id) not started: \(Self.describe(error)); "
                    + "send SIGHUP to try again, or git ml rollout abort \(slot.name)")
            return
        }
        let store = try? RolloutStore(root: loader.root)
        let lockPath = try? Beneath(root: loader.root).checked(".mlops/cache/rollout-\(slot.name).analysis.lock")
        let now = Timestamp.nowSeconds()
        let saved = (try? store?.state(model: slot.name, rollout: plan.id)) ?? nil
        var state =
            saved
            ?? RolloutStore.State(
                rollout: plan.id, step: 0, weight: plan.strategy == .canary ? plan.weight(atStep: 0) : 0,
                stepStarted: now, started: now, switched: nil)
        if plan.strategy == .canary { state.weight = plan.weight(atStep: state.step) }
        // Resumed: the same step, judged on a fresh interval (not on the first requests of a cold candidate).
        if saved != nil { state.stepStarted = now }
        let rollout = ActiveRollout(
            plan: plan, candidate: candidate, state: state, lockPath: lockPath, token: token != nil)
        let leader = rollout.takeLeadIfFree().leader
        let installed = slot.rollout.withLock { current -> Bool in
            guard current == nil, slot.serving === stable, !stopping.load(ordering: .relaxed),
                slots.withLock({ $0[slot.name] === slot })
            else { return false }
            current = rollout
            return true
        }
        guard installed else {
            // Never reachable by a request: stopped here, before the drain (which waits for this start) ends.
            rollout.mirror?.stop()
            await candidate.backend.stop()
            ScratchDirectory.remove(candidate.verified.directory)
            return
        }
        if leader { try? store?.save(model: slot.name, state) }
        serveLog(
            "\(slot.name)@\(plan.candidate): \(plan.strategy.rawValue) rollout \(plan.id) "
                + (saved == nil ? "started" : "resumed at step \(state.step + 1)")
                + " in \(Self.seconds(since: started)) s; candidate at \(candidate.backend.base), weight \(state.weight) %"
                + (leader ? "" : " (another gateway analyses it)"))
    }

    /// Blue-green: all traffic to the candidate in one store (requests under way on blue finish there), then
    /// production moves to it in the registry.
    private func switchOver(_ slot: Slot, _ rollout: ActiveRollout) async {
        rollout.weight.store(100, ordering: .sequentiallyConsistent)
        let state = rollout.progress.withLock { state -> RolloutStore.State in
            state.weight = 100
            state.switched = Timestamp.nowSeconds()
            return state
        }
        try? RolloutStore(root: loader.root).save(model: slot.name, state)
        serveLog(
            "\(slot.name): switched to version \(rollout.plan.candidate); version \(rollout.plan.stable) stays warm")
        await control(slot, "record the switch") { try $0.switchOver(slot.name, id: rollout.plan.id) }
    }

    /// The leader's tick: at the end of an interval, judge it and act.
    private func analyse(_ slot: Slot, _ rollout: ActiveRollout) async {
        let plan = rollout.plan
        let now = Timestamp.nowSeconds()
        let state = rollout.progress.withLock { $0 }
        if plan.strategy == .blueGreen {
            guard !rollout.paused.load(ordering: .relaxed) else { return }
            guard let switched = state.switched else {
                await switchOver(slot, rollout)
                return
            }
            if now - switched >= plan.keepWarmSeconds {
                // The switch must have reached the registry first, or the candidate would be adopted while
                // production still names blue.
                let settings = slot.settings.withLock { $0 }
                let loader = self.loader
                guard (try? await Self.offload({ try loader.current(settings).version })) == plan.candidate else {
                    await control(slot, "record the switch") { try $0.switchOver(slot.name, id: plan.id) }
                    return
                }
                let recorded = await control(slot, "complete the rollout") {
                    try $0.finish(
                        slot.name, id: plan.id, phase: .promoted,
                        reason: "version \(plan.stable) kept warm for \(JSONWriter.format(plan.keepWarmSeconds)) s",
                        decision: nil)
                }
                // Unrecorded, the file still says running: blue stays warm and the next tick tries again.
                if recorded { adopt(slot, rollout, why: "the warm period ended") }
            }
            return
        }
        guard now - state.stepStarted >= plan.intervalSeconds else { return }
        let (stable, candidate) = rollout.takeSamples()
        if rollout.paused.load(ordering: .relaxed) {
            rollout.progress.withLock { $0.stepStarted = now }
            return
        }
        let decision =
            plan.strategy == .canary
            ? RolloutAnalysis.canary(plan, step: state.step, stable: stable, candidate: candidate)
            : RolloutAnalysis.shadow(plan, elapsed: now - state.started, stable: stable, candidate: candidate)
        let store = try? RolloutStore(root: loader.root)
        try? store?.append(model: slot.name, rollout: plan.id, decision)
        serveLog(
            "\(slot.name)@\(plan.candidate): step \(state.step + 1) \(decision.verdict.rawValue): \(decision.reason)")
        switch decision.verdict {
        case .hold:
            rollout.progress.withLock { $0.stepStarted = now }
        case .advance:
            let next = rollout.progress.withLock { state -> RolloutStore.State in
                if plan.strategy == .canary {
                    state.step += 1
                    state.weight = plan.weight(atStep: state.step)
                }
                state.stepStarted = now
                return state
            }
            rollout.weight.store(next.weight, ordering: .sequentiallyConsistent)
            try? store?.save(model: slot.name, next)
            if plan.strategy == .canary {
                await control(slot, "record the step") {
                    try $0.advance(slot.name, id: plan.id, decision: decision)
                }
            }
        case .abort:
            rollout.weight.store(0, ordering: .sequentiallyConsistent)
            await control(slot, "record the abort") {
                _ = try $0.abort(slot.name, reason: "analysis: \(decision.reason)", decision: decision, id: plan.id)
            }
            // Aborted here whether or not the file could say so: never started again, even after a restart.
            slot.failedRollout.withLock { $0 = plan.id }
            try? store?.markEnded(rollout: plan.id, why: decision.reason)
            end(slot, rollout, why: "aborted by the analysis")
        case .promote:
            let promoted = await control(slot, "promote the candidate") {
                _ = try $0.promote(slot.name, reason: "analysis: every step passed", decision: decision, id: plan.id)
            }
            // Not promoted (aborted meanwhile, no identity): the candidate is not adopted; the file decides next.
            if promoted {
                adopt(slot, rollout, why: "every step passed")
            } else {
                rollout.progress.withLock { $0.stepStarted = now }
            }
        case .finish:
            await control(slot, "record the end of the shadow") {
                try $0.finish(
                    slot.name, id: plan.id, phase: .finished, reason: "shadow over: \(decision.reason)",
                    decision: decision)
            }
            slot.failedRollout.withLock { $0 = plan.id }
            try? store?.markEnded(rollout: plan.id, why: decision.reason)
            end(slot, rollout, why: "the shadow's duration ended")
        }
    }

    /// True when the registry records that rollout `plan` ended (aborted, promoted, finished): a restored file
    /// does not bring it back.
    private func recordedEnd(_ plan: RolloutPlan) async -> Bool {
        let (root, environment) = (loader.root, self.environment)
        let events = try? await Self.offload {
            try Registry(
                source: WorkTreeSource(workspace: try Workspace(currentDirectory: root, environment: environment))
            ).events(of: plan.model)
        }
        return (events ?? []).contains {
            $0.kind == .rollout && $0.value["rollout"]?.string == plan.id
                && ["abort", "promote", "finish", "complete"].contains($0.value["action"]?.string ?? "")
        }
    }

    /// Runs a change of the rollout file and the registry off the event loops; a failure is logged once per
    /// message (the routing has already changed).
    @discardableResult
    private func control(_ slot: Slot, _ what: String, _ change: @escaping @Sendable (RolloutControl) throws -> Void)
        async -> Bool
    {
        let model = slot.name
        let root = loader.root
        let environment = self.environment
        do {
            try await Self.offload {
                try change(
                    RolloutControl(workspace: try Workspace(currentDirectory: root, environment: environment)))
            }
            return true
        } catch {
            note(slot, "\(model): could not \(what): \(Self.describe(error))")
            return false
        }
    }

    /// The rollout is over without the candidate: all traffic stays on (or returns to) the stable version.
    func end(_ slot: Slot, _ rollout: ActiveRollout, why: String) {
        rollout.weight.store(0, ordering: .sequentiallyConsistent)
        guard detach(slot, rollout) else { return }
        serveLog(
            "\(slot.name): rollout \(rollout.plan.id) ended (\(why)); version \(rollout.plan.stable) serves all traffic"
        )
        retire(rollout.candidate)
    }

    /// The candidate becomes what the slot serves; the stable version is retired once its requests finish.
    private func adopt(_ slot: Slot, _ rollout: ActiveRollout, why: String) {
        let candidate = rollout.candidate
        // Before the rollout leaves the slot, so a reconcile in between finds the candidate already attempted.
        let previous = slot.attempted.withLock { attempted in
            defer { attempted = (candidate.verified.version, candidate.verified.digest) }
            return attempted
        }
        guard detach(slot, rollout) else {
            slot.attempted.withLock { $0 = previous }
            return
        }
        let old = slot.state.withLock { state -> ServedVersion? in
            defer { state = .serving(candidate) }
            if case .serving(let old) = state { return old }
            return nil
        }
        serveLog("\(slot.name): version \(candidate.verified.version) serves all traffic (\(why))")
        if let old, old !== candidate { retire(old) }
    }

    /// Takes the rollout off its slot (false when something else already did) and stops its mirror.
    private func detach(_ slot: Slot, _ rollout: ActiveRollout) -> Bool {
        let removed = slot.rollout.withLock { current -> Bool in
            guard current === rollout else { return false }
            current = nil
            return true
        }
        if removed {
            rollout.mirror?.stop()
            rollout.releaseLead()
        }
        return removed
    }
}
