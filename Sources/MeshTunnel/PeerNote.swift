/// A small message one agent sends to another over their tunnel's control stream, next to the
/// reverse-open requests: `note <topic> <payload>` on one line. The balancer publishes its role
/// reports this way, so no extra connection or port is needed. The receiver learns the sender
/// from the tunnel's verified certificate, never from the payload.
public struct PeerNote: Sendable, Equatable {
    /// What the payload is, e.g. `backend-report`: lowercase letters, digits, '-' and '.'.
    public var topic: String
    /// One line of text (JSON without newlines).
    public var payload: String

    /// A note longer than this on the wire closes the control stream: a broken or hostile peer.
    public static let maxLine = 16 * 1024

    /// `note tunnel-renew ` (empty payload): the acceptor asks the dialer to dial a fresh tunnel,
    /// because what authenticated the one it is sent on changed or nears its end on the acceptor's
    /// side (README, "Certificate rotation"). The dialer ignores it while it renews already.
    static let renewTunnel = PeerNote(topic: "tunnel-renew", payload: "")

    public init(topic: String, payload: String) {
        self.topic = topic
        self.payload = payload
    }

    /// The wire line, or nil when the topic is not a plain name or the payload is not one short line.
    var line: String? {
        guard !self.topic.isEmpty, self.topic.utf8.allSatisfy(Self.isTopicByte), !self.payload.contains("\n") else {
            return nil
        }
        let line = "note \(self.topic) \(self.payload)\n"
        return line.utf8.count <= Self.maxLine ? line : nil
    }

    /// Parses a line (without its newline) written by `line`; nil for any other line.
    init?(line: String) {
        guard line.hasPrefix("note ") else { return nil }
        let rest = line.dropFirst(5)
        guard let space = rest.firstIndex(of: " ") else { return nil }
        let topic = String(rest[..<space])
        guard !topic.isEmpty, topic.utf8.allSatisfy(Self.isTopicByte) else { return nil }
        self.init(topic: topic, payload: String(rest[rest.index(after: space)...]))
    }

    private static func isTopicByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }
}
