import Foundation
import MeshControlModel
import MeshHTTPClient
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

    public func post<T: Decodable>(_ path: String, body: Data = Data(), as type: T.Type = T.self) async throws(ControlClientError) -> T {
        try self.decode(await self.send(.POST, path, body: body), path: path)
    }

    /// A raw exchange: the status and body of the response, whatever the status.
    public func send(
        _ method: HTTPMethod,
        _ path: String,
        body: Data = Data()
    ) async throws(ControlClientError) -> (status: HTTPResponseStatus, body: Data) {
        let socketPath = self.socketPath
        let exchange = HTTPExchange(target: .unix(path: socketPath), timeout: self.timeout, group: self.group)
        let response: HTTPExchange.Response
        do throws(HTTPExchange.Failure) {
            response = try await exchange.send(method, path, host: "meshd", body: body)
        } catch {
            switch error {
            case .connect(let error):
                throw .unreachable(socketPath: socketPath, reason: Self.reason(error), errno: Self.errno(error))
            case .timedOut:
                throw .timedOut(socketPath: socketPath, after: self.timeout)
            case .failed(let error):
                throw .unreachable(socketPath: socketPath, reason: Self.reason(error), errno: nil)
            }
        }
        if response.status == .forbidden {
            throw ControlClientError.refused(socketPath: socketPath, message: Self.errorMessage(response.body) ?? "permission denied")
        }
        return (response.status, response.body)
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
        HTTPExchange.reason(error)
    }
}
