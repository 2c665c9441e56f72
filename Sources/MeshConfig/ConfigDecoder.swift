/// Reads each section of a mesh.json tree into the model, enforcing README's mesh.json rules with exact JSON paths.
struct ConfigDecoder {
    let file: String
    let directory: String

    static let topLevelKeys = ["mesh", "tls", "tunnel", "nodes", "services", "forwards", "balancers", "metrics"]

    func decode(_ root: ConfigValue) throws(ConfigError) -> MeshConfiguration {
        guard root.kind == .object else {
            throw root.error("the top level must be a JSON object, got \(root.kind.rawValue)")
        }
        let top = try root.object(knownKeys: Self.topLevelKeys)

        let mesh = try decodeMesh(top.required("mesh"))
        let tls = try decodeTLS(top.required("tls"))
        var tunnel = TunnelSettings.defaults
        if let value = top.optional("tunnel") { tunnel = try decodeTunnel(value) }
        let nodes = try decodeNodes(top.required("nodes"))
        let context = Declared(nodes: nodes.keys.sorted(), services: [:])

        var services: [String: ServiceSettings] = [:]
        if let value = top.optional("services") {
            services = try decodeServices(value, context: context)
            try resolvePatroni(in: &services, servicesValue: value)
        }
        let fullContext = Declared(nodes: context.nodes, services: services)

        var forwards: [ForwardSettings] = []
        if let value = top.optional("forwards") {
            for element in try value.array() { forwards.append(try decodeForward(element, context: fullContext)) }
        }
        var balancers: [String: BalancerSettings] = [:]
        if let value = top.optional("balancers") { balancers = try decodeBalancers(value, context: fullContext) }
        var metrics: Endpoint?
        if let value = top.optional("metrics") { metrics = try value.endpoint(relativeTo: directory) }

        return MeshConfiguration(
            file: file,
            directory: directory,
            mesh: mesh,
            tls: tls,
            tunnel: tunnel,
            nodes: nodes,
            services: services,
            forwards: forwards,
            balancers: balancers,
            metrics: metrics
        )
    }

    /// What the file declares, for checking references to nodes and services.
    private struct Declared {
        var nodes: [String]
        var services: [String: ServiceSettings]

        func unknownNode(_ name: String, orAny: Bool = false) -> String {
            let any = orAny ? " (or \"*\" for every node)" : ""
            return "unknown node \(quoted(name)); declared nodes: \(nodes.joined(separator: ", "))\(any)"
        }

        func unknownService(_ name: String) -> String {
            services.isEmpty
                ? "unknown service \(quoted(name)); no services are declared"
                : "unknown service \(quoted(name)); declared services: \(services.keys.sorted().joined(separator: ", "))"
        }
    }

    // MARK: mesh and tls

    private func decodeMesh(_ value: ConfigValue) throws(ConfigError) -> String {
        let name = try value.string()
        guard MeshNames.isValidTrustDomain(name) else {
            throw value.error(
                "invalid mesh name \(quoted(name)): it is a SPIFFE trust domain, so use only lowercase letters, "
                    + "digits, '.', '-' and '_'"
            )
        }
        return name
    }

    private func decodeTLS(_ value: ConfigValue) throws(ConfigError) -> TLSSettings {
        let object = try value.object(knownKeys: ["ca", "cert", "key", "crl"])
        var crl: String?
        if let value = object.optional("crl") { crl = try tlsPath(value) }
        return TLSSettings(
            ca: try tlsPath(object.required("ca")),
            cert: try tlsPath(object.required("cert")),
            key: try tlsPath(object.required("key")),
            crl: crl
        )
    }

    /// A TLS file path template: `{node}` is the only placeholder, so any other brace is a mistake.
    private func tlsPath(_ value: ConfigValue) throws(ConfigError) -> String {
        let template = try value.nonEmptyString()
        let rest = template.replacingOccurrences(of: "{node}", with: "")
        if rest.contains("{") || rest.contains("}") {
            throw value.error("only {node} may appear in braces, got \(quoted(template))")
        }
        return template
    }

    // MARK: tunnel

    private func decodeTunnel(_ value: ConfigValue) throws(ConfigError) -> TunnelSettings {
        let object = try value.object(knownKeys: [
            "ping_interval", "dead_after", "backoff_min", "backoff_max", "handshake_timeout", "shutdown_grace",
            "max_streams_per_peer", "max_pending_handshakes", "reauthenticate_before",
        ])
        var tunnel = TunnelSettings.defaults
        if let value = object.optional("ping_interval") { tunnel.pingInterval = try value.duration(allowZero: false) }
        if let value = object.optional("dead_after") { tunnel.deadAfter = try atLeastOne(value) }
        if let value = object.optional("backoff_min") { tunnel.backoffMin = try value.duration(allowZero: false) }
        if let value = object.optional("backoff_max") { tunnel.backoffMax = try value.duration(allowZero: false) }
        if let value = object.optional("handshake_timeout") {
            tunnel.handshakeTimeout = try value.duration(allowZero: false)
        }
        // Zero grace is meaningful: stop without waiting for streams to drain.
        if let value = object.optional("shutdown_grace") { tunnel.shutdownGrace = try value.duration(allowZero: true) }
        if let value = object.optional("max_streams_per_peer") { tunnel.maxStreamsPerPeer = try atLeastOne(value) }
        if let value = object.optional("max_pending_handshakes") { tunnel.maxPendingHandshakes = try atLeastOne(value) }
        if let value = object.optional("reauthenticate_before") {
            tunnel.reauthenticateBefore = try value.duration(allowZero: false)
        }

        if tunnel.backoffMax < tunnel.backoffMin {
            let path = object.fields["backoff_max"] != nil ? "backoff_max" : "backoff_min"
            throw ConfigError(
                file: file,
                path: object.path.key(path).text,
                message: "backoff_max (\(DurationText.format(tunnel.backoffMax))) must not be less than "
                    + "backoff_min (\(DurationText.format(tunnel.backoffMin)))"
            )
        }
        return tunnel
    }

    private func atLeastOne(_ value: ConfigValue) throws(ConfigError) -> Int {
        let number = try value.integer()
        guard number >= 1 else { throw value.error("must be at least 1, got \(number)") }
        return number
    }

    // MARK: nodes

    private func decodeNodes(_ value: ConfigValue) throws(ConfigError) -> [String: NodeSettings] {
        let object = try value.freeObject()
        guard !object.fields.isEmpty else { throw value.error("declare at least one node") }
        var nodes: [String: NodeSettings] = [:]
        var owners: [Endpoint: String] = [:]
        for (name, entry) in object.sortedMembers {
            try checkName(name, kind: "node", at: entry)
            let fields = try entry.object(knownKeys: ["address", "control"])
            let addressValue = try fields.required("address")
            let address = try nodeAddress(addressValue)
            if let owner = owners[address] {
                throw addressValue.error("\(address) is already the address of node \(owner); give each node its own")
            }
            owners[address] = name
            var control = NodeSettings.defaultControl
            if let value = fields.optional("control") {
                control = FilePaths.absolute(try value.nonEmptyString(), against: directory)
                try value.checkSocketPathLength(control)
            }
            nodes[name] = NodeSettings(name: name, address: address, control: control)
        }
        return nodes
    }

    /// The mesh listener is a TCP port peers dial; a Unix socket cannot be reached from another machine.
    private func nodeAddress(_ value: ConfigValue) throws(ConfigError) -> Endpoint {
        let text = try value.string()
        switch Endpoint.parseExplained(text, relativeTo: nil) {
        case .success(.tcp(let host, let port)):
            return .tcp(host: host, port: port)
        case .success(.unix):
            throw value.error("expected host:port, got \(quoted(text)); peers reach the mesh listener over TCP")
        case .failure(.malformed):
            throw value.error("expected host:port, got \(quoted(text))")
        case .failure(.portOutOfRange(let port)):
            throw value.error("port \(port) is out of range 1-65535 in \(quoted(text))")
        }
    }

    private func checkName(_ name: String, kind: String, at value: ConfigValue) throws(ConfigError) {
        guard MeshNames.isValidName(name) else {
            throw value.error("invalid \(kind) name \(quoted(name)): \(MeshNames.nameRule)")
        }
    }

    // MARK: services

    private func decodeServices(_ value: ConfigValue, context: Declared) throws(ConfigError) -> [String: ServiceSettings] {
        var services: [String: ServiceSettings] = [:]
        for (name, entry) in try value.freeObject().sortedMembers {
            try checkName(name, kind: "service", at: entry)
            let fields = try entry.object(knownKeys: ["on", "allow", "postgres", "same_address", "preconnect"])

            let onValue = try fields.required("on")
            let onObject = try onValue.freeObject()
            guard !onObject.fields.isEmpty else { throw onValue.error("name at least one node that serves the service") }
            var on: [String: Endpoint] = [:]
            for (node, target) in onObject.sortedMembers {
                guard context.nodes.contains(node) else { throw target.error(context.unknownNode(node)) }
                on[node] = try target.endpoint(relativeTo: directory)
            }

            var allow = AllowList.nodes([])
            if let value = fields.optional("allow") { allow = try decodeAllow(value, context: context) }
            var postgres: PostgresSettings?
            if let value = fields.optional("postgres") {
                postgres = try decodePostgres(value)
                // The probe's client, libpq, finds a server's Unix socket by directory and port.
                for (node, target) in onObject.sortedMembers {
                    guard case .unix(let path) = on[node], PostgresSocketPath(path) == nil else { continue }
                    throw target.error(
                        "a PostgreSQL server's Unix socket is named .s.PGSQL.<port> (e.g. unix:/var/run/postgresql/.s.PGSQL.5432), got \(quoted(path))"
                    )
                }
            }
            var sameAddress = false
            if let value = fields.optional("same_address") {
                sameAddress = try value.bool()
                if sameAddress { try checkSameAddressTargets(onObject, on) }
            }
            var preconnect = 0
            if let value = fields.optional("preconnect") {
                preconnect = try value.integer()
                guard (0...ServiceSettings.maximumPreconnect).contains(preconnect) else {
                    throw value.error(
                        "must be between 0 and \(ServiceSettings.maximumPreconnect) (connections kept open to the target ahead of any stream), got \(preconnect)"
                    )
                }
            }
            services[name] = ServiceSettings(
                name: name,
                on: on,
                allow: allow,
                postgres: postgres,
                sameAddress: sameAddress,
                preconnect: preconnect
            )
        }
        return services
    }

    /// Other nodes will listen on each target, in plaintext: so each must be a TCP address on
    /// loopback (127.0.0.0/8, reachable only from the node itself, as `autossh -L` was) and no two
    /// nodes may share one, or a third node could not listen on both.
    private func checkSameAddressTargets(_ onObject: ConfigObject, _ on: [String: Endpoint]) throws(ConfigError) {
        var owners: [Endpoint: String] = [:]
        for (node, target) in onObject.sortedMembers {
            guard case .tcp(let host, _) = on[node], SameAddressHost.isLoopbackIPv4(host) else {
                throw target.error(
                    "a same_address service is reached at the same address from every allowed node, where meshd listens on it "
                        + "in plaintext: use a loopback address of the node's own, such as 127.0.1.N:port, got \(quoted(on[node]!.description))"
                )
            }
            if let earlier = owners[on[node]!] {
                throw target.error(
                    "\(on[node]!) is also node \(earlier)'s address for this service; with same_address every node needs an "
                        + "address of its own (e.g. 127.0.1.N with N the node's number)"
                )
            }
            owners[on[node]!] = node
        }
    }

    private func decodeAllow(_ value: ConfigValue, context: Declared) throws(ConfigError) -> AllowList {
        let entries = try value.array()
        var names: Set<String> = []
        var sawAny = false
        for entry in entries {
            let name = try entry.string()
            if name == "*" {
                sawAny = true
            } else if !context.nodes.contains(name) {
                throw entry.error(context.unknownNode(name, orAny: true))
            } else {
                names.insert(name)
            }
            if sawAny && !names.isEmpty {
                throw entry.error("\"*\" already allows every node; list either \"*\" or node names, not both")
            }
        }
        return sawAny ? .anyNode : .nodes(names)
    }

    private func decodePostgres(_ value: ConfigValue) throws(ConfigError) -> PostgresSettings {
        let object = try value.object(knownKeys: ["monitor_user", "database", "password_file", "probe_interval", "patroni"])
        var settings = PostgresSettings()
        if let value = object.optional("monitor_user") { settings.monitorUser = try value.nonEmptyString() }
        if let value = object.optional("database") { settings.database = try value.nonEmptyString() }
        if let value = object.optional("password_file") {
            settings.passwordFile = FilePaths.absolute(try value.nonEmptyString(), against: directory)
        }
        if let value = object.optional("probe_interval") { settings.probeInterval = try value.duration(allowZero: false) }
        if let value = object.optional("patroni") {
            let name = try value.nonEmptyString()
            try checkName(name, kind: "service", at: value)
            // The addresses come from the named service, which may be declared after this one.
            settings.patroni = PatroniSettings(service: name, api: [:])
        }
        return settings
    }

    /// Fills each `postgres.patroni` with the named service's targets, once every service is read.
    /// Patroni's REST API listens on TCP only, and every node that serves the PostgreSQL service
    /// runs a Patroni to ask.
    private func resolvePatroni(in services: inout [String: ServiceSettings], servicesValue: ConfigValue) throws(ConfigError) {
        let members = try servicesValue.freeObject()
        for name in services.keys.sorted() {
            guard let service = services[name], let patroni = service.postgres?.patroni else { continue }
            let key = try members.required(name).freeObject().required("postgres").freeObject().required("patroni")
            guard patroni.service != name else {
                throw key.error(
                    "names this service itself; name the service whose \"on\" gives each node's Patroni REST API "
                        + "(restapi.listen, e.g. \"patroni-api\": {\"on\": {\"db1\": \"127.0.1.1:8008\"}})"
                )
            }
            guard let api = services[patroni.service] else {
                throw key.error(
                    "unknown service \(quoted(patroni.service)); declare it with each node's Patroni REST API address "
                        + "in \"on\" (e.g. \"\(patroni.service)\": {\"on\": {\"db1\": \"127.0.1.1:8008\"}})"
                )
            }
            let apiOn = try members.required(patroni.service).freeObject().required("on").freeObject()
            for node in service.on.keys.sorted() {
                guard let target = api.on[node] else {
                    throw apiOn.error(
                        "no address for node \(node), which serves \(quoted(name)) with \"patroni\": "
                            + "\(quoted(patroni.service)); add \"\(node)\": \"HOST:PORT\" (its Patroni REST API)"
                    )
                }
                guard case .tcp = target else {
                    throw try apiOn.required(node).error(
                        "Patroni's REST API listens on TCP; expected host:port (restapi.listen), got \(quoted("\(target)"))"
                    )
                }
            }
            services[name]?.postgres?.patroni?.api = api.on.filter { service.on[$0.key] != nil }
        }
    }

    // MARK: forwards

    private func decodeForward(_ value: ConfigValue, context: Declared) throws(ConfigError) -> ForwardSettings {
        let object = try value.object(knownKeys: ["on", "listen", "to"])
        let onValue = try object.required("on")
        let on = try onValue.string()
        guard context.nodes.contains(on) else { throw onValue.error(context.unknownNode(on)) }
        let listen = try object.required("listen").endpoint(relativeTo: directory)

        let toValue = try object.required("to")
        let to = try toValue.string()
        let parts = to.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw toValue.error("expected \"service@node\", got \(quoted(to))")
        }
        let serviceName = String(parts[0])
        let node = String(parts[1])
        guard let service = context.services[serviceName] else { throw toValue.error(context.unknownService(serviceName)) }
        guard context.nodes.contains(node) else { throw toValue.error(context.unknownNode(node)) }
        guard service.on[node] != nil else {
            throw toValue.error(
                "service \(quoted(serviceName)) is not served on node \(node); it is served on "
                    + service.on.keys.sorted().joined(separator: ", ")
            )
        }
        return ForwardSettings(on: on, listen: listen, service: serviceName, node: node)
    }

    // MARK: balancers

    private func decodeBalancers(_ value: ConfigValue, context: Declared) throws(ConfigError) -> [String: BalancerSettings] {
        var balancers: [String: BalancerSettings] = [:]
        for (name, entry) in try value.freeObject().sortedMembers {
            try checkName(name, kind: "balancer", at: entry)
            let object = try entry.object(knownKeys: ["service", "on", "max_lag", "ro_fallback", "tls"])

            let serviceValue = try object.required("service")
            let serviceName = try serviceValue.string()
            guard let service = context.services[serviceName] else {
                throw serviceValue.error(context.unknownService(serviceName))
            }
            guard service.postgres != nil else {
                throw serviceValue.error(
                    "service \(quoted(serviceName)) has no \"postgres\" block; a balancer needs one to learn "
                        + "which node is the primary"
                )
            }

            let onValue = try object.required("on")
            let onObject = try onValue.freeObject()
            guard !onObject.fields.isEmpty else { throw onValue.error("name at least one node to listen on") }
            var on: [String: BalancerListeners] = [:]
            for (node, listenersValue) in onObject.sortedMembers {
                guard context.nodes.contains(node) else { throw listenersValue.error(context.unknownNode(node)) }
                let listeners = try listenersValue.object(knownKeys: ["rw", "ro"])
                var settings = BalancerListeners()
                if let value = listeners.optional("rw") { settings.rw = try value.endpoint(relativeTo: directory) }
                if let value = listeners.optional("ro") { settings.ro = try value.endpoint(relativeTo: directory) }
                guard settings.rw != nil || settings.ro != nil else {
                    throw listenersValue.error("needs at least one listener, \"rw\" or \"ro\"")
                }
                on[node] = settings
            }

            var balancer = BalancerSettings(name: name, service: serviceName, on: on)
            // Zero lag is meaningful: read only from standbys that are fully caught up.
            if let value = object.optional("max_lag") { balancer.maxLag = try value.duration(allowZero: true) }
            if let value = object.optional("ro_fallback") {
                let text = try value.string()
                guard let fallback = ReadFallback(rawValue: text) else {
                    throw value.error("expected \"primary\" or \"none\", got \(quoted(text))")
                }
                balancer.roFallback = fallback
            }
            if let value = object.optional("tls") { balancer.tls = try decodeBalancerTLS(value) }
            balancers[name] = balancer
        }
        return balancers
    }

    /// A balancer's server certificate and key. `ca` and `crl` get their own answer rather than a
    /// spelling suggestion: they are meaningful in the top-level block, and someone copying it over
    /// may expect client certificates to be checked here, which they are not.
    private func decodeBalancerTLS(_ value: ConfigValue) throws(ConfigError) -> BalancerTLSSettings {
        let fields = try value.freeObject()
        for key in ["ca", "crl"] where fields.fields[key] != nil {
            throw ConfigError(
                file: file,
                path: fields.path.key(key).text,
                message: "a balancer does not verify client certificates (PostgreSQL authenticates clients end to "
                    + "end, through the balancer), so its tls block takes only \"cert\" and \"key\"; remove \"\(key)\""
            )
        }
        let object = try value.object(knownKeys: ["cert", "key"])
        return BalancerTLSSettings(cert: try tlsPath(object.required("cert")), key: try tlsPath(object.required("key")))
    }
}
