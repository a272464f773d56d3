import CCurl

/// One libcurl easy handle that POSTs a body and keeps the answer, for a
/// caller that drives it with its own multi handle (NchanPublisher, Notifier)
/// so that the collector's loop never blocks on the network.
final class CurlPost {
    let easy: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    /// The answer's first `answerLimit` bytes (the rest is read and dropped).
    private final class Answer {
        var bytes: [UInt8] = []
        var limit = 0
    }
    private let answer = Answer()

    /// nil when libcurl cannot be initialised.
    init?() {
        guard curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK, let e = curl_easy_init() else { return nil }
        easy = e
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
    }

    var answerBytes: [UInt8] { answer.bytes }

    /// The HTTP status of the finished transfer (0 when none came).
    var responseCode: Int {
        var status = 0
        _ = cc_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        return status
    }

    /// Resets the handle and sets a POST of `body` to `url` with `headers`
    /// (`Name: value` lines), a whole-transfer timeout, no signals (the
    /// collector blocks them), and the answer kept up to `answerLimit` bytes.
    /// The caller adds its own options, then the handle to its multi handle.
    func prepare(url: String, headers: [String], body: [UInt8], timeoutMillis: Int, answerLimit: Int) {
        curl_easy_reset(easy)
        curl_slist_free_all(headerList)
        headerList = headers.reduce(nil) { curl_slist_append($0, $1) }
        _ = cc_curl_easy_setopt_string(easy, CURLOPT_URL, url)
        _ = cc_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList)
        _ = cc_curl_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, body.count)
        body.withUnsafeBufferPointer { b in
            _ = cc_curl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: b.baseAddress))
        }
        _ = cc_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, timeoutMillis)
        _ = cc_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        answer.bytes.removeAll(keepingCapacity: true)
        answer.limit = answerLimit
        _ = cc_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, Unmanaged.passUnretained(answer).toOpaque())
        _ = cc_curl_easy_setopt_write(easy) { data, size, count, user in
            if let data, let user {
                let a = Unmanaged<Answer>.fromOpaque(user).takeUnretainedValue()
                let room = max(0, a.limit - a.bytes.count)
                a.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: min(room, size * count)))
            }
            return size * count
        }
    }
}
