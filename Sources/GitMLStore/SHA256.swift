internal import COpenSSL
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// SHA-256 through OpenSSL's EVP interface (the same speed as swift-crypto here, without its build time).
public final class SHA256 {
    private let context: OpaquePointer

    /// A fresh digest. Fails only when OpenSSL cannot allocate or initialise a context.
    public init() throws {
        guard let context = EVP_MD_CTX_new() else {
            throw StoreError("allocate", path: "an OpenSSL digest", errno: ENOMEM)
        }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            EVP_MD_CTX_free(context)
            throw StoreError("initialise", path: "an OpenSSL SHA-256 digest", errno: EINVAL)
        }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    /// Feeds bytes.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    /// Feeds bytes.
    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest as 64 lowercase hex digits; the object is reset for another use.
    public func finalizeHex() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
        return Self.hex(digest)
    }

    /// The SHA-256 of `bytes` in hex.
    public static func hex(of bytes: [UInt8]) throws -> String {
        let hasher = try SHA256()
        hasher.update(bytes)
        return hasher.finalizeHex()
    }

    /// The SHA-256 of the UTF-8 of `text` in hex.
    public static func hex(of text: String) throws -> String { try hex(of: Array(text.utf8)) }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// True for 64 lowercase hex digits.
    public static func isDigest(_ text: some StringProtocol) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// Reads files through one reusable buffer and hashes them.
public final class FileHasher {
    /// Bytes read per system call: large reads keep the digest, not the kernel, the bottleneck.
    public static let bufferSize = 1 << 20
    private let buffer: UnsafeMutableRawBufferPointer
    private let digest: SHA256

    /// A hasher with its own buffer; use one per thread.
    public init() throws {
        digest = try SHA256()
        buffer = .allocate(byteCount: Self.bufferSize, alignment: 4096)
    }

    deinit { buffer.deallocate() }

    /// The SHA-256 and size of the file at `path`, refusing to follow a symbolic link in the last component.
    /// `progress` is told the bytes read after each read.
    public func hash(path: String, progress: ((Int) -> Void)? = nil) throws -> (sha256: String, size: Int64) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("open", path: path) }
        defer { close(fd) }
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        var total: Int64 = 0
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError("read", path: path)
            }
            if n == 0 { break }
            digest.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += Int64(n)
            progress?(n)
        }
        return (digest.finalizeHex(), total)
    }
}

/// Hashes a file while another thread is still appending to it: the writer says how far it has written, a thread of
/// this hasher's own reads those bytes back (from the page cache) and hashes them, so receiving and hashing overlap.
public final class TrailingHasher: @unchecked Sendable {
    private let fd: Int32
    /// Touched only by the hashing thread.
    private let digest: SHA256
    private let condition = NSCondition()
    private var available: Int64 = 0
    private var done = false
    private var cancelled = false
    private var exited = false
    private var result: String?
    private var failure: Int32 = 0

    /// Reads `fd` (opened for reading) from offset 0 as `advance` allows.
    public init(fd: Int32) throws {
        self.fd = fd
        digest = try SHA256()
        Thread.detachNewThread { [self] in run() }
    }

    /// The writer has written this many bytes in total.
    public func advance(to written: Int64) {
        condition.lock()
        available = written
        condition.signal()
        condition.unlock()
    }

    /// Stops the thread without a digest (the transfer failed), and waits until it no longer reads the file.
    public func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        while !exited { condition.wait() }
        condition.unlock()
    }

    /// The digest of the `total` bytes written, once they are all hashed.
    public func finish(total: Int64) throws -> String {
        condition.lock()
        defer { condition.unlock() }
        available = total
        done = true
        condition.broadcast()
        while result == nil && failure == 0 { condition.wait() }
        if failure != 0 { throw StoreError("read back", path: "a file being received", errno: failure) }
        return result ?? ""
    }

    private func run() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer {
            buffer.deallocate()
            condition.lock()
            exited = true
            condition.broadcast()
            condition.unlock()
        }
        var hashed: Int64 = 0
        while true {
            condition.lock()
            while available == hashed && !done && !cancelled { condition.wait() }
            let target = available
            let finished = done
            let stop = cancelled
            condition.unlock()
            if stop { return }
            while hashed < target {
                if condition.withLock({ cancelled }) { return }
                let n = pread(fd, buffer.baseAddress, min(buffer.count, Int(target - hashed)), off_t(hashed))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    condition.lock()
                    failure = n == 0 ? EIO : errno
                    condition.broadcast()
                    condition.unlock()
                    return
                }
                digest.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                hashed += Int64(n)
            }
            if finished && hashed == target {
                condition.lock()
                result = digest.finalizeHex()
                condition.broadcast()
                condition.unlock()
                return
            }
        }
    }
}
