import GitMLStore
import Synchronization

/// An exact-match response cache for one served version (opt-in, `cache: true`): the same route and the same
/// request bytes get the same 200 response without a backend call. Oldest entries leave first.
final class ResponseCache: Sendable {
    struct Entry: Sendable {
        let body: [UInt8]
        let contentType: String
    }

    /// Answers larger than this are not kept (so the cache holds at most entries × 1 MiB).
    static let largestEntry = 1 << 20
    private let capacity: Int
    private let table = Synchronization.Mutex<(entries: [String: Entry], order: [String], head: Int)>(([:], [], 0))

    init(capacity: Int) { self.capacity = capacity }

    /// The key of a request: the sha256 of its path and body.
    static func key(path: String, body: [UInt8]) -> String {
        (try? SHA256.hex(of: Array(path.utf8) + [0] + body)) ?? ""
    }

    func get(_ key: String) -> Entry? { table.withLock { $0.entries[key] } }

    func put(_ key: String, _ entry: Entry) {
        guard !key.isEmpty else { return }
        table.withLock { state in
            if state.entries[key] == nil {
                state.order.append(key)
                if state.order.count - state.head > capacity {
                    state.entries[state.order[state.head]] = nil
                    state.head += 1
                    if state.head > capacity {
                        state.order.removeFirst(state.head)
                        state.head = 0
                    }
                }
            }
            state.entries[key] = entry
        }
    }
}
