extension NginxRender {
    /// Debian's libjs-chart.js (Chart.js 3), which the dashboard loads from
    /// `/ui/lib/chart.js/`: a maintained copy the system updates, none in the repo.
    public static let chartJSDirectory = "/usr/share/javascript/chart.js"

    /// Where the writer installs a copy of CC_WEB_DIR, beside the config:
    /// nginx's workers (CC_NGINX_USER) must read the page wherever its source
    /// lies, and a checkout under a 0700 home, or a new clone, is out of their
    /// reach (measured: every /ui/ request got 403).
    var webCopy: String { path("web") }

    /// The dashboard's locations in control-center.conf: the static files of
    /// CC_WEB_DIR (its copy, `webCopy`) under `/ui/`, Debian's Chart.js under `/ui/lib/chart.js/`,
    /// and `/` sending browsers (an Accept with text/html) to `/ui/` while
    /// API clients keep the JSON index. nginx sends the files itself, with an
    /// ETag and `Cache-Control: no-cache` (a changed file is fetched at once)
    /// and the page's CSP (control-center-ui-headers.conf).
    var dashboardLocations: String {
        let headers = "include \(path("control-center-ui-headers.conf"));"
        return """
            # The dashboard (CC_WEB_DIR), sent by nginx itself; no worker is involved.
            location = /ui {
                return 301 /ui/;
            }
            location /ui/ {
                alias \(webCopy)/;
                index index.html;
                # Module scripts need a JavaScript type; the operator's nginx may have no mime.types.
                types {
                    text/html html;
                    text/css css;
                    text/javascript js;
                    image/svg+xml svg;
                }
                gzip_types text/css text/javascript image/svg+xml;
                etag on;
                \(headers)
                location /ui/lib/chart.js/ {
                    alias \(Self.chartJSDirectory)/;
                    \(headers)
                }
            }
            # Browsers asking for / get the dashboard; API clients the JSON index.
            location = / {
                if ($cc_wants_html) {
                    return 302 /ui/;
                }
                add_header Vary Accept always;
                include \(path("control-center-headers.conf"));
                fastcgi_pass cc_main;
            }
            """
    }
}
