/// A reload plan for a person (`meshctl reload --dry-run`, `meshctl check --against`): one block
/// per kind — tunnels, listeners, services, balancers — each change on its own line, or
/// "no change" when the new config changes nothing on this node.
public enum ConfigChangesText {
    public static func render(_ changes: [ConfigChange], style: TextStyle) -> String {
        guard !changes.isEmpty else { return "no change\n" }
        // One column width across the groups, so the blocks read as one table.
        let actionWidth = changes.map(\.action.rawValue.count).max() ?? 0
        let nameWidth = changes.map(\.name.count).max() ?? 0
        var text = ""
        for kind in ConfigChange.Kind.allCases {
            let lines = changes.filter { $0.kind == kind }
            guard !lines.isEmpty else { continue }
            text += style.paint(self.heading(kind), .bold) + "\n"
            for change in lines {
                let action = change.action.rawValue.padding(toLength: actionWidth, withPad: " ", startingAt: 0)
                let line: String
                if let detail = change.detail {
                    line = change.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  " + detail
                } else {
                    line = change.name
                }
                text += "  " + style.paint(action, self.paint(change.action)) + "  " + line + "\n"
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
