import Foundation

/// The validity window of the certificate that expires first among those that authenticate a
/// tunnel (leaves and CA certificates of both chains): when the tunnel must be re-authenticated by.
public struct CertificateValidity: Sendable, Equatable {
    public var notBefore: Date
    public var notAfter: Date

    public init(notBefore: Date, notAfter: Date) {
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    /// The window that ends first; on a tie, the first one.
    public func earlier(_ other: CertificateValidity?) -> CertificateValidity {
        guard let other, other.notAfter < self.notAfter else { return self }
        return other
    }

    /// The certificate's lifetime (zero for a malformed window that ends before it starts).
    public var lifetime: TimeInterval { max(0, self.notAfter.timeIntervalSince(self.notBefore)) }
}
