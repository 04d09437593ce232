import GitMLBasics

/// What one caller of a batch gets back: its own predictions, or the backend's failure of the whole batch.
enum BatchAnswer: Sendable {
    case predictions([JSONValue])
    case failed(status: Int, body: [UInt8], contentType: String)
}

/// Micro-batching of KServe v1 `instances` for one served version (as KServe's batcher and Triton's dynamic
/// batching do): concurrent requests are combined into one backend call of at most `maxSize` instances, sent when
/// it is full or when its first request has waited `maxLatency`. Each caller gets exactly its own predictions, in
/// order; a failed call fails only the requests in it.
actor Batcher {
    private struct Waiting {
        let instances: [JSONValue]
        let continuation: CheckedContinuation<BatchAnswer, Never>
    }

    private let maxSize: Int
    private let maxLatency: Duration
    private let send: @Sendable ([JSONValue]) async -> Result<[JSONValue], BatchFailure>
    private let depth: @Sendable (Int) -> Void
    private var waiting: [Waiting] = []
    private var count = 0
    private var round = 0

    struct BatchFailure: Error {
        let status: Int
        let body: [UInt8]
        let contentType: String
    }

    init(
        maxSize: Int, maxLatencyMilliseconds: Int, depth: @escaping @Sendable (Int) -> Void,
        send: @escaping @Sendable ([JSONValue]) async -> Result<[JSONValue], BatchFailure>
    ) {
        self.maxSize = maxSize
        self.maxLatency = .milliseconds(maxLatencyMilliseconds)
        self.send = send
        self.depth = depth
    }

    /// Queues `instances` and returns this request's answer once its batch has been answered.
    func submit(_ instances: [JSONValue]) async -> BatchAnswer {
        await withCheckedContinuation { continuation in
            waiting.append(Waiting(instances: instances, continuation: continuation))
            count += instances.count
            depth(instances.count)
            if count >= maxSize {
                flush()
            } else if waiting.count == 1 {
                let due = round
                Task { [maxLatency] in
                    try? await Task.sleep(for: maxLatency)
                    await self.flush(ifRound: due)
                }
            }
        }
    }

    private func flush(ifRound due: Int) {
        if round == due && !waiting.isEmpty { flush() }
    }

    /// Sends what waits, in calls of at most `maxSize` instances (a larger request goes alone).
    private func flush() {
        round += 1
        var batches: [[Waiting]] = []
        var current: [Waiting] = []
        var size = 0
        for item in waiting {
            if !current.isEmpty && size + item.instances.count > maxSize {
                batches.append(current)
                current = []
                size = 0
            }
            current.append(item)
            size += item.instances.count
        }
        if !current.isEmpty { batches.append(current) }
        depth(-count)
        waiting = []
        count = 0
        for batch in batches {
            Task { [send] in
                let result = await send(batch.flatMap(\.instances))
                switch result {
                case .success(let predictions):
                    var offset = 0
                    for item in batch {
                        let own = Array(predictions[offset..<(offset + item.instances.count)])
                        offset += item.instances.count
                        item.continuation.resume(returning: .predictions(own))
                    }
                case .failure(let failure):
                    for item in batch {
                        item.continuation.resume(
                            returning: .failed(
                                status: failure.status, body: failure.body, contentType: failure.contentType))
                    }
                }
            }
        }
    }
}
