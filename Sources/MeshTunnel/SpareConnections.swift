import Logging
import MeshConfig
import NIOCore

/// Connections to this node's service targets opened before any stream asks for them (a service's
/// `preconnect`), kept per event loop so that a stream served on that loop finds its target
/// already connected. PostgreSQL's postmaster forks a backend for every connection it accepts,
/// before the client says a word; with a spare, that fork has happened by the time the client's
/// StartupMessage arrives, and a new connection through the mesh waits only for the backend's
/// start-up proper. Each client still gets a connection of its own that nobody used before:
/// nothing is pooled across clients, so no session state can leak (unlike a pooler's).
///
/// A target's spares are kept while its streams use them: the first stream that asks starts them,
/// each is replaced when taken or when it has waited `Timing.maximumAge` (servers close a
/// connection that says nothing: PostgreSQL after `authentication_timeout`, 60 s by default), and
/// one the server closed is replaced at once; a target nobody asked for in
/// `Timing.keepWarm` loses them. Connections that fail back off; a stream never waits for a spare,
/// it connects on demand as before. Touched only on `loop`.
final class SpareConnections: @unchecked Sendable {
    struct Timing: Sendable {
        /// How long a spare waits for a stream before it is replaced.
        var maximumAge = TimeAmount.seconds(30)
        /// How long after a target was last asked for its spares are still replaced.
        var keepWarm = TimeAmount.seconds(120)
        /// A spare that ends younger than this counts as a failed connection (the target accepts
        /// and closes at once: backing off, not reconnecting in a loop).
        var diedYoung = TimeAmount.seconds(1)
        var backoff = Backoff(base: .milliseconds(250), max: .seconds(30))
    }

    private struct Spare {
        let channel: Channel
        let socket: SpareSocket
        let born: NIODeadline
        let expiry: Scheduled<Void>

        /// Closes it without telling the pool (which closes it): the pool is mid-change.
        func close() {
            self.expiry.cancel()
            self.socket.close()
        }
    }

    /// One target's spares. `ready` is oldest first: streams take the spare nearest its age limit.
    private struct Pool {
        var wanted: Int
        var lastAsked: NIODeadline
        var ready: [Spare] = []
        var connecting = 0
        var failures = 0
        var retry: Scheduled<Void>?
        /// The target sent bytes before any client did: no spares for it.
        var disabled = false

        /// Closes the ready spares beyond `wanted` (a reload or a stream lowered it).
        mutating func closeExcess() {
            while self.ready.count > self.wanted { self.ready.removeLast().close() }
        }
    }

    let loop: EventLoop
    private let timing: Timing
    private let logger: Logger
    private var pools: [Endpoint: Pool] = [:]
    private var stopped = false

    init(loop: EventLoop, timing: Timing = Timing(), logger: Logger) {
        self.loop = loop
        self.timing = timing
        self.logger = logger
    }

    /// A connection to `target` opened ahead of this stream, with `handler` in place of the
    /// spare's; nil when none is ready (the caller connects as usual). Either way, from now on
    /// `target.preconnect` spares are kept for it.
    func take(_ target: LocalTarget, handing handler: ChannelHandler) -> Channel? {
        self.loop.preconditionInEventLoop()
        guard !self.stopped, target.preconnect > 0 else {
            self.drop(target.endpoint)
            return nil
        }
        var pool = self.pools[target.endpoint] ?? Pool(wanted: target.preconnect, lastAsked: .now())
        pool.wanted = target.preconnect
        pool.lastAsked = .now()
        var taken: Channel?
        while taken == nil, !pool.ready.isEmpty {
            let spare = pool.ready.removeFirst()
            spare.expiry.cancel()
            if spare.socket.claim(for: handler) {
                taken = spare.channel
                pool.failures = 0
            } else {
                spare.close()
            }
        }
        pool.closeExcess()
        self.pools[target.endpoint] = pool
        self.refill(target.endpoint)
        return taken
    }

    /// Keeps spares only for these targets (after a reload): others' are closed now.
    func keep(only targets: Set<LocalTarget>) {
        self.loop.preconditionInEventLoop()
        let wanted = Dictionary(targets.map { ($0.endpoint, $0.preconnect) }, uniquingKeysWith: max)
        for (endpoint, var pool) in self.pools {
            guard let count = wanted[endpoint], count > 0 else {
                self.drop(endpoint)
                continue
            }
            pool.wanted = count
            pool.closeExcess()
            self.pools[endpoint] = pool
        }
    }

    /// Closes every spare; none are opened after this.
    func stop() {
        self.loop.preconditionInEventLoop()
        self.stopped = true
        for endpoint in Array(self.pools.keys) { self.drop(endpoint) }
    }

    /// How many spares to `endpoint` are open and waiting (for tests).
    func readyCount(_ endpoint: Endpoint) -> Int {
        self.loop.preconditionInEventLoop()
        return self.pools[endpoint]?.ready.count ?? 0
    }

    // MARK: Keeping the pools filled

    private func drop(_ endpoint: Endpoint) {
        guard let pool = self.pools.removeValue(forKey: endpoint) else { return }
        pool.retry?.cancel()
        for spare in pool.ready { spare.close() }
    }

    private func isWarm(_ pool: Pool) -> Bool {
        NIODeadline.now() - pool.lastAsked < self.timing.keepWarm
    }

    private func refill(_ endpoint: Endpoint) {
        guard !self.stopped, var pool = self.pools[endpoint], !pool.disabled, pool.retry == nil else { return }
        guard self.isWarm(pool) else {
            if pool.ready.isEmpty, pool.connecting == 0 { self.pools.removeValue(forKey: endpoint) }
            return
        }
        let missing = pool.wanted - pool.ready.count - pool.connecting
        guard missing > 0 else { return }
        pool.connecting += missing
        self.pools[endpoint] = pool
        for _ in 0..<missing { self.open(endpoint) }
    }

    private func open(_ endpoint: Endpoint) {
        let socket = SpareSocket { [weak self] socket, ending in self?.ended(socket, ending, endpoint) }
        LocalConnector.connect(to: endpoint, on: self.loop) { channel in
            try channel.pipeline.syncOperations.addHandler(socket)
        }.whenComplete { result in
            self.opened(endpoint, socket, result)
        }
    }

    private func opened(_ endpoint: Endpoint, _ socket: SpareSocket, _ result: Result<Channel, Error>) {
        guard var pool = self.pools[endpoint] else {
            if case .success = result { socket.close() }
            return
        }
        pool.connecting -= 1
        switch result {
        case .success(let channel) where socket.isWaiting:
            if self.stopped || pool.disabled || pool.ready.count >= pool.wanted {
                socket.close()
                break
            }
            let expiry = self.loop.scheduleTask(in: self.timing.maximumAge) { [weak self] () -> Void in self?.expired(endpoint, socket) }
            pool.ready.append(Spare(channel: channel, socket: socket, born: .now(), expiry: expiry))
        case .success(let channel):
            channel.close(promise: nil)  // ended before it was ready
            if !pool.disabled { self.failed(&pool, endpoint, reason: "it closed at once") }
        case .failure(let error):
            self.failed(&pool, endpoint, reason: "\(error)")
        }
        self.pools[endpoint] = pool
    }

    /// Backs off before the next spare; the first failure of a run (until a spare lives) is logged.
    private func failed(_ pool: inout Pool, _ endpoint: Endpoint, reason: String) {
        pool.failures += 1
        if pool.failures == 1 {
            self.logger.warning(
                "preconnect: cannot keep a spare connection to \(endpoint) (\(reason)); streams connect to it on demand meanwhile, retrying with backoff"
            )
        }
        guard pool.retry == nil else { return }
        pool.retry = self.loop.scheduleTask(in: self.timing.backoff.delay(attempt: pool.failures)) { [weak self] in
            guard let self, self.pools[endpoint] != nil else { return }
            self.pools[endpoint]!.retry = nil
            self.refill(endpoint)
        }
    }

    private func ended(_ socket: SpareSocket, _ ending: SpareSocket.Ending, _ endpoint: Endpoint) {
        guard var pool = self.pools[endpoint] else { return }
        // Not ready yet: still connecting (`opened` sees it ended), or already taken out.
        let spare = pool.ready.firstIndex(where: { $0.socket === socket }).map { pool.ready.remove(at: $0) }
        spare?.expiry.cancel()
        switch ending {
        case .spokeFirst:
            pool.disabled = true
            for other in pool.ready { other.close() }
            pool.ready.removeAll()
            self.logger.warning(
                "preconnect: \(endpoint) sent bytes before any client did; spare connections need a protocol where the client speaks first, so this node keeps none to it until meshd restarts (remove the service's \"preconnect\")"
            )
        case .closed:
            guard let spare else { return }
            if NIODeadline.now() - spare.born < self.timing.diedYoung {
                self.failed(&pool, endpoint, reason: "it closed at once")
            } else {
                pool.failures = 0  // it lived: the server ended it (a restart, an idle limit)
            }
        }
        self.pools[endpoint] = pool
        self.refill(endpoint)
    }

    private func expired(_ endpoint: Endpoint, _ socket: SpareSocket) {
        guard var pool = self.pools[endpoint], let index = pool.ready.firstIndex(where: { $0.socket === socket }) else { return }
        pool.ready.remove(at: index).close()
        pool.failures = 0
        self.pools[endpoint] = pool
        self.refill(endpoint)
    }
}
