import GitMLBasics
import GitMLLineage

/// One model's versions and where each stands, folded from its event files in time order.
///
/// The fold applies only events that could have been written by `git ml`: an event dated in the future or before
/// its version was registered, or a rollback to a version that was never in production, is left out and listed in
/// `ignored` with the reason, so `model list` shows the state the honest events give and the push check names the
/// file.
public struct ModelState: Sendable {
    /// How far past the judging clock an event may be dated (clocks of two machines differ a little).
    public static let clockSkew = 300.0

    /// A version and what the events say of it.
    public struct VersionState: Sendable {
        public let file: ModelVersion
        public internal(set) var stage: Stage = .draft
        public internal(set) var approvals: [RegistryEvent] = []
        public internal(set) var gates: [RegistryEvent] = []
        /// Its time in production ended in a rollback: never a rollback target unless named.
        public internal(set) var rolledBack = false
        /// It has been in production at some point (a rollback may return only to such a version).
        public internal(set) var wasInProduction = false
    }

    /// An event the fold did not apply, and why.
    public struct Ignored: Sendable {
        public let event: RegistryEvent
        public let reason: String
    }

    public let name: String
    public internal(set) var versions: [Int: VersionState]
    /// Every event, in the order folded (ignored ones included, for the audit trail).
    public let events: [RegistryEvent]
    /// Events left out of the fold.
    public internal(set) var ignored: [Ignored] = []
    /// The champion: the one version in production.
    public internal(set) var production: Int?
    /// Versions in the order they entered production.
    public internal(set) var productionHistory: [Int] = []

    init(name: String, versions: [ModelVersion], events: [RegistryEvent], now: Double) {
        self.name = name
        self.versions = Dictionary(
            versions.map { ($0.version, VersionState(file: $0)) }, uniquingKeysWith: { a, _ in a })
        self.events = events.sorted { ($0.seconds, $0.id) < ($1.seconds, $1.id) }
        for event in self.events {
            if let reason = problem(with: event, now: now) {
                ignored.append(Ignored(event: event, reason: reason))
            } else {
                apply(event)
            }
        }
    }

    /// Why `event` may not be applied now, or nil when it may.
    private func problem(with event: RegistryEvent, now: Double) -> String? {
        guard let version = versions[event.version] else {
            return "names version \(event.version), which has no version file"
        }
        if event.seconds > now + Self.clockSkew {
            return "is dated \(event.time), in the future"
        }
        if let created = Timestamp.seconds(version.file.created), event.seconds + Self.clockSkew < created {
            return "is dated \(event.time), before version \(event.version) was registered (\(version.file.created))"
        }
        if event.kind == .rollback && !version.wasInProduction {
            return "rolls production back to version \(event.version), which was never in production"
        }
        if event.kind == .stage, let to = event.to, to != .draft || version.stage != .draft,
            !version.stage.allows(to)
        {
            return
                "moves version \(event.version) from \(version.stage.rawValue) to \(to.rawValue), which is not a transition"
        }
        return nil
    }

    private mutating func apply(_ event: RegistryEvent) {
        let version = event.version
        switch event.kind {
        case .stage:
            guard let to = event.to else { return }
            if to == .production {
                enterProduction(version)
            } else {
                if production == version { production = nil }
                versions[version]?.stage = to
            }
        case .approval: versions[version]?.approvals.append(event)
        case .gate: versions[version]?.gates.append(event)
        case .rollback:
            if let from = event.rolledBack {
                versions[from]?.rolledBack = true
                if production == from { production = nil }
                versions[from]?.stage = .archived
            }
            enterProduction(version)
        case .rollout: break
        }
    }

    private mutating func enterProduction(_ version: Int) {
        if let current = production, current != version { versions[current]?.stage = .archived }
        production = version
        versions[version]?.stage = .production
        versions[version]?.wasInProduction = true
        productionHistory.append(version)
    }

    /// The version a reference names: a number, `production`, `staging` (the newest in staging) or `latest`.
    public func resolve(_ reference: String) throws -> Int {
        let known = versions.keys.sorted().map(String.init)
        let notFound = RegistryError.versionNotFound(model: name, reference: reference, known: known)
        switch reference.lowercased() {
        case "production", "prod", "champion":
            guard let production else { throw RegistryError.notInProduction(model: name) }
            return production
        case "staging":
            let staged = events.filter {
                $0.kind == .stage && $0.to == .staging && versions[$0.version]?.stage == .staging
            }
            guard let newest = staged.last?.version else { throw notFound }
            return newest
        case "latest":
            guard let newest = versions.keys.max() else { throw notFound }
            return newest
        default:
            let digits = reference.hasPrefix("v") ? String(reference.dropFirst()) : reference
            guard let number = Int(digits), versions[number] != nil else { throw notFound }
            return number
        }
    }

    /// The version a candidate is compared with: the one in production, else the last one that was (so archiving
    /// the champion first does not leave a weaker candidate nothing to be measured against). Nil when no version
    /// other than `candidate` was ever in production.
    public func champion(excluding candidate: Int) -> Int? {
        if let production { return production == candidate ? nil : production }
        return productionHistory.last { $0 != candidate }
    }

    /// The events that registered a version (its move to draft from nothing).
    public func registration(of version: Int) -> [RegistryEvent] {
        events.filter { $0.version == version && $0.kind == .stage && $0.to == .draft && $0.from == nil }
    }

    /// Where `rollback` goes by default: the most recent earlier champion whose time in production did not end
    /// in a rollback.
    public func rollbackTarget() -> Int? {
        productionHistory.reversed().first { $0 != production && versions[$0]?.rolledBack == false }
    }
}
