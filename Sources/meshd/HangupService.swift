import ServiceLifecycle
import UnixSignals

/// SIGHUP (`systemctl reload meshd`, `ExecReload=/bin/kill -HUP $MAINPID`) reloads the config.
/// The signal is trapped when this is made, before the agent starts, so an early SIGHUP can never
/// take the default action and kill meshd.
struct HangupService: Service {
    private let signals: UnixSignalsSequence
    private let reload: @Sendable () async -> Void

    init(reload: @escaping @Sendable () async -> Void) async {
        self.signals = await UnixSignalsSequence(trapping: .sighup)
        self.reload = reload
    }

    func run() async {
        for await _ in self.signals.cancelOnGracefulShutdown() {
            await self.reload()
        }
    }
}
