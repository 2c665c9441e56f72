import Foundation

/// A loaded and validated `mesh.json`: the same file on every node, describing the whole mesh.
public struct MeshConfiguration: Sendable, Equatable {
    /// The path as given to `load(path:)` (or the name given to `parse`), used in error messages.
    public var file: String
    /// Absolute directory of the file; relative paths in it resolve against this.
    public var directory: String
    /// The mesh name, a SPIFFE trust domain.
    public var mesh: String
    public var tls: TLSSettings
    public var tunnel: TunnelSettings
    public var nodes: [String: NodeSettings]
    public var services: [String: ServiceSettings]
    public var forwards: [ForwardSettings]
    public var balancers: [String: BalancerSettings]
    /// Optional top-level "metrics" listener, e.g. "127.0.0.1:9810".
    public var metrics: Endpoint?

    public init(
        file: String,
        directory: String,
        mesh: String,
        tls: TLSSettings,
        tunnel: TunnelSettings = .defaults,
        nodes: [String: NodeSettings],
        services: [String: ServiceSettings] = [:],
        forwards: [ForwardSettings] = [],
        balancers: [String: BalancerSettings] = [:],
        metrics: Endpoint? = nil
    ) {
        self.file = file
        self.directory = directory
        self.mesh = mesh
        self.tls = tls
        self.tunnel = tunnel
        self.nodes = nodes
        self.services = services
        self.forwards = forwards
        self.balancers = balancers
        self.metrics = metrics
    }

    /// Files larger than this are refused rather than read: a config is a few kilobytes.
    static let maxFileSize = 16 << 20

    /// Reads and validates the file at `path`. Errors name `path` exactly as given.
    public static func load(path: String) throws(ConfigError) -> MeshConfiguration {
        let absolute = FilePaths.absolute(path, against: FileManager.default.currentDirectoryPath)
        let directory = FilePaths.normalized(absolute + "/..")
        let data: Data
        switch readFile(path) {
        case .success(let contents): data = contents
        case .failure(let reason): throw ConfigError(file: path, path: "", message: reason.text)
        }
        return try parse(data, file: path, directory: directory)
    }

    /// Validates `data` as a mesh.json. `file` names it in errors; `directory` (absolute) anchors relative paths.
    public static func parse(_ data: Data, file: String, directory: String) throws(ConfigError) -> MeshConfiguration {
        let root = try ConfigDocument.parse(data, file: file)
        let decoder = ConfigDecoder(file: file, directory: FilePaths.normalized(directory))
        let configuration = try decoder.decode(root)
        try ListenerConflicts.check(configuration)
        return configuration
    }

    /// The TLS files of `node`: `{node}` replaced by its name, every path absolute.
    public func tlsFiles(for node: String) -> TLSFiles {
        func resolve(_ template: String) -> String {
            FilePaths.absolute(template.replacingOccurrences(of: "{node}", with: node), against: directory)
        }
        return TLSFiles(ca: resolve(tls.ca), cert: resolve(tls.cert), key: resolve(tls.key), crl: tls.crl.map(resolve))
    }

    /// Node names in ascending order (the lower name of a pair dials the tunnel).
    public var sortedNodeNames: [String] { nodes.keys.sorted() }

    /// Services served on `node`, by name.
    public func services(on node: String) -> [ServiceSettings] {
        services.values.filter { $0.on[node] != nil }.sorted { $0.name < $1.name }
    }

    /// Forwards that listen on `node`: those of `forwards` in file order, then those `same_address`
    /// services put there (by service name, then serving node).
    public func forwards(on node: String) -> [ForwardSettings] {
        forwards.filter { $0.on == node } + sameAddressForwards(on: node)
    }

    /// The listeners `same_address` services put on `node`, by service name, then serving node.
    public func sameAddressForwards(on node: String) -> [ForwardSettings] {
        services.values.sorted { $0.name < $1.name }.flatMap { $0.sameAddressForwards(on: node) }
    }

    /// Balancers with listeners on `node`, by name.
    public func balancers(on node: String) -> [BalancerSettings] {
        balancers.values.filter { $0.on[node] != nil }.sorted { $0.name < $1.name }
    }

    /// The identity `node`'s certificate must carry in this mesh.
    public func identity(of node: String) -> MeshIdentity {
        MeshIdentity(mesh: mesh, node: node)
    }

    private struct ReadFailure: Error {
        var text: String
    }

    /// The whole file, or why it cannot be read (the system's own words, e.g. "No such file or directory").
    private static func readFile(_ path: String) -> Result<Data, ReadFailure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadFailure(text: "cannot read the configuration file: \(systemError())")) }
        defer { close(fd) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while data.count <= maxFileSize {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure(text: "cannot read the configuration file: \(systemError())"))
            }
            if count == 0 { return .success(data) }
            data.append(contentsOf: buffer[0..<count])
        }
        return .failure(
            ReadFailure(text: "the file is larger than \(maxFileSize >> 20) MiB; a mesh.json is a few kilobytes")
        )
    }

    private static func systemError() -> String {
        String(cString: strerror(errno))
    }
}
