import Foundation
import MeshControlModel
import NIOCore
import NIOHTTP1
import NIOPosix

/// The client side of the control API, for meshctl and tests: one HTTP/1.1 request per connection
/// over the node's Unix socket, JSON decoded into the shared models.
public struct ControlClient: Sendable {
    public let socketPath: String
    private let group: EventLoopGroup
    /// How long a request may take from connect to the last byte of the response.
    public var timeout: Duration

    public init(socketPath: String, timeout: Duration = .seconds(10), group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.socketPath = socketPath
        self.timeout = timeout
        self.group = group
    }

    public func get<T: Decodable>(_ path: String, as type: T.Type = T.self) async throws(ControlClientError) -> T {
        try self.decode(await self.send(.GET, path), path: path)
    }

    public func post<T: Decodable>(_ path: String, as type: T.Type = T.self) async throws(ControlClientError) -> T {
        try self.decode(await self.send(.POST, path), path: path)
    }

    /// A raw exchange: the status and body of the response, whatever the status.
    public func send(_ method: HTTPMethod, _ path: String) async throws(ControlClientError) -> (status: HTTPResponseStatus, body: Data) {
        let promise = self.group.next().makePromise(of: (HTTPResponseStatus, Data).self)
        let socketPath = self.socketPath
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: self.group)
                .connectTimeout(TimeAmount(self.timeout))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ControlResponseCollector(promise: promise))
                    }
                }
                .connect(unixDomainSocketPath: socketPath)
                .get()
        } catch {
            promise.fail(error)
            throw ControlClientError.unreachable(socketPath: socketPath, reason: Self.reason(error), errno: Self.errno(error))
        }
        let timeout = channel.eventLoop.scheduleTask(in: TimeAmount(self.timeout)) {
            promise.fail(ControlClientError.timedOut(socketPath: socketPath, after: self.timeout))
            channel.close(promise: nil)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "meshd")
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "Content-Length", value: "0")
        headers.add(name: "Connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        do {
            let (status, body) = try await promise.futureResult.get()
            timeout.cancel()
            channel.close(promise: nil)
            if status == .forbidden {
                throw ControlClientError.refused(socketPath: socketPath, message: Self.errorMessage(body) ?? "permission denied")
            }
            return (status, body)
        } catch let error as ControlClientError {
            timeout.cancel()
            throw error
        } catch {
            timeout.cancel()
            channel.close(promise: nil)
            throw ControlClientError.unreachable(socketPath: socketPath, reason: Self.reason(error), errno: nil)
        }
    }

    private func decode<T: Decodable>(_ response: (status: HTTPResponseStatus, body: Data), path: String) throws(ControlClientError) -> T {
        guard response.status.code / 100 == 2 else {
            throw ControlClientError.api(
                status: response.status.code,
                message: Self.errorMessage(response.body) ?? "HTTP \(response.status.code) \(response.status.reasonPhrase)"
            )
        }
        do {
            return try ControlJSON.decoder().decode(T.self, from: response.body)
        } catch {
            throw ControlClientError.malformed(socketPath: self.socketPath, path: path, reason: "\(error)")
        }
    }

    private static func errorMessage(_ body: Data) -> String? {
        (try? ControlJSON.decoder().decode(ControlErrorBody.self, from: body))?.error
    }

    private static func errno(_ error: Error) -> Int32? {
        (error as? IOError)?.errnoCode
    }

    private static func reason(_ error: Error) -> String {
        if let code = self.errno(error) { return String(cString: strerror(code)) }
        if let error = error as? ChannelError, case .connectTimeout = error { return "connect timed out" }
        return "\(error)"
    }
}
