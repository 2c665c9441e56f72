import COpenSSL

/// The C callbacks registered once on each shared `SSL_CTX`. Each finds its `TLSConnection` through
/// the `SSL`'s ex_data and runs synchronously inside an OpenSSL call made on that connection's event loop.
enum TLSCallbacks {
    /// SSL_CTX_set_verify: chain verdict plus our identity check (see `TLSConnection.verify`).
    static let verify: @convention(c) (Int32, OpaquePointer?) -> Int32 = { preverifyOK, store in
        guard let store,
            let ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()),
            let connection = TLSConnection.from(ssl: OpaquePointer(ssl))
        else { return 0 }
        return connection.verify(preverifyOK: preverifyOK == 1, store: store) ? 1 : 0
    }

    /// Server: a client that offers no ALPN at all is refused here, with a no_application_protocol alert,
    /// when its connection requires ALPN (always between mesh peers: the mesh carries HTTP/2 only, and
    /// a client that does not say so is not a mesh node). OpenSSL skips the ALPN select callback when
    /// the extension is absent, so this is the only place that can insist on it.
    static let clientHello: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?) -> Int32 = {
        ssl,
        alert,
        _ in
        var data: UnsafePointer<UInt8>?
        var length = 0
        if SSL_client_hello_get0_ext(ssl, UInt32(TLSEXT_TYPE_application_layer_protocol_negotiation), &data, &length) == 1 {
            return SSL_CLIENT_HELLO_SUCCESS
        }
        guard let connection = TLSConnection.from(ssl: ssl) else { return SSL_CLIENT_HELLO_ERROR }
        if !connection.requiresALPN { return SSL_CLIENT_HELLO_SUCCESS }
        let wanted = connection.context.serverALPN
        let who = connection.context.audience == .meshPeers ? "mesh peers must offer" : "this connection requires"
        connection.callbackRejection = TLSHandshakeError(.other, "client offered no ALPN protocol; \(who) \"\(wanted)\"")
        alert?.pointee = SSL_AD_NO_APPLICATION_PROTOCOL
        return SSL_CLIENT_HELLO_ERROR
    }

    /// Server: select the context's protocol ("h2" between mesh peers) or refuse the connection with
    /// no_application_protocol.
    static let selectALPN:
        @convention(c) (
            OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
            UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?
        ) -> Int32 = { ssl, out, outLength, offered, offeredLength, _ in
            guard let connection = TLSConnection.from(ssl: ssl) else { return SSL_TLSEXT_ERR_ALERT_FATAL }
            let wanted = Array(connection.context.serverALPN.utf8)
            // The offer is a list of length-prefixed names.
            var index = 0
            let total = Int(offeredLength)
            var names: [String] = []
            while let offered, index < total {
                let length = Int(offered[index])
                guard index + 1 + length <= total else { break }
                let name = UnsafeBufferPointer(start: offered + index + 1, count: length)
                if name.elementsEqual(wanted) {
                    out?.pointee = offered + index + 1
                    outLength?.pointee = UInt8(length)
                    return SSL_TLSEXT_ERR_OK
                }
                names.append(String(decoding: name, as: UTF8.self))
                index += 1 + length
            }
            let who = connection.context.audience == .meshPeers ? "mesh peers speak" : "this server speaks"
            connection.callbackRejection = TLSHandshakeError(
                .other,
                "client offered ALPN \(names) but \(who) only \"\(connection.context.serverALPN)\""
            )
            return SSL_TLSEXT_ERR_ALERT_FATAL
        }

    /// Client: a session ticket arrived, so the server accepted our certificate. Returning 0 tells
    /// OpenSSL we kept no reference; sessions are never resumed.
    static let newSession: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32 = { ssl, _ in
        TLSConnection.from(ssl: ssl)?.serverSentTicket = true
        return 0
    }

    /// Never prompt for a passphrase on the terminal: an encrypted key is a setup error.
    static let noPassphrase: @convention(c) (UnsafeMutablePointer<CChar>?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32 = {
        _,
        _,
        _,
        _ in 0
    }
}
