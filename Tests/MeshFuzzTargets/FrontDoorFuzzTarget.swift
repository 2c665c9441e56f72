import Logging
import MeshBalancer
import MeshTLS
import NIOCore

/// Feeds arbitrary client bytes to a balancer's `FrontDoorHandler` in an EmbeddedChannel: first
/// packets (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest), their framing across reads,
/// and with TLS on, the hand-over to the TLS handler and the front door behind it.
///
/// The first input byte (see `FuzzInput`) picks: bit 0 the balancer has a TLS certificate, bit 1
/// the router refuses the session, bit 2 the bridge fails, bit 3 the client ends its input after
/// the bytes. `route`, `bridge` and `cancel` only record that they were called: the bridge adds
/// nothing to the pipeline, so whatever the front door passes on reaches the channel's end.
public enum FrontDoorFuzzTarget {
    /// What the front door did with one input.
    public struct Outcome: Sendable, Equatable {
        public var transcript: ChannelTranscript
        /// A StartupMessage reached the router.
        public var routed: Bool
        /// A CancelRequest reached the cancel closure.
        public var cancelled: Bool
    }

    /// Written from the handler's closures, which run on the EmbeddedChannel's loop, the only thread here.
    private final class Calls: @unchecked Sendable {
        var routed = false
        var cancelled = false
    }

    private struct BridgeFailure: Error {}

    private static let logger = Logger(label: "fuzz.frontdoor", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Nil for an empty input.
    public static func run(_ bytes: UnsafeRawBufferPointer) -> Outcome? {
        guard let input = FuzzInput(bytes) else { return nil }
        let calls = Calls()
        let refuse = input.option(1)
        let bridgeFails = input.option(2)
        let handler = FrontDoorHandler(
            route: { _ in
                calls.routed = true
                return refuse
                    ? .failure(ErrorResponse(code: .connectionFailure, message: "fuzz: refused"))
                    : .success((service: "postgres", node: "db1"))
            },
            bridge: { _, _ in if bridgeFails { throw BridgeFailure() } },
            cancel: { _ in calls.cancelled = true },
            tls: input.option(0) ? FuzzPKI.shared.anyClientServer : nil,
            logger: logger)
        do {
            let peer = try EmbeddedPeer(handlers: [handler])
            let transcript = peer.play(input, endInput: input.option(3))
            return Outcome(transcript: transcript, routed: calls.routed, cancelled: calls.cancelled)
        } catch {
            fatalError("fuzz: cannot set up the EmbeddedChannel: \(error)")
        }
    }
}
