import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

/// Work spread over every core: items are handed out one at a time (so uneven items balance), results come
/// back in input order, and the first error stops the hand-out and is thrown.
public enum Parallel {
    /// Online cores.
    public static var cores: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// `body(state, i)` for every `i` in `0..<count`, on up to `workers` threads, each with its own `state`
    /// (made once per thread: a digest context, a library handle). `order` is the hand-out order (default
    /// ascending); results are still returned by index.
    public static func map<State, Result>(
        count: Int, order: [Int]? = nil, workers: Int = cores,
        state makeState: @Sendable () throws -> State, _ body: @Sendable (State, Int) throws -> Result
    ) throws -> [Result] {
        guard count > 0 else { return [] }
        let shared = Shared<Result>(count: count)
        let order = order ?? Array(0..<count)
        DispatchQueue.concurrentPerform(iterations: min(max(1, workers), count)) { _ in
            work(shared, order, makeState, body)
        }
        return try shared.results()
    }

    /// One worker: makes its state, then takes items until none are left or one has failed.
    private static func work<State, Result>(
        _ shared: Shared<Result>, _ order: [Int], _ makeState: () throws -> State,
        _ body: (State, Int) throws -> Result
    ) {
        let state: State
        do { state = try makeState() } catch {
            shared.fail(error)
            return
        }
        while let index = shared.take(from: order) {
            do { shared.store(index, try body(state, index)) } catch { shared.fail(error) }
        }
    }

    /// The same for work that waits more than it computes (network requests): `workers` threads of their own, not
    /// capped at the core count as `map`'s are, so that many requests are in flight at once.
    public static func mapWaiting<State, Result>(
        count: Int, workers: Int, state makeState: @Sendable @escaping () throws -> State,
        _ body: @Sendable @escaping (State, Int) throws -> Result
    ) throws -> [Result] {
        guard count > 0 else { return [] }
        let shared = Shared<Result>(count: count)
        let order = Array(0..<count)
        var threads: [pthread_t] = []
        for _ in 0..<min(max(1, workers), count) {
            let work = Work { Self.work(shared, order, makeState, body) }
            var thread = pthread_t()
            let box = Unmanaged.passRetained(work).toOpaque()
            let created = pthread_create(
                &thread, nil,
                { raw in
                    guard let raw else { return nil }
                    let work = Unmanaged<Work>.fromOpaque(raw).takeRetainedValue()
                    work.run()
                    return nil
                }, box)
            if created == 0 {
                threads.append(thread)
            } else {
                Unmanaged<Work>.fromOpaque(box).release()
                work.run()  // no thread to be had: do the work here
            }
        }
        for thread in threads { pthread_join(thread, nil) }
        return try shared.results()
    }

    /// `body(i)` for every `i` in `0..<count` on every core, results by index.
    public static func map<Result>(count: Int, workers: Int = cores, _ body: @Sendable (Int) throws -> Result) throws
        -> [Result]
    {
        try map(count: count, workers: workers, state: { () }, { _, index in try body(index) })
    }

    /// A closure handed to a new thread.
    private final class Work: @unchecked Sendable {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    private final class Shared<Result>: @unchecked Sendable {
        private let mutex = Mutex()
        private var next = 0
        private var slots: [Result?]
        private var failure: Error?

        init(count: Int) { slots = Array(repeating: nil, count: count) }

        func take(from order: [Int]) -> Int? {
            mutex.locked {
                guard failure == nil, next < order.count else { return nil }
                defer { next += 1 }
                return order[next]
            }
        }
        func store(_ index: Int, _ result: Result) { mutex.locked { slots[index] = result } }
        func fail(_ error: Error) { mutex.locked { failure = failure ?? error } }
        func results() throws -> [Result] {
            if let failure { throw failure }
            let results = slots.compactMap { $0 }
            guard results.count == slots.count else { throw Unfinished() }
            return results
        }
    }
}

/// A work item ended with neither a result nor an error (a bug, not bad input).
struct Unfinished: GitMLError {
    var message: String { "internal error: a parallel task finished without a result" }
    var code: String { "internal-error" }
}

/// A pthread mutex, for state shared by worker threads (the lower targets do not link Foundation's NSLock).
public final class Mutex: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    public init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    public func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}
