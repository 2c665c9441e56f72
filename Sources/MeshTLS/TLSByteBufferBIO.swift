import COpenSSL
import NIOCore

/// The BIO between one `SSL` and NIO. OpenSSL reads ciphertext straight out of the ByteBuffers NIO
/// delivered and writes records straight into a ByteBuffer we hand to the channel: one copy each
/// way, where a pair of memory BIOs costs two (into the BIO, then out of it). Used only on its
/// connection's event loop.
final class TLSByteBufferBIO {
    /// The BIO_METHOD shared by every connection, made once.
    // nonisolated(unsafe): written once by the lazy initializer, read-only afterwards.
    nonisolated(unsafe) private static let method: OpaquePointer = {
        let name = "tunnelmesh ByteBuffer BIO"
        guard let method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, name) else {
            fatalError("OpenSSL could not allocate a BIO method (out of memory)")
        }
        BIO_meth_set_create(
            method,
            { bio in
                BIO_set_init(bio, 1)
                return 1
            }
        )
        BIO_meth_set_destroy(
            method,
            { bio in
                BIO_set_data(bio, nil)
                BIO_set_init(bio, 0)
                return 1
            }
        )
        BIO_meth_set_read_ex(
            method,
            { bio, destination, capacity, read in
                BIO_clear_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY)
                guard let owner = TLSByteBufferBIO.owner(of: bio), let destination, let read else { return 0 }
                let count = owner.readCiphertext(into: UnsafeMutableRawBufferPointer(start: destination, count: capacity))
                read.pointee = count
                if count == 0 {
                    // Nothing buffered: "try again later", never end of stream (EOF comes from NIO).
                    BIO_set_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY)
                    return 0
                }
                return 1
            }
        )
        BIO_meth_set_write_ex(
            method,
            { bio, source, count, written in
                BIO_clear_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY)
                guard let owner = TLSByteBufferBIO.owner(of: bio), let source, let written else { return 0 }
                owner.outbound.writeBytes(UnsafeRawBufferPointer(start: source, count: count))
                written.pointee = count
                return 1
            }
        )
        BIO_meth_set_ctrl(
            method,
            { bio, command, _, _ in
                switch command {
                case BIO_CTRL_FLUSH:
                    return 1  // what OpenSSL wrote is already in `outbound`
                case BIO_CTRL_PENDING:
                    return TLSByteBufferBIO.owner(of: bio)?.inboundBytes ?? 0
                default:
                    return 0  // WPENDING, kTLS queries and the rest: nothing to report
                }
            }
        )
        return method
    }()

    /// Handed to `SSL_set_bio`; the SSL owns it from then on and frees it with itself.
    let bio: OpaquePointer
    private var inbound = CircularBuffer<ByteBuffer>(initialCapacity: 4)
    private var inboundBytes = 0
    /// Ciphertext OpenSSL produced and the handler has not taken yet.
    private var outbound: ByteBuffer

    init(allocator: ByteBufferAllocator) {
        guard let bio = BIO_new(Self.method) else { fatalError("OpenSSL could not allocate a BIO (out of memory)") }
        self.bio = bio
        self.outbound = allocator.buffer(capacity: 0)
        BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
    }

    private static func owner(of bio: OpaquePointer?) -> TLSByteBufferBIO? {
        guard let bio, let data = BIO_get_data(bio) else { return nil }
        return Unmanaged<TLSByteBufferBIO>.fromOpaque(data).takeUnretainedValue()
    }

    /// Keeps a buffer NIO delivered until OpenSSL has read it; nothing is copied here.
    func receive(_ buffer: ByteBuffer) {
        guard buffer.readableBytes > 0 else { return }
        inbound.append(buffer)
        inboundBytes += buffer.readableBytes
    }

    private func readCiphertext(into destination: UnsafeMutableRawBufferPointer) -> Int {
        var copied = 0
        while copied < destination.count, var head = inbound.first {
            let count = min(head.readableBytes, destination.count - copied)
            head.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: destination[copied..<(copied + count)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
            }
            head.moveReaderIndex(forwardBy: count)
            copied += count
            if head.readableBytes == 0 {
                inbound.removeFirst()
            } else {
                inbound[inbound.startIndex] = head
            }
        }
        inboundBytes -= copied
        return copied
    }

    var pendingCiphertext: Int { outbound.readableBytes }

    /// Whether ciphertext NIO delivered is still waiting for OpenSSL.
    var hasInbound: Bool { inboundBytes > 0 }

    /// Makes room for about `bytes` more ciphertext, so a large `SSL_write` fills one allocation
    /// instead of growing the buffer step by step.
    func reserveOutbound(_ bytes: Int) {
        outbound.reserveCapacity(minimumWritableBytes: bytes)
    }

    /// The ciphertext produced so far; `outbound` starts over empty. Rewound rather than cleared or
    /// replaced: once the channel has written `taken` and let go of it (a flush usually does at
    /// once), the storage is ours alone again and the next record is written into it without an
    /// allocation; while the channel still holds it, the next write copies on write as before.
    func takeCiphertext() -> ByteBuffer? {
        guard outbound.readableBytes > 0 else { return nil }
        let taken = outbound
        outbound.moveReaderIndex(to: 0)
        outbound.moveWriterIndex(to: 0)
        return taken
    }
}
