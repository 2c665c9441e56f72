/// A reload plan for a person (`meshctl reload --dry-run`, `meshctl check --against`): one block
/// per kind — tunnels, listeners, services, balancers — each change on its own line, or
/// "no change" when the new config changes nothing on this node.
public enum ConfigChangesText {
    public static func render(_ changes: [ConfigChange], style: TextStyle) -> String {
        guard !changes.isEmpty else { return "no change\n" }
        var text = ""
        for kind in ConfigChange.Kind.allCases {
            let lines = changes.filter { $0.kind == kind }
            guard !lines.isEmpty else { continue }
            text += style.paint(self.heading(kind), .bold) + "\n"
            let width = lines.map(\.action.rawValue.count).max() ?? 0
            for change in lines {
                let action = change.action.rawValue.padding(toLength: width, withPad: " ", startingAt: 0)
                let detail = change.detail.map { "  \($0)" } ?? ""
                text += "  " + style.paint(action, self.paint(change.action)) + "  \(change.name)\(detail)\n"
            }
        }
        return text
    }

    private static func heading(_ kind: ConfigChange.Kind) -> String {
        switch kind {
        case .tunnel: "tunnels"
        case .listener: "listeners"
        case .service: "services"
        case .balancer: "balancers"
        }
    }

    /// Red for what goes away (streams are cut), yellow for what is rebuilt, green for what comes.
    private static func paint(_ action: ConfigChange.Action) -> TextStyle.Paint {
        switch action {
        case .added, .opened: .good
        case .closed, .removed: .bad
        case .redialed, .changed: .warning
        }
    }
}
