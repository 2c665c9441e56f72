/// `meshctl services` for a person: what this node serves to peers and which forwards it runs.
public enum ServicesText {
    public static let headers = ["SERVICE", "ROLE", "LOCAL ADDRESS", "ACCESS"]

    public static func render(_ services: [ServiceInfo], style: TextStyle) -> String {
        guard !services.isEmpty else { return "this node serves no services and runs no forwards\n" }
        var table = TextTable(headers: self.headers)
        for service in services {
            switch service.role {
            case .served:
                table.append([
                    .init(service.name), .init("served"), .init(service.target ?? "-"),
                    .init(self.allowed(service.allow ?? [])),
                ])
            case .forward:
                table.append([
                    .init(service.name), .init("forward"), .init(service.listen ?? "-"),
                    .init("to \(service.to ?? "-")"),
                ])
            }
        }
        return table.render(style)
    }

    private static func allowed(_ allow: [String]) -> String {
        if allow == ["*"] { return "from every node" }
        if allow.isEmpty { return "from no node (no \"allow\")" }
        return "from " + allow.joined(separator: ", ")
    }
}
