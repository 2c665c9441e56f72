/// Constants of the PostgreSQL frontend/backend protocol that the balancer reads at the front door.
public enum PostgresProtocol {
    /// PostgreSQL's MAX_STARTUP_PACKET_LENGTH: the server refuses longer startup packets, so do we.
    public static let maxStartupPacketLength = 10_000

    /// Protocol 3.2 lets a secret key be up to 256 bytes (servers send 32, middleware may send more).
    public static let maxCancelKeyLength = 256

    /// Request codes sent in place of a protocol version in the first packet.
    public static let sslRequestCode: UInt32 = 80_877_103
    public static let gssEncRequestCode: UInt32 = 80_877_104
    public static let cancelRequestCode: UInt32 = 80_877_102
}
