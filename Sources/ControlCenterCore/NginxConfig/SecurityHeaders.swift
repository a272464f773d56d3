/// The security headers of every answer, nginx's own included. nginx drops
/// inherited add_header lines in any location that has one of its own, so
/// every such location includes this file again.
enum SecurityHeaders {
    static let conf = """
        # Security headers of every response (rendered by control-center nginx-config).
        # A location with its own add_header loses the inherited ones, so those
        # include this file too.
        add_header X-Content-Type-Options "nosniff" always;
        add_header X-Frame-Options "DENY" always;
        add_header Referrer-Policy "no-referrer" always;
        add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always;
        add_header Cache-Control "no-store" always;

        """

    /// The dashboard's CSP (issue 14): scripts, styles and connections
    /// (fetch, WebSocket) only from this origin; no inline script or style.
    static let pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    /// The headers of the dashboard's static files: those above with the
    /// page's CSP, and `no-cache` (revalidate by ETag) instead of `no-store`.
    static let pageConf = """
        # Security headers of the dashboard's static files (rendered by control-center nginx-config).
        add_header X-Content-Type-Options "nosniff" always;
        add_header X-Frame-Options "DENY" always;
        add_header Referrer-Policy "no-referrer" always;
        add_header Content-Security-Policy "\(pageCSP)" always;
        add_header Cache-Control "no-cache" always;

        """
}
