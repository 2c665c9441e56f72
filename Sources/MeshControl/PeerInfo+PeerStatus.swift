import MeshControlModel
import MeshTunnel

extension PeerInfo {
    /// The wire form of a peer table entry; `state` is the tunnel's state name (`PeerStatus.State`).
    public init(_ status: PeerStatus) {
        self.init(
            name: status.name,
            address: status.address,
            dialer: status.dialer,
            state: status.state.rawValue,
            since: status.since,
            lastError: status.lastError,
            rttSeconds: status.rttSeconds,
            streamsActive: status.streamsActive,
            streamsTotal: status.streamsTotal,
            bytesSent: status.bytesSent,
            bytesReceived: status.bytesReceived,
            reconnects: status.reconnects,
            certificateNotAfter: status.certificateNotAfter,
            authenticatedAt: status.authenticatedAt,
            credentialsNotAfter: status.credentialsNotAfter,
            reauthenticateAt: status.reauthenticateAt,
            drainingTunnels: status.drainingTunnels,
            reauthentications: status.reauthentications,
            reauthenticationError: status.reauthenticationError
        )
    }
}
