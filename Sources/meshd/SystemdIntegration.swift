import Logging
import MeshControlModel
import MeshSystemd
import MeshTunnel
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// meshd under systemd: `READY=1` once every listener and the control socket are open (not
/// waiting for peers), `STATUS=` kept current, reloads wrapped in `RELOADING=1` … `READY=1`, the
/// watchdog, and `STOPPING=1` when shutdown begins. Outside systemd (no `NOTIFY_SOCKET`) it sends
/// nothing and meshd behaves the same.
final class SystemdIntegration: Sendable {
    /// What must have started before `READY=1`.
    enum Part: String, CaseIterable {
        case listeners = "tunnel and forward listeners"
        case control = "control socket"
    }

    let notifier: Notifier
    private let mesh: MeshNode
    private let readiness: ReadinessGate
    private let publisher: StatusPublisher
    private let watchdog: Watchdog?
    private let stall: EventLoopStall?
    private let lastReload = NIOLockedValueBox<ReloadOutcome?>(nil)
    /// The latest reload asked for; the next one waits for it.
    private let reloads = NIOLockedValueBox<Task<ReloadOutcome, Never>?>(nil)
    private let logger: Logger

    init(mesh: MeshNode, group: EventLoopGroup, statusLine: StatusLine, stallAfter: Duration?, logger: Logger) {
        let notifier = Notifier(logger: logger)
        self.notifier = notifier
        self.mesh = mesh
        self.logger = logger
        let lastReload = self.lastReload
        let publisher = StatusPublisher(notifier: notifier) {
            statusLine.text(peers: mesh.peers.snapshot(), lastReload: lastReload.withLockedValue { $0 })
        }
        self.publisher = publisher
        self.readiness = ReadinessGate(parts: Set(Part.allCases.map(\.rawValue))) {
            let text = publisher.current
            notifier.ready(status: text)
            publisher.sent(text)
            if notifier.isEnabled { logger.info("systemd: READY=1 (\(text))") }
        }
        if !Watchdog.endProcessOnAbortSignal() {
            logger.warning("could not install the SIGABRT handler: a watchdog abort would wait for systemd's SIGKILL")
        }
        // MeshNode has no supervisor tick of its own yet, so the round trip through every event
        // loop (which runs the links' dial, backoff and PING timers) is the tick; when MeshNode
        // gains a supervisor heartbeat, pass it in `heartbeats`.
        self.watchdog = (notifier.isEnabled ? Watchdog.periodFromEnvironment() : nil).map {
            Watchdog(period: $0, probe: LoopProbe(group: group), heartbeats: [], notifier: notifier, logger: logger)
        }
        self.stall = stallAfter.map {
            EventLoopStall(after: $0, loop: group.any(), notifier: notifier, logger: logger)
        }
    }

    /// `part` of the agent is open for business; the last one sends `READY=1`.
    func started(_ part: Part) {
        self.readiness.started(part.rawValue)
    }

    /// Runs `reload` between `RELOADING=1` and `READY=1` (SIGHUP and `meshctl reload` alike); a
    /// failed one stays in `STATUS=` until a reload succeeds. Reloads run one at a time, in the
    /// order asked, so systemd never sees a READY=1 while a second reload is still going on.
    func reload(_ reload: @escaping @Sendable () async -> ReloadOutcome) async -> ReloadOutcome {
        let turn = self.reloads.withLockedValue { last in
            let previous = last
            let next = Task { [self] in
                _ = await previous?.value
                return await self.runReload(reload)
            }
            last = next
            return next
        }
        return await turn.value
    }

    private func runReload(_ reload: @Sendable () async -> ReloadOutcome) async -> ReloadOutcome {
        self.notifier.reloading(status: "reloading configuration")
        let outcome = await reload()
        self.lastReload.withLockedValue { $0 = outcome }
        let text = self.publisher.current
        self.notifier.ready(status: text)
        self.publisher.sent(text)
        return outcome
    }

    /// The service that pings the watchdog and refreshes `STATUS=` while meshd runs.
    var service: Service { SystemdService(integration: self) }

    fileprivate func run() async {
        self.stall?.arm()
        await withTaskGroup(of: Void.self) { tasks in
            if let watchdog = self.watchdog {
                tasks.addTask { await watchdog.run() }
            }
            tasks.addTask { [readiness, publisher] in
                while !Task.isCancelled {
                    if readiness.isReady { publisher.publish() }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            // This service is last in the group, so it hears of shutdown first: STOPPING=1 goes
            // out before the listeners close and the tunnels drain.
            try? await gracefulShutdown()
            self.notifier.stopping(status: "stopping: closing listeners, draining streams")
            self.stall?.release()
            tasks.cancelAll()
        }
    }
}

/// Runs `SystemdIntegration`'s background work as part of meshd's service group.
private struct SystemdService: Service {
    let integration: SystemdIntegration

    func run() async {
        await self.integration.run()
    }
}
