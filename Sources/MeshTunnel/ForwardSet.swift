import Logging
import MeshConfig
import NIOConcurrencyHelpers
import NIOCore

/// The open forward listeners of one node, by `ForwardKey`. Binding and registering are separate
/// steps so that a reload can open new listeners first and register them only once it commits.
/// Safe to use from any thread.
final class ForwardSet: Sendable {
    private let listeners = NIOLockedValueBox<[ForwardKey: Channel]>([:])
    private let group: EventLoopGroup
    private let inherited: [String: CInt]
    private let events: TunnelEvents
    private let logger: Logger

    /// - inherited: listening sockets systemd passed, by name (a forward's `listenerName`).
    init(group: EventLoopGroup, inherited: [String: CInt], events: TunnelEvents, logger: Logger) {
        self.group = group
        self.inherited = inherited
        self.events = events
        self.logger = logger
    }

    var keys: Set<ForwardKey> { self.listeners.withLockedValue { Set($0.keys) } }

    /// Opens `forward`'s listener, carrying its connections over `link`, and registers it.
    func open(_ forward: ForwardSettings, link: PeerLink, waitLimit: TimeAmount) async throws {
        let channel = try await self.bind(forward, link: link, waitLimit: waitLimit)
        self.register(channel, for: ForwardKey(forward))
    }

    /// Opens `forward`'s listener without registering it. Throws `ListenError` naming the address.
    /// - waitLimit: how long a connection waits for a tunnel that is still coming up.
    func bind(_ forward: ForwardSettings, link: PeerLink, waitLimit: TimeAmount) async throws -> Channel {
        do {
            let socket = ListenSocket.choose(name: forward.listenerName, endpoint: forward.listen, inherited: self.inherited)
            let channel = try await ForwardListener(forward: forward, events: self.events, waitLimit: waitLimit, logger: self.logger)
                .bind(group: self.group, socket: socket, link: link).get()
            // One line per listener, at start and reload: with same_address a node gets listeners
            // no `forwards` entry names, and an operator should see each one and where it leads.
            self.logger.info("forward \(forward.listenerName) listening on \(forward.listen) for \(forward.service)@\(forward.node)")
            return channel
        } catch {
            throw ListenError(what: "forward \(forward.listenerName)", endpoint: forward.listen, underlying: error)
        }
    }

    func register(_ channel: Channel, for key: ForwardKey) {
        self.listeners.withLockedValue { $0[key] = channel }
    }

    /// Closes and forgets one listener; false when there was none.
    func close(_ key: ForwardKey) async -> Bool {
        guard let channel = self.listeners.withLockedValue({ $0.removeValue(forKey: key) }) else { return false }
        try? await channel.close()
        return true
    }

    /// Closes every listener (connections already accepted go on).
    func closeAll() async {
        let channels = self.listeners.withLockedValue { listeners in
            defer { listeners.removeAll() }
            return Array(listeners.values)
        }
        for channel in channels { try? await channel.close() }
    }
}
