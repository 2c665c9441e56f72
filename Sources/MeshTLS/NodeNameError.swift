/// Why this machine's node name could not be settled, in words that say what to do.
public struct NodeNameError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// The operator named a node mesh.json does not declare.
        case undeclared
        /// No name was given and `tls.cert` has `{node}`, so the certificate cannot say it: a
        /// machine not yet told which node it is (the socket generator then writes only its drop-in that keeps
        /// meshd.service from starting, `UnnamedNodeDropIn`).
        case unnamed
        /// The certificate that should name the node is missing, unreadable, or names none.
        case certificate
    }

    public var kind: Kind
    public var message: String
    public var description: String { self.message }
}
