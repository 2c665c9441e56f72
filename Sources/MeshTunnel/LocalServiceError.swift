/// A route to this node itself for a service mesh.json does not serve here.
public struct LocalServiceError: Error, CustomStringConvertible {
    public var service: String
    public var node: String
    public var description: String {
        "service \"\(self.service)\" is not served on \(self.node) itself (no services.\(self.service).on.\(self.node) in mesh.json)"
    }
}
